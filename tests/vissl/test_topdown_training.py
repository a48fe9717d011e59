"""Top-Down Networks through ``python train.py``: the topographic coarse-to-fine trunk (SimCLR +
spatial loss on its three stages), and supervised training of a grey coarse-to-fine model and
its bottom-up twin, whose checkpoints the evaluation command reads."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from spacetorch.cli.evaluate_topdown import main as evaluate
from spacetorch.data import make_demo_image_folder
from spacetorch.models import retinotopic_positions
from spacetorch.models.checkpoints import load_trunk

from train_helpers import ONE_CPU_PROCESS, SHORT_RUN, run_train

pytestmark = pytest.mark.slow

SMALL_RUN = [*ONE_CPU_PROCESS, *SHORT_RUN]


def test_a_topographic_coarse_to_fine_trunk_trains_and_loads(small_images: Path, tmp_path: Path) -> None:
    positions = retinotopic_positions("topdown_resnet32_cifar", n_neighborhoods=400).save(tmp_path / "positions")
    ckpt = tmp_path / "ckpt"
    result = run_train(
        ["config=simclr_spatial_topdown_cifar", *SMALL_RUN, "config.OPTIMIZER.num_epochs=1", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
         f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", f"config.CHECKPOINT.DIR={ckpt}"],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logged = next(line for line in result.stdout.splitlines() if "spatial loss" in line)
    assert all(f"{layer} 0." in logged for layer in ("layer1", "layer2", "layer3")), logged
    trunk = load_trunk(ckpt / "model_final_checkpoint_phase0.torch", "topdown_resnet32_cifar")
    saved = torch.load(ckpt / "model_final_checkpoint_phase0.torch", map_location="cpu", weights_only=True)
    weights = saved["classy_state_dict"]["base_model"]["model"]["trunk"]
    torch.testing.assert_close(trunk.layer3.merge[2].weight, weights["base_model.layer3.merge.2.weight"])
    assert trunk(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_supervised_grey_twins_train_and_evaluate(tmp_path: Path) -> None:
    images = make_demo_image_folder(tmp_path / "images", n_train=48, n_val=12, size=28)  # colour files, MNIST's size
    classes = len(list((images / "train").iterdir()))
    checkpoints = {}
    for kind, width in (("topdown", 16), ("bottomup", 64)):
        ckpt = tmp_path / kind
        result = run_train(
            [f"config=supervised_{kind}_mnist", *SMALL_RUN, f"config.DATA.TRAIN.DATA_PATHS=[{images / 'train'}]",
             f"config.MODEL.HEAD.PARAMS=[[mlp,{{dims:[{width},{classes}]}}]]",
             "config.OPTIMIZER.num_epochs=3", "config.OPTIMIZER.param_schedulers.lr.milestones=[1,2]",  # lr x0.1 twice
             f"config.CHECKPOINT.DIR={ckpt}"],
            cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "top_1" in result.stdout
        checkpoints[kind] = ckpt / "model_final_checkpoint_phase2.torch"
    out = tmp_path / "eval"
    assert evaluate(["accuracy", "--model", f"topdown_resnet20_mnist={checkpoints['topdown']}",
                     "--model", f"bottomup_resnet20_mnist={checkpoints['bottomup']}", "--data", str(images / "val"),
                     "--workers", "0", "--device", "cpu", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    with open(out / "accuracy.csv") as file:
        rows = list(csv.DictReader(file))
    assert [r["model"] for r in rows] == ["topdown_resnet20_mnist", "bottomup_resnet20_mnist"] and classes > 1
