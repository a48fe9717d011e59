"""Vision transformers on cortical sheets: patch tokens as feature maps, areas by depth, neighborhoods
of the TDANN's size, and no border to leave out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spacetorch.models import create_model, model_info, retinotopic_positions
from spacetorch.models.capture import TOKEN_PREFIX, capture_outputs
from spacetorch.models.families.vit import depth_areas
from spacetorch.models.positions.retinotopy import AREA_UNITS, AREAS
from spacetorch.models.registry import RESNET_AREAS
from spacetorch.models.sheets import retinotopic_layer_specs


class _Tokens(nn.Module):
    """Outputs the tokens it is given; carries two prefix tokens (a class and a register token)."""

    def __init__(self) -> None:
        super().__init__()
        setattr(self, TOKEN_PREFIX, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens


def test_patch_tokens_become_a_feature_map_in_their_patches_places() -> None:
    side, channels = 3, 4
    tokens = torch.zeros(1, 2 + side * side, channels)
    for index in range(side * side):  # token 2 + index is the patch at row index // side, column index % side
        tokens[0, 2 + index] = torch.arange(channels) * 100 + index
    tokens[0, :2] = -1  # the class and register tokens
    model = nn.Sequential(_Tokens())
    with capture_outputs(model, ["0"]) as captured:
        model(tokens)
    grid = captured["0"]
    assert grid.shape == (1, channels, side, side)
    for row in range(side):
        for column in range(side):
            assert grid[0, :, row, column].tolist() == (torch.arange(channels) * 100 + row * side + column).tolist()
    assert (grid >= 0).all(), "no prefix token on the sheet"


def test_a_vit_block_is_a_map_of_its_patch_tokens_without_the_class_token() -> None:
    torch.manual_seed(0)
    model = create_model("vit_tiny_patch16_224", headless=True).eval()
    raw: dict[str, torch.Tensor] = {}
    model.blocks[3].register_forward_hook(lambda module, inputs, output: raw.setdefault("tokens", output))
    with torch.no_grad(), capture_outputs(model, ["blocks.3"]) as captured:
        model(torch.rand(2, 3, 64, 64))
    assert captured["blocks.3"].shape == (2, 192, 4, 4)
    torch.testing.assert_close(captured["blocks.3"].flatten(2).transpose(1, 2), raw["tokens"][:, 1:, :])


def test_areas_by_depth_give_the_tdanns_resnet18_areas() -> None:
    names = model_info("resnet18").layer_names(create_model("resnet18"))
    assert depth_areas(names).values() and list(depth_areas(names).values()) == list(RESNET_AREAS(names).values())
    blocks = [f"blocks.{i}" for i in range(12)]
    assert [depth_areas(blocks)[b] for b in blocks] == ["retina"] * 3 + ["V1"] * 3 + ["V2"] * 2 + ["V4"] + ["VTC"] * 3


def test_a_blocks_neighborhood_holds_as_many_units_as_the_resnets_layer_of_its_area() -> None:
    for spec in retinotopic_layer_specs("vit_tiny_patch16_224", input_size=224):
        units = int(np.prod(spec.dims))
        expected = AREA_UNITS[spec.area] / AREAS[spec.area].tissue_size ** 2 * AREAS[spec.area].neighborhood_width ** 2
        assert units / spec.tissue_size**2 * spec.neighborhood_width**2 == pytest.approx(expected), spec.name
    resnet = {spec.name: spec.neighborhood_width for spec in retinotopic_layer_specs("resnet18", input_size=224)}
    assert resnet["layer2.0"] == AREAS["V1"].neighborhood_width, "the ResNets keep their areas' own widths"


def test_no_patch_token_is_left_out_as_a_border_unit() -> None:
    from spacetorch.maps import kept_units
    from spacetorch.models.receptive_field import border_units
    from spacetorch.models.topographic import TopographicModel

    specs = retinotopic_layer_specs("vit_tiny_patch16_224", input_size=64, layer_names=["blocks.4"])
    positions = retinotopic_positions("vit_tiny_patch16_224", n_neighborhoods=20, input_size=64, layers=specs)
    model = TopographicModel(create_model("vit_tiny_patch16_224", headless=True), positions)
    kept, what = kept_units(model, "blocks.4", 64)
    assert kept.all() and what == ""
    border, why = border_units(model.model, "blocks.4", (192, 4, 4), 64)
    assert not border.any() and "patch tokens see no padding" in why
    resnet = create_model("resnet18", headless=True)
    assert border_units(resnet, "layer2.0", (128, 8, 8), 64)[0].any(), "a ResNet's padded border is still left out"
