"""Tiled sheets and the fixed lateral interaction on them."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from spacetorch.models import create_model
from spacetorch.models.capture import capture_outputs
from spacetorch.models.lateral import LateralInteraction, add_lateral, from_sheet, to_sheet
from spacetorch.models.positions import tiled_coordinates


def test_the_sheet_layout_is_the_tiled_positions_layout() -> None:
    dims = (6, 3, 4)
    x = torch.arange(float(np.prod(dims))).reshape(1, *dims)  # value = unit index, channel-major
    sheet = to_sheet(x)[0, 0].numpy()
    xy = tiled_coordinates(dims, extent=(float(sheet.shape[1]), float(sheet.shape[0])))  # 1 mm per cell
    for unit, (cx, cy) in enumerate(xy):
        assert sheet[int(cy), int(cx)] == unit
    assert torch.equal(from_sheet(to_sheet(x), 6), x)


def test_the_interaction_spreads_a_delta_as_a_normalised_gaussian() -> None:
    lateral = LateralInteraction(sigma=1.0, strength=0.5)
    sheet = torch.zeros(1, 1, 16, 16)
    sheet[0, 0, 8, 8] = 1.0
    x = from_sheet(sheet, 16)  # 16 channels (4 x 4 tiles) at 4 x 4 positions
    out = to_sheet(lateral(x))[0, 0]
    r = np.arange(-2, 3)
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 2.0)
    g /= g.sum()
    expected = 0.5 * g
    expected[2, 2] += 0.5
    np.testing.assert_allclose(out[6:11, 6:11].numpy(), expected, rtol=1e-6)
    assert float(out.sum()) == pytest.approx(1.0)
    ones = torch.ones(2, 16, 3, 3)
    torch.testing.assert_close(lateral(ones), ones)  # a uniform sheet stays as it is (edges replicated)
    torch.testing.assert_close(LateralInteraction(strength=0.0)(x), x)


def test_lateral_connections_change_the_output_not_the_state_dict() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=5).eval()
    keys = set(model.state_dict())
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model(images)
    add_lateral(model.layer2[0], LateralInteraction(sigma=1.0, strength=0.5))
    assert set(model.state_dict()) == keys
    with torch.no_grad(), capture_outputs(model, ["layer2.0"]) as captured:
        after = model(images)
    assert not torch.allclose(before, after)
    block_only = model.layer2[0]._forward_hooks.copy()
    model.layer2[0]._forward_hooks.clear()
    with torch.no_grad():
        raw = model.layer2[0](model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(images))))))
    model.layer2[0]._forward_hooks.update(block_only)
    torch.testing.assert_close(captured["layer2.0"], model.layer2[0].lateral(raw))  # taps see the lateral output
    twin = copy.deepcopy(model)
    with torch.no_grad():
        torch.testing.assert_close(twin(images), after)
    with pytest.raises(ValueError, match="already has lateral connections"):
        add_lateral(model.layer2[0], LateralInteraction())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sigma": 0.0}, "sigma=0.0 is not valid"), ({"strength": 1.5}, "strength=1.5 is not valid"), ({"steps": 0}, "steps=0 is not valid"),
])
def test_bad_lateral_settings_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LateralInteraction(**kwargs)
