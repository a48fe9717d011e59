"""The topography methods: registry, settings, architecture changes, penalties and their sheets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spacetorch.methods import TopographyMethod, list_methods, method_from_spec, register_method
from spacetorch.models import create_model, retinotopic_positions
from spacetorch.models.families.v1 import LocallyConnected2d
from spacetorch.models.positions import tiled_positions


def test_the_shipped_methods_are_listed_with_their_papers() -> None:
    from spacetorch.methods import METHODS

    assert {"tdann", "topoloss", "lateral", "local"} <= set(list_methods())
    assert all(METHODS[name].paper and METHODS[name].sheet in ("retinotopic", "tiled") for name in list_methods())


def test_topoloss_penalises_every_convolution_of_its_layers_with_gradients() -> None:
    model = create_model("resnet18", num_classes=5)
    method = method_from_spec({"method": "topoloss", "layers": ["layer2_0", "layer3.1"], "weight": 2.0, "factor": 2})
    method.prepare(model, 64)
    penalties = method.penalties(model)
    assert list(penalties) == ["layer2.0", "layer3.1"]  # VISSL keys resolved to module names
    from spacetorch.losses import topoloss, weight_sheet

    convs = [model.layer2[0].conv1, model.layer2[0].conv2, model.layer2[0].downsample[0]]
    expected = 2.0 * torch.stack([topoloss(weight_sheet(c), 2.0) for c in convs]).mean()
    torch.testing.assert_close(penalties["layer2.0"], expected)
    penalties["layer2.0"].backward()
    assert model.layer2[0].conv2.weight.grad is not None and model.layer3[1].conv2.weight.grad is None


def test_the_local_method_makes_conv2_locally_connected_and_its_penalty_zero_for_equal_kernels() -> None:
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=5).eval()
    images = torch.rand(2, 3, 64, 64)
    method = method_from_spec({"method": "local", "layers": ["layer2.1"]})
    method.prepare(model, 64)
    local = model.layer2[1].conv2
    assert isinstance(local, LocallyConnected2d) and tuple(local.weight.shape) == (128, 128, 8, 8, 9)
    assert model(images).shape == (2, 5)
    with torch.no_grad():  # one kernel for every unit: neighbours agree
        local.weight.copy_(torch.randn(1, 128, 1, 1, 9).expand_as(local.weight))
        assert float(method.penalties(model)["layer2.1"]) == pytest.approx(0.0, abs=1e-6)
        local.weight.normal_()
        assert float(method.penalties(model)["layer2.1"]) == pytest.approx(1.0, abs=0.05)  # random kernels: cos ~ 0


def test_a_new_method_is_one_registered_class() -> None:
    @register_method
    class Shrink(TopographyMethod):
        name = "test_shrink"
        paper = "none"
        PARAMS = {"power": 2}

        def penalties(self, model: nn.Module) -> dict[str, torch.Tensor]:
            return {n: self.weight * m.weight.abs().pow(self.params["power"]).mean() for n, m in self.modules(model).items()}

    try:
        method = method_from_spec({"method": "test_shrink", "layers": ["fc"], "weight": 0.5, "power": 1})
        model = create_model("resnet18", num_classes=3)
        torch.testing.assert_close(method.penalties(model)["fc"], 0.5 * model.fc.weight.abs().mean())
        with pytest.raises(ValueError, match=r"power=1.5 must be an integer"):
            method_from_spec({"method": "test_shrink", "layers": ["fc"], "power": 1.5})
    finally:
        from spacetorch.methods import METHODS

        METHODS.pop("test_shrink")


def test_tiled_positions_keep_the_sheets_and_tile_the_channels() -> None:
    retinotopic = retinotopic_positions("resnet18", n_neighborhoods=50, input_size=64)
    tiled = tiled_positions(retinotopic, n_neighborhoods=50)
    assert list(tiled.layer_positions) == list(retinotopic.layer_positions)
    for name, layer in tiled.layer_positions.items():
        template = retinotopic[name]
        assert layer.dims == template.dims and layer.neighborhood_width >= template.neighborhood_width
        span = np.ptp(template.coordinates, axis=0)
        assert np.all(layer.coordinates.max(0) <= span + 1e-9) and layer.num_neighborhoods > 0
    # layer2.0 (128 x 8 x 8): channels 0 and 1 of one position are one cell apart; channel 0 of
    # neighbouring positions one tile (16 cells) apart
    xy = tiled["layer2.0"].coordinates.reshape(128, 8, 8, 2)
    cell = xy[1, 0, 0, 0] - xy[0, 0, 0, 0]
    assert xy[0, 0, 1, 0] - xy[0, 0, 0, 0] == pytest.approx(16 * cell)
