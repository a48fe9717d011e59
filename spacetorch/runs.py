"""Training curves of runs, finished or still going: task loss and each layer's spatial loss.

A run folder is a VISSL checkpoint folder (``CHECKPOINT.DIR``).  spacetorch's train step writes
``Task_Loss`` and ``Spatial_Loss/<layer>`` to TensorBoard (``tb_logs/``) when
``HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD`` is on; VISSL writes the total loss to
``stdout.json`` in every run.  :func:`read_curves` reads both (the events when there are any),
and reading a run in progress gives the curves so far.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Curves", "read_curves"]

TASK = "Task_Loss"
TOTAL = "Total_Loss"
SPATIAL = "Spatial_Loss/"


@dataclass
class Curves:
    """The scalar series of one run: tag -> ``(iterations, values)``."""

    run: str
    series: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def spatial_layers(self) -> list[str]:
        return sorted(tag.removeprefix(SPATIAL) for tag in self.series if tag.startswith(SPATIAL))

    def last(self) -> dict[str, float]:
        """The last value of every series."""
        return {tag: float(values[-1]) for tag, (_, values) in self.series.items() if len(values)}


def _events(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for events in sorted({path.parent for path in folder.rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})  # 0: keep every point
        accumulator.Reload()
        for tag in accumulator.Tags().get("scalars", []):
            if tag == TASK or tag.startswith(SPATIAL):
                points = accumulator.Scalars(tag)
                steps = np.array([p.step for p in points])
                values = np.array([p.value for p in points])
                if tag in series:  # a resumed run writes a second events file
                    steps, values = np.r_[series[tag][0], steps], np.r_[series[tag][1], values]
                order = np.argsort(steps, kind="stable")
                series[tag] = (steps[order], values[order])
    return series


def _stdout_losses(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    steps, values = [], []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written as we read
        if isinstance(entry, dict) and "iter" in entry and "loss" in entry:
            steps.append(int(entry["iter"]))
            values.append(float(entry["loss"]))
    return (np.array(steps), np.array(values)) if steps else None


def read_curves(run: str | os.PathLike[str], name: str | None = None) -> Curves:
    """The curves of a run folder: its TensorBoard scalars and the total loss of ``stdout.json``.

    Raises:
        ValueError: the folder is missing, or holds neither (naming what was looked for).
    """
    folder = Path(run)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such run folder")
    curves = Curves(name or folder.name, _events(folder))
    stdout = folder / "stdout.json"
    if stdout.is_file():
        total = _stdout_losses(stdout)
        if total is not None:
            curves.series[TOTAL] = total
    if not curves.series:
        raise ValueError(
            f"{folder}: no training curve: neither TensorBoard events with {TASK} or {SPATIAL}<layer> "
            "(HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=true) nor a stdout.json with losses"
        )
    return curves


#: a task loss line of ``custom_train_step``'s log
TASK_LOSS = re.compile(r"Iteration \d+: task loss (\S+?);")


def final_task_loss(log: Path, last: int = 5) -> float:
    """The mean of the last ``last`` task losses a run logged (``Iteration N: task loss X``, written
    by ``custom_train_step`` every LOG_FREQUENCY iterations); NaN if it logged none."""
    values = TASK_LOSS.findall(log.read_text(errors="replace")) if log.is_file() else []
    return sum(map(float, values[-last:])) / len(values[-last:]) if values else math.nan
