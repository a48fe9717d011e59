"""The runtime fixes of spacetorch.vissl.compat."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
import vissl.utils.checkpoint as vissl_checkpoint

from spacetorch.vissl import compat


def test_vissl_checkpoints_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    compat.apply()  # idempotent
    state = {"weights": torch.arange(5)}
    path = vissl_checkpoint.save_checkpoint(str(tmp_path), state, checkpoint_file="model_phase0.torch")
    assert Path(path) == tmp_path / "model_phase0.torch"
    assert torch.equal(torch.load(path, weights_only=True)["weights"], state["weights"])

    with pytest.raises((pickle.PicklingError, AttributeError)):  # which one depends on the pickler
        vissl_checkpoint.save_checkpoint(str(tmp_path), {"bad": lambda: 0}, checkpoint_file="model_phase1.torch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_phase0.torch"]


def test_relative_checkpoint_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spacetorch.vissl.config import compose

    monkeypatch.chdir(tmp_path)
    cfg = compose(["config=demo_cpu_simclr_spatial_resnet18", "config.CHECKPOINT.DIR=runs/a"])
    compat.fix_config(cfg)
    assert cfg.CHECKPOINT.DIR == str(tmp_path / "runs" / "a")


def test_a_disk_that_fills_during_a_checkpoint_save_leaves_the_last_whole_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk filling up halfway through a save: the error is the system's (which the commands
    report in one line), the earlier checkpoint of that name is as it was, and no partial file
    is left to block or mislead the resume."""
    import errno
    import io

    compat.apply()
    path = vissl_checkpoint.save_checkpoint(str(tmp_path), {"step": torch.tensor(1)}, checkpoint_file="checkpoint.torch")
    before = Path(path).read_bytes()
    real_save = torch.save

    def fills_up(obj: object, file: object, *args: object, **kwargs: object) -> None:
        buffer = io.BytesIO()
        real_save(obj, buffer)
        file.write(buffer.getvalue()[:100])  # type: ignore[attr-defined]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", fills_up)
    with pytest.raises(OSError) as raised:
        vissl_checkpoint.save_checkpoint(str(tmp_path), {"step": torch.tensor(2)}, checkpoint_file="checkpoint.torch")
    assert raised.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.torch"]
    assert Path(path).read_bytes() == before
