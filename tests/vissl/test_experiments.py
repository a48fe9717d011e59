"""spacetorch.vissl.experiments: training runs as values, and how each method is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spacetorch.methods import NO_TOPOGRAPHY, Training, method_from_spec
from spacetorch.vissl.config import ConfigError
from spacetorch.vissl.experiments import Run, RunError
from tests.vissl.train_helpers import IMAGE_SIZE, SHORT_RUN


def test_each_method_says_how_it_is_trained() -> None:
    tdann = method_from_spec({"method": "tdann", "layers": ["layer2.0", "layer2_1"], "weight": 2.5})
    assert tdann.training(64) == Training(alpha=2.5, alpha_layers=("layer2_0", "layer2_1"))
    assert method_from_spec({"method": "tdann", "layers": ["layer2.0"]}).training(64) == Training(alpha=None), \
        "without a weight, the config's own layer weights"
    topoloss = method_from_spec({"method": "topoloss", "layers": ["layer2.0"], "weight": 1.0})
    training = topoloss.training(64)
    assert training.alpha == 0.0 and training.alpha_layers is None
    assert dict(training.topography or {}) == {**topoloss.spec(), "image_size": 64}
    assert NO_TOPOGRAPHY == Training(alpha=0.0)


def test_a_runs_command_line_is_what_earlier_versions_recorded(tmp_path: Path) -> None:
    """Run folders record train.py's arguments and are reused only when they are equal: the order
    is the one earlier versions wrote, so their finished runs are still reused."""
    folder = tmp_path / "runs" / "x_seed1"
    base = ["config.DATA.TRAIN.DATA_PATHS=[/d]"]
    assert Run("cfg", 1, folder, Training(2.5, ("layer2_0",)), base, "0").arguments() == [
        "config=cfg", "--alpha", "2.5", "config.SEED_VALUE=1", f"config.CHECKPOINT.DIR={folder}", *base,
        "--alpha-layers", "layer2_0", "--gpus", "0"]
    topoloss = method_from_spec({"method": "topoloss", "layers": ["layer2.0"], "weight": 1.0, "factor": 2})
    assert Run("cfg", 0, folder, topoloss.training(64)).arguments() == [
        "config=cfg", "--alpha", "0", "config.SEED_VALUE=0", f"config.CHECKPOINT.DIR={folder}",
        "++config.MODEL.TRUNK.TRUNK_PARAMS.topography={method:topoloss,layers:[layer2.0],weight:1,factor:2,image_size:64}"]
    assert Run("cfg", 0, folder, Training(alpha=None)).arguments() == [
        "config=cfg", "config.SEED_VALUE=0", f"config.CHECKPOINT.DIR={folder}"]


def test_a_folder_holding_another_run_is_refused(tmp_path: Path) -> None:
    run = Run("cfg", 0, tmp_path, Training(5.0))
    assert run.trained() is None
    (tmp_path / "command.json").write_text(json.dumps(Run("cfg", 0, tmp_path, Training(0.0)).arguments()))
    with pytest.raises(RunError, match="holds a run of another command"):
        run.trained()
    (tmp_path / "command.json").write_text(json.dumps(["/old/train.py", *run.arguments()]))  # an earlier version's record
    assert run.trained() is None
    (tmp_path / "model_final_checkpoint_phase1.torch").write_bytes(b"")
    (tmp_path / "model_final_checkpoint_phase10.torch").write_bytes(b"")
    assert run.trained() == tmp_path / "model_final_checkpoint_phase10.torch", "by phase number, not name"


def _small(small_positions: Path, small_images: Path) -> list[str]:
    return [f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}", f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
            f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}", *SHORT_RUN]


def test_a_run_is_checked_as_train_py_checks_it(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    config = "demo_cpu_simclr_spatial_resnet18"
    overrides = _small(small_positions, small_images)
    cfg, _ = Run(config, 3, tmp_path / "ok", Training(2.0, ("layer2_0",)), overrides).prepare()
    weights = dict(cfg.LOSS[cfg.LOSS.name].layer_weights)
    assert weights["layer2_0"] == 2.0 and set(weights.values()) == {2.0, 0.0}
    assert cfg.SEED_VALUE == 3 and cfg.CHECKPOINT.DIR == str(tmp_path / "ok")
    with pytest.raises(ConfigError, match=r"--alpha-layers: \['layer9_9'\]"):
        Run(config, 0, tmp_path / "bad", Training(2.0, ("layer9_9",)), overrides).prepare()
    with pytest.raises(ConfigError, match="must be a finite number >= 0"):
        Run(config, 0, tmp_path / "bad", Training(float("nan")), overrides).prepare()
