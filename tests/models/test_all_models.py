"""Every registered model: builds at a small input, forward and backward on the CPU, every
parameter gets a gradient, outputs are finite; and it gets positions and a spatial trunk.

A new family is covered here by registering it."""

from __future__ import annotations

import pytest
import torch

from spacetorch.losses import LayerWeightedSpatialLoss
from spacetorch.models import create_model, list_models, model_info, retinotopic_positions
from spacetorch.models.layers import vissl_key
from spacetorch.models.trunks import SpatialTrunk

SMALL = 64  # px (or the model's own input size if smaller)
#: deeper or wider versions of a model the fast tier already builds (resnet50, resnext50_32x4d,
#: tdresnet50, vit_tiny_patch16_224): the same code at more blocks or channels, built in the slow
#: tier (make test); the four largest (resnet152, resnext101_32x8d, resnext101_64x4d,
#: wide_resnet101_2) only repeat resnet101's and wide_resnet50_2's code at more blocks or width
DEEPER = {"resnet101", "wide_resnet50_2", "tdresnet101", "vit_small_patch16_224", "vit_base_patch16_224", "vit_base_patch32_224",
          "deit_small_patch16_224"}
LARGEST = {"resnet152", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2"}
MODELS = [pytest.param(name, marks=pytest.mark.slow) if name in DEEPER else name for name in list_models() if name not in LARGEST]


def _input(name: str) -> torch.Tensor:
    info = model_info(name)
    size = min(SMALL, info.input_size)
    return torch.rand(2, info.in_chans, size, size, generator=torch.Generator().manual_seed(0))


def _check_gradients(model: torch.nn.Module, name: str) -> None:
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradient in {bad[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_plain_model_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    out = model(_input(name))
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    _check_gradients(model, name)


@pytest.mark.parametrize("name", MODELS)
def test_positions_and_spatial_trunk(name: str) -> None:
    torch.manual_seed(0)
    x = _input(name)
    positions = retinotopic_positions(name, n_neighborhoods=50, input_size=x.shape[-1])
    model = create_model(name, headless=True)
    info = model_info(name)
    assert list(positions) == info.layer_names(model)
    trunk = SpatialTrunk(model, positions)
    flat, spatial = trunk(x)
    assert flat.ndim == 2 and torch.isfinite(flat).all()
    assert list(spatial) == [vissl_key(layer) for layer in positions]
    total, per_layer = LayerWeightedSpatialLoss(dict.fromkeys(spatial, 1.0))(spatial)
    assert all(torch.isfinite(v) for v in per_layer.values())
    (total + flat.square().mean()).backward()
    _check_gradients(trunk, name)
