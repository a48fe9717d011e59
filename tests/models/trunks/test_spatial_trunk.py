"""SpatialTrunk without VISSL: outputs, keys, positions that move with the module, errors."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
from torch import nn

from spacetorch.models import create_model, retinotopic_positions
from spacetorch.models.layers import vissl_key
from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError
from spacetorch.models.trunks import SpatialTrunk, spatial_model

SIZE = 64


@pytest.fixture(scope="module")
def positions() -> NetworkPositions:
    return retinotopic_positions("resnet18", n_neighborhoods=200, input_size=SIZE)


def test_outputs_are_the_backbones_block_outputs_with_their_positions(positions) -> None:
    trunk = spatial_model("resnet18", positions).eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    flat, spatial = trunk(x)
    assert list(spatial) == [vissl_key(name) for name in positions]
    reference = trunk.base_model
    captured = {}
    handles = [reference.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: captured.__setitem__(n, o)) for n in positions]
    with torch.no_grad():
        expected_flat = reference(x)
    for handle in handles:
        handle.remove()
    torch.testing.assert_close(flat, expected_flat, rtol=0, atol=0)  # the same batch, the same computation
    for name in positions:
        features, layer = spatial[vissl_key(name)]
        assert isinstance(layer, LayerPositions) and layer.name == name
        torch.testing.assert_close(features, captured[name], rtol=0, atol=0)


def test_weights_keep_the_checkpoint_layout_and_positions_stay_out_of_it(positions) -> None:
    trunk = spatial_model("resnet18", positions)
    assert all(k.startswith("base_model.") for k in trunk.state_dict())
    plain = create_model("resnet18", headless=True)
    plain.load_state_dict({k[len("base_model."):]: v for k, v in trunk.state_dict().items()})


def test_positions_move_with_the_module_and_leave_the_callers_alone(positions) -> None:
    trunk = spatial_model("resnet18", positions).to(torch.float64)
    layer = trunk.positions["layer2.0"]
    assert layer.coordinates.dtype == torch.float32 and layer.neighborhood_indices.dtype == torch.int32
    assert isinstance(positions["layer2.0"].coordinates, np.ndarray)
    assert trunk.positions["layer2.0"] is not positions["layer2.0"]


def test_a_deep_copy_records_its_own_outputs(positions) -> None:
    trunk = spatial_model("resnet18", positions)
    clone = copy.deepcopy(trunk)
    with torch.no_grad():
        clone.base_model.conv1.weight.mul_(2)
    x = torch.randn(2, 3, SIZE, SIZE)
    a, b = trunk(x)[1]["layer1_0"][0], clone(x)[1]["layer1_0"][0]
    assert not torch.equal(a, b)
    m = clone.base_model
    torch.testing.assert_close(b, m.layer1[0](m.maxpool(m.relu(m.bn1(m.conv1(x))))))


def test_concurrent_forwards_in_threads_keep_their_own_outputs(positions) -> None:
    trunk = spatial_model("resnet18", positions).eval()
    inputs = [torch.randn(2, 3, SIZE, SIZE) for _ in range(4)]
    with torch.no_grad():
        expected = [trunk(x)[1]["layer3_1"][0] for x in inputs]
    results: dict[int, torch.Tensor] = {}
    barrier = threading.Barrier(len(inputs))

    def run(i: int) -> None:
        barrier.wait()
        for _ in range(3):
            with torch.no_grad():
                results[i] = trunk(inputs[i])[1]["layer3_1"][0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, out in enumerate(expected):
        torch.testing.assert_close(results[i], out, rtol=0, atol=0)


def test_positions_for_another_image_size_are_refused_naming_the_layer(positions) -> None:
    trunk = spatial_model("resnet18", positions)
    with pytest.raises(PositionsError, match=r"layer 'layer1\.0' outputs .* \(64, 24, 24\) for \(96, 96\) px input.*dims \(64, 16, 16\)"):
        trunk(torch.randn(2, 3, 96, 96))


def test_layers_without_positions_or_modules_are_refused(positions) -> None:
    with pytest.raises(PositionsError, match="layer 'layer9.0' has no positions"):
        spatial_model("resnet18", positions, layers=["layer1.0", "layer9.0"])
    with pytest.raises(PositionsError, match="Sequential has no such submodule; are the positions for another model"):
        SpatialTrunk(nn.Sequential(nn.Conv2d(3, 4, 3)), positions)


class _TupleBackbone(nn.Module):
    """Returns (pooled, extra) and its block returns (features, aux): first elements count."""

    def __init__(self) -> None:
        super().__init__()
        self.block = _TupleBlock()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
        features, _ = self.block(x)
        return features.mean((2, 3)), "extra"


class _TupleBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, y.sum()


def test_backbones_and_blocks_returning_tuples() -> None:
    coords = np.random.default_rng(0).uniform(0, 1, (2 * 4 * 4, 2))
    layer = LayerPositions("block", (2, 4, 4), coords, np.arange(6, dtype=np.int32).reshape(1, 6), 0.5)
    trunk = SpatialTrunk(_TupleBackbone(), NetworkPositions({"block": layer}))
    flat, spatial = trunk(torch.randn(2, 3, 4, 4))
    assert flat.shape == (2, 2) and spatial["block"][0].shape == (2, 2, 4, 4)
