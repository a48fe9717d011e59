"""Adding a model family is one file: registered in the test itself, it gets positions, a
spatial trunk, a real VISSL run through train.py and checkpoint loading, with no change to
the package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import timm
import torch

from spacetorch.models import create_model, list_models, retinotopic_positions
from spacetorch.models.checkpoints import load_trunk
from spacetorch.models.topographic import TopographicModel
from spacetorch.models.trunks import spatial_model

from train_helpers import IMAGE_SIZE, run_train, small_run_overrides

FAMILY = '''
"""A ResNet-18 with a CIFAR stem (3x3 conv, stride 1, no max-pool): a new family in one file."""
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

from spacetorch.models import register_model


@register_model(input_size=32)
def cifar_resnet18(**kwargs):
    model = ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)
    model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model
'''


@pytest.mark.slow
def test_a_family_registered_in_one_file_trains_and_loads(tmp_path: Path, small_images: Path) -> None:
    family = tmp_path / "cifar_family.py"
    family.write_text(FAMILY)
    spec = importlib.util.spec_from_file_location("cifar_family", family)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cifar_family"] = module
    spec.loader.exec_module(module)
    assert "cifar_resnet18" in list_models() and "cifar_resnet18" in timm.list_models("cifar_*")

    # positions from the model's real output sizes: no max-pool, so layer1 keeps the input size
    positions = retinotopic_positions("cifar_resnet18", n_neighborhoods=400, input_size=IMAGE_SIZE)
    assert positions["layer1.0"].dims == (64, IMAGE_SIZE, IMAGE_SIZE)
    assert positions["layer4.1"].dims == (512, IMAGE_SIZE // 8, IMAGE_SIZE // 8)
    positions.save(tmp_path / "positions")
    flat, spatial = spatial_model("cifar_resnet18", positions)(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert flat.shape == (2, 512) and set(spatial) == {f"layer{s}_{b}" for s in range(1, 5) for b in range(2)}

    # a real VISSL run of the generic trunk, the family imported in every rank
    ckpt = tmp_path / "ckpt"
    overrides = small_run_overrides(tmp_path / "positions", small_images, ckpt)
    result = run_train(
        overrides
        + ["config.MODEL.TRUNK.NAME=spatial_model", "+config.MODEL.TRUNK.TRUNK_PARAMS.model=cifar_resnet18"]
        + ["--import", str(family)],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "spatial loss layer1_0" in result.stdout

    # the checkpoint loads as the family's model, and its units respond with positions
    final = ckpt / "model_final_checkpoint_phase0.torch"
    trunk = load_trunk(final, arch="cifar_resnet18")
    saved = torch.load(final, map_location="cpu", weights_only=True)["classy_state_dict"]["base_model"]["model"]["trunk"]
    torch.testing.assert_close(trunk.conv1.weight, saved["base_model.conv1.weight"])
    assert trunk.conv1.kernel_size == (3, 3)
    with pytest.raises(ValueError, match="the trunk is not a resnet18"):
        load_trunk(final, arch="resnet18")
    model = TopographicModel.from_checkpoint(final, tmp_path / "positions", arch="cifar_resnet18")
    responses, coordinates = model.responses(torch.rand(3, 3, IMAGE_SIZE, IMAGE_SIZE), ["layer2.0"], progress=False)["layer2.0"]
    assert responses.shape == (3, 128 * (IMAGE_SIZE // 2) ** 2) and coordinates.shape == (responses.shape[1], 2)
    assert isinstance(create_model("cifar_resnet18").maxpool, torch.nn.Identity)
