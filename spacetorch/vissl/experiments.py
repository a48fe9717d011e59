"""Training runs as values: what ``compare-alpha`` and ``compare-methods`` train.

A :class:`Run` is one training: a shipped config, a seed, a checkpoint folder, the user's
overrides, and how its topography is made (a :class:`~spacetorch.methods.Training`, which each
method gives: ``method.training(image_size)``; :data:`~spacetorch.methods.NO_TOPOGRAPHY` for the
alpha = 0 baseline).  :meth:`Run.prepare` checks it exactly as ``train.py`` will, in this
process and before any run starts; :meth:`Run.train` trains it in a process of its own (as
``spacetorch train``, so that its ranks get VISSL's registrations) or reuses the run its folder
already holds.  The command line that process gets is built here, and only here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spacetorch.methods import NO_TOPOGRAPHY, Training

__all__ = ["Run", "RunError", "final_checkpoint"]

#: the training command: ``spacetorch train`` in its own process
TRAIN = [sys.executable, "-m", "spacetorch.cli.train"]
#: the record, in a run's folder, of the arguments it was trained with
RECORD = "command.json"
#: the run's log (train.py's stdout and stderr)
LOG = "train.out"
#: the wall time of the training that finished the run, in seconds (a later reuse keeps it)
TIMING = "train_seconds.txt"


class RunError(ValueError):
    """A run folder that holds a run of other settings."""


@dataclass(frozen=True)
class Run:
    """One training run.

    Attributes:
        config: a shipped config's name (``demo_cpu_supervised_spatial_resnet18``).
        seed: ``config.SEED_VALUE``.
        folder: ``config.CHECKPOINT.DIR``.
        training: how the run makes its topography (the spatial loss's weights, a method).
        overrides: ``config.KEY=VALUE`` overrides of the config, the user's.
        gpus: ``train.py --gpus`` (``"0,1"``); None: the config's own devices (the CPU without CUDA).
    """

    config: str
    seed: int
    folder: Path
    training: Training = NO_TOPOGRAPHY
    overrides: Sequence[str] = ()
    gpus: str | None = None

    def arguments(self) -> list[str]:
        """``train.py``'s arguments for this run (also what its folder records, in this order)."""
        training = self.training
        alpha = [] if training.alpha is None else ["--alpha", f"{training.alpha:g}"]
        layers = [] if training.alpha_layers is None else ["--alpha-layers", ",".join(training.alpha_layers)]
        gpus = [] if self.gpus is None else ["--gpus", self.gpus]
        return [f"config={self.config}", *alpha, *self._keys(), *layers, *self._method(), *gpus]

    def prepare(self) -> tuple[Any, list[str]]:
        """The config the run will train, checked as ``train.py`` checks it, and its notices.

        Raises:
            ConfigError: naming the option or key that is wrong.
        """
        from spacetorch.vissl.config import prepare_config

        layers = None if self.training.alpha_layers is None else list(self.training.alpha_layers)
        return prepare_config([f"config={self.config}", *self._keys(), *self._method()], alpha=self.training.alpha,
                              alpha_layers=layers, gpus=self.gpus)

    def _keys(self) -> list[str]:
        """The config keys the run sets: its seed, its folder, then the overrides."""
        return [f"config.SEED_VALUE={self.seed}", f"config.CHECKPOINT.DIR={self.folder.resolve()}", *self.overrides]

    def _method(self) -> list[str]:
        """The trunk's topography method, as a config key (none for the plain trunk)."""
        topography = self.training.topography
        return [] if topography is None else [f"++{_TOPOGRAPHY}={_hydra(dict(topography))}"]

    def trained(self) -> Path | None:
        """The run's final checkpoint, if its folder holds this run, finished.

        Raises:
            RunError: the folder holds a run of other arguments.
        """
        self._check_record()
        return final_checkpoint(self.folder)

    def train(self) -> tuple[Path | None, int]:
        """Train the run in its own process, logging to ``folder/train.out``, or go on with the run
        the folder holds (``train.py`` resumes, or reports it finished).

        Returns:
            the final checkpoint (None when training failed) and train.py's exit status.

        Raises:
            RunError: the folder holds a run of other arguments.
        """
        import time

        from spacetorch._files import atomic_write

        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_record()
        timed = final_checkpoint(self.folder) is not None and (self.folder / TIMING).is_file()
        text = json.dumps(self.arguments(), indent=1) + "\n"
        atomic_write(self.folder / RECORD, lambda file: file.write(text.encode()))
        start = time.perf_counter()
        with open(self.folder / LOG, "w") as log:
            code = subprocess.run([*TRAIN, *self.arguments()], stdout=log, stderr=subprocess.STDOUT).returncode
        final = final_checkpoint(self.folder) if code == 0 else None
        if final is not None and not timed:
            seconds = f"{time.perf_counter() - start:.1f}\n"
            atomic_write(self.folder / TIMING, lambda file: file.write(seconds.encode()))
        return final, code

    def seconds(self) -> float:
        """The wall time of the training that finished the run (NaN when unknown)."""
        try:
            return float((self.folder / TIMING).read_text())
        except (OSError, ValueError):
            return float("nan")

    def _check_record(self) -> None:
        record = self.folder / RECORD
        if record.is_file() and _recorded_arguments(json.loads(record.read_text())) != self.arguments():
            raise RunError(f"{self.folder} holds a run of another command (other positions, init, overrides or config?); "
                           "give this comparison its own --out, or delete that folder")  # fmt: skip


#: the trunk's topography setting, as an override that may add the key
_TOPOGRAPHY = "config.MODEL.TRUNK.TRUNK_PARAMS.topography"


def final_checkpoint(folder: Path) -> Path | None:
    """The last ``model_final_checkpoint_phase<N>.torch`` in ``folder``, or None."""
    finals = sorted(folder.glob("model_final_checkpoint_phase*.torch"), key=lambda p: int(p.stem.rsplit("phase", 1)[1]))
    return finals[-1] if finals else None


def _recorded_arguments(recorded: list[str]) -> list[str]:
    """The training arguments of a run's record (earlier versions put the path of ``train.py`` first)."""
    return recorded[1:] if recorded and recorded[0].endswith("train.py") else recorded


def _hydra(value: Any) -> str:
    """A value in Hydra's override grammar (unquoted names, lists, dicts)."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{key}:{_hydra(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra(item) for item in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)
