"""TopographicModel: responses registered with positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from spacetorch.models.checkpoints import load_trunk
from spacetorch.models.positions import NetworkPositions, PositionsError
from spacetorch.models.topographic import IMAGENET_MEAN, IMAGENET_STD, TopographicModel


@pytest.fixture(scope="module")
def model(small_model_files: tuple[Path, Path]) -> TopographicModel:
    checkpoint, positions = small_model_files
    return TopographicModel.from_checkpoint(checkpoint, positions)


def test_layers_follow_the_model_and_responses_match_a_plain_forward(model, small_model_files) -> None:
    assert model.layers == [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    images = torch.rand(5, 3, 64, 64)
    out = model.responses(images, ["layer3.1", "layer1.0"], batch_size=2, progress=False)
    assert list(out) == ["layer3.1", "layer1.0"]

    trunk = load_trunk(small_model_files[0])
    captured = {}
    trunk.layer3[1].register_forward_hook(lambda m, i, o: captured.__setitem__("layer3.1", o))
    trunk.layer1[0].register_forward_hook(lambda m, i, o: captured.__setitem__("layer1.0", o))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = {name: [] for name in out}
    with torch.no_grad():
        # like with like: the same batches of 2 + 2 + 1 (CPU convolutions of another batch
        # size may differ in the last bits)
        for batch in images.split(2):
            trunk((batch - mean) / std)
            for name in expected:
                expected[name].append(captured[name].flatten(1))
    positions = NetworkPositions.load_from_dir(small_model_files[1])
    for layer, (responses, coordinates) in out.items():
        torch.testing.assert_close(responses, torch.cat(expected[layer]), rtol=0, atol=0)
        assert responses.shape == (5, int(np.prod(positions[layer].dims)))
        np.testing.assert_allclose(coordinates.numpy(), positions[layer].coordinates, rtol=1e-6)


def test_datasets_and_batch_iterables_give_the_same_responses(model) -> None:
    images = torch.rand(7, 3, 64, 64)
    # the same batches of 3 + 3 + 1 each way: results are then equal bit for bit
    direct = model.responses(images, ["layer2.0"], batch_size=3, progress=False)["layer2.0"][0]
    from_dataset = model.responses(TensorDataset(images, torch.arange(7)), ["layer2.0"], batch_size=3, progress=False)
    from_batches = model.responses([(b, None) for b in images.split(3)], ["layer2.0"], progress=False)
    torch.testing.assert_close(from_dataset["layer2.0"][0], direct, rtol=0, atol=0)
    torch.testing.assert_close(from_batches["layer2.0"][0], direct, rtol=0, atol=0)


def test_forward_stops_after_the_last_requested_layer(model) -> None:
    called = []
    handle = model.model.layer3.register_forward_hook(lambda *a: called.append("layer3"))
    try:
        model(torch.rand(1, 3, 64, 64), ["layer1.1"])
        assert called == []
        model(torch.rand(1, 3, 64, 64), ["layer1.1", "layer4.0"])
        assert called == ["layer3"]
    finally:
        handle.remove()


def test_errors_name_the_layer_and_the_image_size(model) -> None:
    with pytest.raises(ValueError, match=r"no positions for layer\(s\) \['layer5.0'\]; this model's layers are \['layer1.0'"):
        model.responses(torch.rand(1, 3, 64, 64), ["layer5.0"])
    with pytest.raises(PositionsError, match=r"layer 'layer2.0' outputs features of shape \(C, H, W\) = \(128, 28, 28\) for \(224, 224\) px"):
        model.responses(torch.rand(1, 3, 224, 224), ["layer2.0"])
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\), got \(2, 1, 64, 64\)"):
        model(torch.rand(2, 1, 64, 64))


def test_positions_for_a_missing_module_are_refused(small_model_files) -> None:
    positions = NetworkPositions.load_from_dir(small_model_files[1])
    with pytest.raises(PositionsError, match=r"layer\(s\) \['layer1.0'"):
        TopographicModel(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), positions)


@pytest.mark.gpu
def test_runs_on_cuda(model) -> None:
    out = model.responses(torch.rand(2, 3, 64, 64), ["layer2.0"], device="cuda", progress=False)
    assert out["layer2.0"][0].device.type == "cpu"


def test_responses_use_eval_mode_and_restore_the_mode(model) -> None:
    images = torch.rand(3, 3, 64, 64)
    expected = model.responses(images, ["layer1.0"], progress=False)["layer1.0"][0]
    model.train()
    try:
        got = model.responses(images, ["layer1.0"], progress=False)["layer1.0"][0]
        assert model.training and model.model.training
    finally:
        model.eval()
    torch.testing.assert_close(got, expected)  # train-mode batch norm would use the batch's statistics


class _Recurrent(torch.nn.Module):
    """``block`` runs twice per forward pass (as a block run once per computation step)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 2, 3, padding=1)
        self.block = torch.nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.block(self.stem(x)))


def test_a_layer_that_runs_several_times_gives_its_last_call() -> None:
    from spacetorch.models.positions import LayerPositions

    rng = np.random.default_rng(0)
    layers = {
        name: LayerPositions(name, (2, 4, 4), rng.uniform(0, 1, (32, 2)), np.arange(6, dtype=np.int32).reshape(1, 6), 0.5)
        for name in ("stem", "block")
    }
    net = _Recurrent()
    model = TopographicModel(net, NetworkPositions(layers), mean=None, std=None)
    images = torch.rand(2, 3, 4, 4)
    for _ in range(2):  # the first call learns that block runs twice; the second must not stop early
        out = model.responses(images, ["stem", "block"], progress=False)
        with torch.no_grad():
            torch.testing.assert_close(out["block"][0], net.block(net.block(net.stem(images))).flatten(1))
            torch.testing.assert_close(out["stem"][0], net.stem(images).flatten(1))
