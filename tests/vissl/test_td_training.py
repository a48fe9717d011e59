"""Top-down attention ResNets through ``python train.py``: a topographic TD trunk (SimCLR +
spatial loss) and a supervised TD ResNet (VISSL's cross-entropy and accuracy meters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spacetorch.cli.evaluate_td import main as evaluate_td
from spacetorch.models.checkpoints import CheckpointError, load_trunk

from train_helpers import IMAGE_SIZE, ONE_CPU_PROCESS, SHORT_RUN, run_train, small_run_overrides

pytestmark = pytest.mark.slow

TD = {"time_steps": 2, "mdist": 1, "spotlight_gen_technique": "joint_top_bottom_concat_attention"}


def _trunk_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return state["classy_state_dict"]["base_model"]["model"]["trunk"]  # type: ignore[no-any-return]


def test_a_topographic_td_trunk_trains_and_its_checkpoint_loads(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    overrides = small_run_overrides(small_positions, small_images, ckpt)
    overrides[0] = "config=demo_cpu_simclr_spatial_tdresnet18"  # the ResNet-18 positions fit: same blocks
    result = run_train(overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "spatial loss layer1_0" in result.stdout and "layer4_1" in result.stdout

    final = ckpt / "model_final_checkpoint_phase0.torch"
    saved = _trunk_weights(final)
    assert "base_model.layer3.0.tdam.project.weight" in saved and "base_model.layer4.1.step_norms.0.bn2.weight" in saved
    trunk = load_trunk(final, "tdresnet18", model_kwargs=TD)
    torch.testing.assert_close(trunk.layer4[1].tdam.project.weight, saved["base_model.layer4.1.tdam.project.weight"])
    assert trunk(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, 512)
    with pytest.raises(CheckpointError, match=r"the trunk is not a tdresnet18 with \{'mdist': 2\}"):
        load_trunk(final, "tdresnet18", model_kwargs={"mdist": 2})


def test_a_supervised_td_resnet_trains_with_vissls_loss_and_meters(small_images: Path, tmp_path: Path) -> None:
    """The supervised recipe (warm-up + cosine, random erasing), made small: a TD ResNet-18 on
    the 12 classes of the demo images, one CPU process."""
    ckpt = tmp_path / "ckpt"
    result = run_train(
        [
            "config=supervised_tdresnet50",
            *ONE_CPU_PROCESS,
            "config.MODEL.TRUNK.TRUNK_PARAMS.model=tdresnet18",
            "config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.apply_td_at_blocks_for_layers=[[0,1],[0,1]]",
            "config.MODEL.HEAD.PARAMS=[[mlp,{dims:[512,12]}]]",
            f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
            f"config.DATA.TRAIN.TRANSFORMS.0.size={IMAGE_SIZE}",
            f"config.DATA.TEST.DATA_PATHS=[{small_images / 'val'}]", "config.DATA.TEST.BATCHSIZE_PER_REPLICA=4",
            f"config.DATA.TEST.TRANSFORMS.0.size={IMAGE_SIZE}", f"config.DATA.TEST.TRANSFORMS.1.size={IMAGE_SIZE}",
            *SHORT_RUN,
            "config.OPTIMIZER.num_epochs=2",
            f"config.CHECKPOINT.DIR={ckpt}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "top_1" in result.stdout  # VISSL's accuracy meter
    assert "mixed precision (MODEL.AMP_PARAMS.USE_AMP) needs CUDA: off for this CPU run" in result.stdout
    assert (ckpt / "model_best_accuracy.torch").is_file() and (ckpt / "best_accuracy.json").is_file()
    final = ckpt / "model_final_checkpoint_phase1.torch"
    kwargs = {**TD, "apply_td_at_blocks_for_layers": [[0, 1], [0, 1]]}
    trunk = load_trunk(final, "tdresnet18", model_kwargs=kwargs)
    assert "base_model.layer3.1.tdam.top_branch.0.weight" in _trunk_weights(final)
    assert torch.isfinite(trunk(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE))).all()

    # the VISSL checkpoint (trunk + linear head) evaluates on the validation folders
    out = tmp_path / "evaluation"
    assert evaluate_td([
        "--checkpoint", str(final), "--arch", "tdresnet18", "--model-kwargs", json.dumps(kwargs),
        "--data", str(small_images / "val"), "--resize", str(IMAGE_SIZE), "--crop", str(IMAGE_SIZE),
        "--workers", "0", "--device", "cpu", "--quiet", "--out", str(out),
    ]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["images"] == 12 and len(results["top1_per_step"]) == 2 and 0 <= results["top1"] <= 1


def test_the_td_convnext_recipe_trains_and_evaluates(small_images: Path, tmp_path: Path) -> None:
    """The TD ConvNeXt recipe (AdamW, RandAugment, mixup / cutmix with label smoothing), made small:
    a small TD ConvNeXt on the 12 classes of the demo images, one CPU process, then the evaluation
    with class activation maps read through the head's norm."""
    ckpt = tmp_path / "ckpt"
    result = run_train(
        [
            "config=supervised_tdconvnext_tiny",
            *ONE_CPU_PROCESS,
            "+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.depths=[1,1,2,1]",
            "+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.dims=[16,32,64,128]",
            "config.MODEL.HEAD.PARAMS=[[mlp,{dims:[128,12]}]]",
            "config.DATA.TRAIN.COLLATE_FUNCTION_PARAMS.num_classes=12",
            f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
            f"config.DATA.TRAIN.TRANSFORMS.0.size={IMAGE_SIZE}",
            f"config.DATA.TEST.DATA_PATHS=[{small_images / 'val'}]", "config.DATA.TEST.BATCHSIZE_PER_REPLICA=4",
            f"config.DATA.TEST.TRANSFORMS.0.size={IMAGE_SIZE}", f"config.DATA.TEST.TRANSFORMS.1.size={IMAGE_SIZE}",
            *SHORT_RUN,
            "config.OPTIMIZER.num_epochs=1",
            f"config.CHECKPOINT.DIR={ckpt}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "top_1" in result.stdout
    final = ckpt / "model_final_checkpoint_phase0.torch"
    assert "base_model.stages.3.blocks.0.tdam.project.weight" in _trunk_weights(final)

    out = tmp_path / "evaluation"
    kwargs = {"time_steps": 2, "mdist": 1, "depths": [1, 1, 2, 1], "dims": [16, 32, 64, 128]}
    val = small_images / "val"
    cam_image = next(p for p in sorted(val.rglob("*")) if p.is_file())
    assert evaluate_td([
        "--checkpoint", str(final), "--arch", "tdconvnext_tiny", "--model-kwargs", json.dumps(kwargs),
        "--data", str(val), "--resize", str(IMAGE_SIZE), "--crop", str(IMAGE_SIZE),
        "--workers", "0", "--device", "cpu", "--quiet", "--out", str(out), "--cam-images", str(cam_image),
    ]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["images"] == 12 and len(results["top1_per_step"]) == 2 and 0 <= results["top1"] <= 1
    assert len(list((out / "cams").glob("*.png"))) == 1
