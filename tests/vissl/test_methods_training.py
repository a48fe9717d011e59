"""Each topography method trains through ``python train.py`` with its penalty in the loss and
in the log, and a bad ``topography`` setting is refused before training, naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spacetorch.cli.train import prepare

from train_helpers import IMAGE_SIZE, SHORT_RUN, run_train

KEY = "++config.MODEL.TRUNK.TRUNK_PARAMS.topography"


def _supervised(small_positions: Path, small_images: Path, ckpt: Path) -> list[str]:
    """The map demo's config (supervised, spatial trunk, custom step) at 64 px, alpha = 0."""
    return [
        "config=demo_cpu_supervised_spatial_resnet18", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.0.size={IMAGE_SIZE}",
        *SHORT_RUN, "config.OPTIMIZER.num_epochs=1", f"config.CHECKPOINT.DIR={ckpt}", "--alpha", "0",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "logged"), [
    ("{method:topoloss,layers:[layer2.0,layer2.1],weight:1.0}", "topography penalty (topoloss) layer2.0"),
    ("{method:local,layers:[layer2.1],weight:1.0,image_size:64}", "topography penalty (local) layer2.1"),
])
def test_a_method_with_a_penalty_trains_logs_it_and_loads_on_the_bench(
    small_positions: Path, small_images: Path, tmp_path: Path, spec: str, logged: str
) -> None:
    import torch
    import yaml

    from spacetorch.methods import method_from_spec
    from spacetorch.methods.bench import load_trunk

    ckpt = tmp_path / "ckpt"
    result = run_train([*_supervised(small_positions, small_images, ckpt), f"{KEY}={spec}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert logged in result.stdout
    # the methods' bench (compare-methods) rebuilds it, prepared by its method, with the trained weights
    path = ckpt / "model_final_checkpoint_phase0.torch"
    settings = yaml.safe_load(spec.replace(":", ": "))
    settings.pop("image_size", None)  # the trunk's setting, which load_trunk takes as an argument
    model = load_trunk(path, "resnet18", method_from_spec(settings), IMAGE_SIZE)
    trunk = torch.load(path, map_location="cpu", weights_only=True)["classy_state_dict"]["base_model"]["model"]["trunk"]
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, trunk[f"base_model.{key}"], msg=key)
    assert model(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, 512)


@pytest.mark.slow
def test_lateral_connections_train_and_leave_the_checkpoint_keys_alone(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    import torch

    from spacetorch.models import create_model

    ckpt = tmp_path / "ckpt"
    spec = "{method:lateral,layers:[layer2.0],weight:0.5,sigma:1.0}"
    result = run_train([*_supervised(small_positions, small_images, ckpt), f"{KEY}={spec}"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = torch.load(ckpt / "model_final_checkpoint_phase0.torch", map_location="cpu", weights_only=True)
    trunk = state["classy_state_dict"]["base_model"]["model"]["trunk"]
    plain = {f"base_model.{k}" for k in create_model("resnet18", headless=True).state_dict()}
    assert set(trunk) == plain
    # the methods' bench (compare-methods) loads it prepared by its method, with its weights
    from spacetorch.methods import method_from_spec
    from spacetorch.methods.bench import load_trunk

    method = method_from_spec({"method": "lateral", "layers": ["layer2.0"], "weight": 0.5, "sigma": 1.0})
    model = load_trunk(ckpt / "model_final_checkpoint_phase0.torch", "resnet18", method, IMAGE_SIZE)
    torch.testing.assert_close(model.conv1.weight, trunk["base_model.conv1.weight"])
    assert model(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, 512)


@pytest.mark.parametrize(("spec", "message"), [
    ("{method:magic,layers:[layer2.0]}", r"no topography method 'magic'; known: .*topoloss"),
    ("{method:topoloss,layers:[layer9.9]}", r"topography method .topoloss.: ResNet has no layer 'layer9.9' \(model resnet18\)"),
    ("{method:topoloss,layers:[layer2.0],factor:99}", r"factor 99.0 is larger than a grid side"),
    ("{method:topoloss,layers:[layer2.0],radius:2}", r"has no parameter\(s\) \['radius'\]; its parameters: factor \(default 2.0\)"),
    ("{method:lateral,layers:[layer2.0],weight:3}", r"weight \(the lateral share\) must be in \[0, 1\]"),
    ("{method:topoloss,weight:1}", r"needs 'layers'"),
])
def test_a_bad_topography_setting_is_refused_naming_the_key(
    small_positions: Path, small_images: Path, tmp_path: Path, spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        prepare([*_supervised(small_positions, small_images, tmp_path / "ckpt"), f"{KEY}={spec}"])
    assert stop.value.code == 2
    assert re.search(rf"train.py: error: config.MODEL.TRUNK.TRUNK_PARAMS.topography.*{message}", capsys.readouterr().err)
    assert not (tmp_path / "ckpt").exists()


def test_a_method_under_vissls_standard_step_is_refused(small_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "config=supervised_tdresnet50", "config.MACHINE.DEVICE=cpu", f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
        f"config.DATA.TEST.DATA_PATHS=[{small_images / 'val'}]", f"{KEY}={{method:topoloss,layers:[layer2.0]}}",
        f"config.CHECKPOINT.DIR={tmp_path / 'ckpt'}",
    ]
    with pytest.raises(SystemExit):
        prepare(args)
    assert "topography (topoloss) needs config.TRAINER.TRAIN_STEP_NAME=custom_train_step" in capsys.readouterr().err
