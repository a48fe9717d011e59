"""Receptive fields measured by gradients, against kernel arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18

from spacetorch.models.receptive_field import border_units, border_widths


def test_resnet18_widths_match_the_kernel_arithmetic() -> None:
    """layer2.0 unit i sees pixels [8i - 33, 8i + 33]: it touches pixel 0 for i <= 4 and pixel 223 for i >= 24."""
    model = resnet18()
    assert border_widths(model, "layer2.0", 224) == (5, 4, 5, 4)
    assert border_widths(model, "layer1.0", 64) == (4, 3, 4, 3)  # [4i - 13, 4i + 13]
    assert all(p.grad is None for p in model.parameters())  # measuring leaves no gradients behind


def test_a_hand_made_net_with_one_sided_padding() -> None:
    """Two 5 x 5 convolutions, no padding on the first, 2 on the second: unit i sees [i - 2, i + 6]
    of a 20 px image (16 outputs after the first conv): i <= 2 touch pixel 0, i >= 13 pixel 19."""
    net = nn.Sequential(nn.Conv2d(1, 4, 5), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2))
    assert border_widths(net, "2", 20, in_chans=1) == (3, 3, 3, 3)
    mask, what = border_units(net, "2", (4, 16, 16), 20, in_chans=1)
    plane = np.zeros((16, 16), dtype=bool)
    plane[:3], plane[13:], plane[:, :3], plane[:, 13:] = True, True, True, True
    assert (mask.reshape(4, 16, 16) == plane).all() and "3/3/3/3" in what
    with pytest.raises(ValueError, match="exclude must be 'rf' or a number"):
        border_units(net, "2", (4, 16, 16), 20, exclude=-1, in_chans=1)


def test_an_unknown_layer_is_named() -> None:
    with pytest.raises(ValueError, match="no submodule"):
        border_widths(nn.Sequential(nn.Conv2d(1, 1, 3)), "layer9", 8, in_chans=1)
    assert torch.is_grad_enabled()
