"""spacetorch's VISSL hooks, added to VISSL's own (:func:`hook_generator`).

:class:`BestAccuracyCheckpoint`: with ``TEST_MODEL`` on, VISSL measures the test split after
every ``TEST_EVERY_NUM_EPOCH`` training epochs.  Each time its first meter's top-1 accuracy is the
best so far, the model is written to ``CHECKPOINT.DIR/model_best_accuracy.torch`` (a VISSL
checkpoint, which ``load_classifier`` and ``load_trunk`` read) and the epoch and accuracy to
``best_accuracy.json``, as the original V1 and TDAM training scripts keep their best model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from classy_vision.generic.distributed_util import is_primary
from classy_vision.hooks.classy_hook import ClassyHook

__all__ = ["BEST_CHECKPOINT", "BestAccuracyCheckpoint", "hook_generator"]

BEST_CHECKPOINT = "model_best_accuracy.torch"
BEST_RECORD = "best_accuracy.json"


class BestAccuracyCheckpoint(ClassyHook):  # type: ignore[misc]  # classy-vision is not annotated
    """Keep the model of the best test top-1 accuracy so far (see the module)."""

    on_start = ClassyHook._noop
    on_phase_start = ClassyHook._noop
    on_forward = ClassyHook._noop
    on_loss_and_meter = ClassyHook._noop
    on_backward = ClassyHook._noop
    on_update = ClassyHook._noop
    on_step = ClassyHook._noop
    on_end = ClassyHook._noop

    def __init__(self) -> None:
        super().__init__()
        self.best: float | None = None

    def on_phase_end(self, task: Any) -> None:
        if task.train or not task.meters or not is_primary():
            return
        top1 = task.meters[0].value.get("top_1")
        if not top1:
            return
        accuracy = float(next(iter(top1.values())))
        folder = Path(task.checkpoint_folder)
        record = folder / BEST_RECORD
        if self.best is None and record.is_file():  # a resumed run keeps the best of before
            self.best = float(json.loads(record.read_text())["top_1"])
        if self.best is not None and accuracy <= self.best:
            return
        self.best = accuracy
        from spacetorch._files import atomic_write

        content = {"classy_state_dict": task.get_classy_state(), "train_phase_idx": task.train_phase_idx}
        atomic_write(folder / BEST_CHECKPOINT, lambda f: torch.save(content, f))
        text = json.dumps({"top_1": accuracy, "train_phase_idx": int(task.train_phase_idx), "iteration": int(task.iteration)})
        atomic_write(record, lambda f: f.write(text.encode()))


def hook_generator(cfg: Any) -> list[Any]:
    """VISSL's hooks, and :class:`BestAccuracyCheckpoint` when the config tests the model."""
    from vissl.hooks import default_hook_generator

    hooks: list[Any] = default_hook_generator(cfg)
    if cfg.TEST_MODEL and cfg.METERS.get("name"):
        hooks.append(BestAccuracyCheckpoint())
    return hooks
