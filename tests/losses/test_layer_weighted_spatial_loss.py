"""LayerWeightedSpatialLoss on a spatial trunk's output, without VISSL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spacetorch.losses import LayerWeightedSpatialLoss, spatial_loss
from spacetorch.models.positions import LayerPositions


def _layer(name: str, dims=(2, 3, 3), hoods: int = 1, seed: int = 0) -> LayerPositions:
    rng = np.random.default_rng(seed)
    n = int(np.prod(dims))
    table = np.stack([rng.choice(n, 6, replace=False) for _ in range(hoods)]).astype(np.int32)
    return LayerPositions(name, dims, rng.uniform(0, 3, (n, 2)), table, 1.0)


def test_weighted_sum_equals_the_per_layer_losses() -> None:
    layers = {"layer1_0": _layer("layer1.0", seed=1), "layer2_0": _layer("layer2.0", seed=2)}
    outputs = {key: (torch.randn(5, 2, 3, 3), layer) for key, layer in layers.items()}
    loss = LayerWeightedSpatialLoss({"layer1_0": 0.5, "layer2_0": 2.0})
    total, per_layer = loss(outputs)
    expected = {}
    for key, (features, layer) in outputs.items():  # one neighborhood each: the draw is known
        expected[key] = spatial_loss(features, torch.as_tensor(layer.coordinates), torch.as_tensor(layer.neighborhood_indices[0]))
        torch.testing.assert_close(per_layer[key], expected[key])
    torch.testing.assert_close(total, 0.5 * expected["layer1_0"] + 2.0 * expected["layer2_0"])


def test_layers_of_weight_zero_are_measured_without_gradient() -> None:
    layer = _layer("layer1.0")  # one neighborhood: every draw is that one
    hoods = torch.as_tensor(layer.neighborhood_indices)
    loss = LayerWeightedSpatialLoss({"layer1_0": 0.0, "layer1_1": 2.0})
    torch.manual_seed(0)
    features = torch.randn(4, 2, 3, 3, requires_grad=True)
    other = torch.randn(4, 2, 3, 3, requires_grad=True)
    total, per_layer = loss({"layer1_0": (features, layer), "layer1_1": (other, layer)})
    coords = torch.as_tensor(layer.coordinates, dtype=torch.float32)
    expected = spatial_loss(features.detach(), coords, hoods)
    assert torch.isclose(per_layer["layer1_0"], expected)
    assert torch.isclose(total, 2.0 * per_layer["layer1_1"])
    total.backward()
    assert features.grad is None and other.grad is not None


def test_missing_and_extra_layers_are_named() -> None:
    loss = LayerWeightedSpatialLoss({"layer1_0": 1.0, "layer9_0": 1.0})
    with pytest.raises(KeyError, match=r"layer_weights names \['layer9_0'\].*outputs \['layer2_0'\]"):
        loss({"layer1_0": (torch.randn(4, 2, 3, 3), _layer("layer1.0")), "layer2_0": (torch.randn(4, 2, 3, 3), _layer("layer2.0"))})


def test_numpy_positions_of_a_users_trunk_are_copied_to_the_device_once() -> None:
    layer = _layer("layer4.1")
    loss = LayerWeightedSpatialLoss({"layer4_1": 1.0})
    first = loss._tables("layer4_1", layer, torch.device("cpu"))
    second = loss._tables("layer4_1", layer, torch.device("cpu"))
    assert first[0] is second[0] and first[1] is second[1]
    assert first[1].dtype == torch.int32


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="layer_weights is empty"):
        LayerWeightedSpatialLoss({})
    with pytest.raises(ValueError, match="neighborhoods_per_batch must be >= 1, got 0"):
        LayerWeightedSpatialLoss({"a": 1.0}, neighborhoods_per_batch=0)


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -0.25])
def test_layer_weights_must_be_finite_and_non_negative(weight: float) -> None:
    with pytest.raises(ValueError, match=rf"layer_weights.b must be a finite number >= 0 \(0: no topography\), got {weight}"):
        LayerWeightedSpatialLoss({"a": 1.0, "b": weight})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1e-9, True, "1", None])
def test_the_weight_rule_refuses_what_is_not_a_finite_number_at_least_zero(value: object) -> None:
    from spacetorch.losses import check_weight

    with pytest.raises(ValueError, match=r"^--alpha must be a finite number >= 0 \(0: no topography\), got "):
        check_weight(value, "--alpha")
    assert check_weight(0, "--alpha") == 0.0 and check_weight(2.5, "--alpha") == 2.5
