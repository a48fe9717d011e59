"""A topographic V1 ResNet-50 (variant a: DoG, local RF, tuned normalisation, polar transform)
trains a few steps through ``python train.py`` at 64 px, and its checkpoint loads back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spacetorch.checkpoints import load_trunk
from spacetorch.models.positions import retinotopic_positions

from train_helpers import run_train

pytestmark = pytest.mark.slow


def test_a_topographic_v1_resnet_trains_and_loads(small_images: Path, tmp_path: Path) -> None:
    positions = retinotopic_positions("v1_resnet50_a", n_neighborhoods=400).save(tmp_path / "positions")
    assert (positions / "layer1.2.pkl").exists()
    ckpt = tmp_path / "ckpt"
    result = run_train(
        [
            "config=simclr_spatial_v1_resnet50",
            "config.MACHINE.DEVICE=cpu",
            "config.DISTRIBUTED.BACKEND=gloo",
            "config.DISTRIBUTED.NUM_PROC_PER_NODE=1",
            "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=false",
            f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
            f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
            "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
            "config.DATA.NUM_DATALOADER_WORKERS=0",
            "config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=false",
            "config.OPTIMIZER.num_epochs=1",
            "config.LOG_FREQUENCY=1",
            f"config.CHECKPOINT.DIR={ckpt}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "spatial loss layer1_0" in result.stdout and "layer4_2" in result.stdout
    final = ckpt / "model_final_checkpoint_phase0.torch"
    trunk = load_trunk(final, "v1_resnet50_a")
    saved = torch.load(final, map_location="cpu", weights_only=True)["classy_state_dict"]["base_model"]["model"]["trunk"]
    torch.testing.assert_close(trunk.layer1[2].conv2[-1].weight, saved["base_model.layer1.2.conv2.0.weight"])
    assert trunk(torch.rand(2, 3, 64, 64)).shape == (2, 2048)
