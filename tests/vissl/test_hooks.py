"""The best-accuracy checkpoint follows the test accuracy: written when it improves, kept otherwise,
and a resumed run remembers the best of before."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from spacetorch.vissl.hooks import BEST_CHECKPOINT, BestAccuracyCheckpoint


def _task(folder: Path, top1: float, epoch: int, train: bool = False) -> SimpleNamespace:
    meter = SimpleNamespace(value={"top_1": {0: top1}, "top_5": {0: 100.0}})
    return SimpleNamespace(train=train, meters=[meter], checkpoint_folder=str(folder), train_phase_idx=epoch, iteration=10 * epoch,
                           get_classy_state=lambda: {"base_model": {"model": {"trunk": {"w": torch.tensor([float(epoch)])}}}})


def test_the_checkpoint_is_replaced_only_by_a_better_test_accuracy(tmp_path: Path) -> None:
    hook = BestAccuracyCheckpoint()
    for epoch, accuracy in enumerate([50.0, 40.0, 60.0, 60.0]):
        hook.on_phase_end(_task(tmp_path, 999.0, epoch, train=True))  # training phases are ignored
        hook.on_phase_end(_task(tmp_path, accuracy, epoch))
    record = json.loads((tmp_path / "best_accuracy.json").read_text())
    assert record == {"top_1": 60.0, "train_phase_idx": 2, "iteration": 20}
    saved = torch.load(tmp_path / BEST_CHECKPOINT, weights_only=True)
    assert saved["classy_state_dict"]["base_model"]["model"]["trunk"]["w"].item() == 2.0
    resumed = BestAccuracyCheckpoint()  # a new process after a restart
    resumed.on_phase_end(_task(tmp_path, 55.0, 5))
    assert json.loads((tmp_path / "best_accuracy.json").read_text())["top_1"] == 60.0
