import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

from spacetorch.losses import SpatialLoss, spatial_loss
from spacetorch.models.positions import LayerPositions


def _reference(features: np.ndarray, coords: np.ndarray, hood: np.ndarray, kind: str) -> float:
    """The tdann.md formula for one neighborhood, written with NumPy/SciPy."""
    responses = features.reshape(features.shape[0], -1)[:, hood]
    corr = np.corrcoef(responses, rowvar=False)
    upper = np.triu_indices(len(hood), k=1)  # pdist's pair order
    r = corr[upper]
    d = 1.0 / (pdist(coords[hood]) + 1.0)
    if kind == "absolute":
        return float(np.mean(np.abs(r - d)))
    return float((1.0 - pearsonr(r, d).statistic) / 2.0)


@pytest.fixture
def layer():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(16, 3, 5, 5))
    coords = rng.uniform(0, 4, (75, 2))
    hoods = np.stack([rng.choice(75, 20, replace=False) for _ in range(3)])
    return features, coords, hoods


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_matches_numpy_reference(layer, kind):
    features, coords, hoods = layer
    got = spatial_loss(torch.as_tensor(features), torch.as_tensor(coords), torch.as_tensor(hoods[0]), kind)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(_reference(features, coords, hoods[0], kind), rel=1e-10)


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_several_neighborhoods_average(layer, kind):
    features, coords, hoods = layer
    got = spatial_loss(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(coords),
                       torch.as_tensor(hoods, dtype=torch.int32), kind)
    expected = np.mean([_reference(features, coords, hood, kind) for hood in hoods])
    assert float(got) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_channels_last_features_give_the_same_loss_and_a_channels_last_gradient(layer, kind):
    """Unit i is the same unit (c, h, w) in either memory format; the gradient keeps the format."""
    features, coords, hoods = layer
    contiguous = torch.as_tensor(features).requires_grad_()
    channels_last = torch.as_tensor(features).to(memory_format=torch.channels_last).requires_grad_()
    assert not channels_last.is_contiguous()
    args = (torch.as_tensor(coords), torch.as_tensor(hoods), kind)
    expected, got = spatial_loss(contiguous, *args), spatial_loss(channels_last, *args)
    assert got.item() == pytest.approx(expected.item(), rel=1e-12)
    assert got.item() == pytest.approx(np.mean([_reference(features, coords, hood, kind) for hood in hoods]), rel=1e-10)
    (expected_grad,) = torch.autograd.grad(expected, contiguous)
    (grad,) = torch.autograd.grad(got, channels_last)  # as it flows on to the layer (no leaf layout contract)
    assert grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(grad, expected_grad)


def test_flat_features_equal_map_features(layer):
    features, coords, hoods = layer
    f = torch.as_tensor(features)
    args = (torch.as_tensor(coords), torch.as_tensor(hoods[1]))
    assert float(spatial_loss(f, *args)) == float(spatial_loss(f.flatten(1), *args))


def test_gradients_reach_only_the_neighborhood(layer):
    features, coords, hoods = layer
    f = torch.as_tensor(features, dtype=torch.float32).requires_grad_()
    spatial_loss(f, torch.as_tensor(coords), torch.as_tensor(hoods[0])).backward()
    grad = f.grad.flatten(1).abs().sum(0)
    selected = torch.zeros(75, dtype=torch.bool)
    selected[hoods[0]] = True
    assert (grad[selected] > 0).all() and (grad[~selected] == 0).all()


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_dead_and_constant_units_are_finite(kind):
    torch.manual_seed(0)
    f = torch.relu(torch.randn(8, 40))
    f[:, :10] = 0.0  # dead ReLUs
    f[:, 10:15] = 0.1  # constant, not zero (mean has rounding error)
    f.requires_grad_()
    coords = torch.rand(40, 2)
    loss = spatial_loss(f, coords, torch.arange(40), kind)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f.grad).all()
    # constant units correlate 0 with everything: same loss as replacing them with any other constant
    g = f.detach().clone()
    g[:, 10:15] = 3.0
    assert float(spatial_loss(g, coords, torch.arange(40), kind)) == pytest.approx(loss.item(), abs=1e-6)


def test_all_dead_layer_gives_half():
    f = torch.zeros(4, 30, requires_grad=True)
    loss = spatial_loss(f, torch.rand(30, 2), torch.arange(30))
    loss.backward()
    assert loss.item() == 0.5 and torch.isfinite(f.grad).all()


def test_batch_of_one_is_an_error():
    with pytest.raises(ValueError, match="batch of at least 2 samples"):
        spatial_loss(torch.randn(1, 10), torch.rand(10, 2), torch.arange(5))


@pytest.mark.parametrize(
    "coords, indices, kind, message",
    [
        (torch.rand(9, 2), torch.arange(5), "relative", r"coordinates must have shape \(10, 2\)"),
        (torch.rand(10, 2), torch.arange(1), "relative", r"indices must have shape \(Q,\) or \(K, Q\) with Q >= 2"),
        (torch.rand(10, 2), torch.arange(5), "cosine", "kind must be one of"),
    ],
)
def test_bad_arguments_are_named(coords, indices, kind, message):
    with pytest.raises(ValueError, match=message):
        spatial_loss(torch.randn(4, 10), coords, indices, kind)


def _smooth_layer(seed: int = 0):
    """Responses that vary smoothly over the sheet: sums of random Gaussian bumps."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 10, (400, 2))
    centres = rng.uniform(0, 10, (64, 5, 2))  # 64 images, 5 bumps each
    dist2 = ((coords[None, None] - centres[:, :, None]) ** 2).sum(-1)
    responses = np.exp(-dist2 / (2 * 1.5**2)).sum(1) + 0.05 * rng.normal(size=(64, 400))
    return torch.as_tensor(responses, dtype=torch.float32), torch.as_tensor(coords, dtype=torch.float32)


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_smooth_map_scores_lower_than_shuffled(kind):
    responses, coords = _smooth_layer()
    hoods = torch.stack([torch.randperm(400, generator=torch.Generator().manual_seed(i))[:100] for i in range(10)])
    shuffled = coords[torch.randperm(400, generator=torch.Generator().manual_seed(99))]
    smooth_loss = spatial_loss(responses, coords, hoods, kind)
    shuffled_loss = spatial_loss(responses, shuffled, hoods, kind)
    assert float(smooth_loss) < float(shuffled_loss) - 0.05


def _positions(n_units: int = 48) -> LayerPositions:
    rng = np.random.default_rng(0)
    hoods = np.stack([rng.choice(n_units, 10, replace=False) for _ in range(30)])
    return LayerPositions("layer2.0", (3, 4, 4), rng.uniform(0, 5, (n_units, 2)), hoods, 2.0)


def test_module_tables_are_buffers_outside_the_state_dict():
    module = SpatialLoss(_positions(), neighborhoods_per_batch=4)
    assert module.neighborhoods.dtype == torch.int32 and module.coordinates.dtype == torch.float32
    assert dict(module.state_dict()) == {}
    assert {name for name, _ in module.named_buffers()} == {"coordinates", "neighborhoods"}
    assert "neighborhoods=30x10" in repr(module)


def test_module_draws_rows_reproducibly_and_matches_the_function():
    module = SpatialLoss(_positions(), kind="absolute", neighborhoods_per_batch=3)
    rows_a = module.draw(torch.Generator().manual_seed(7))
    rows_b = module.draw(torch.Generator().manual_seed(7))
    assert rows_a.shape == (3, 10) and torch.equal(rows_a, rows_b)
    assert all(any(torch.equal(r, t) for t in module.neighborhoods) for r in rows_a)
    features = torch.randn(6, 3, 4, 4)
    expected = spatial_loss(features, module.coordinates, rows_a, "absolute")
    assert float(module(features, torch.Generator().manual_seed(7))) == pytest.approx(float(expected))


def test_module_rejects_features_of_another_layer():
    with pytest.raises(ValueError, match="layer 'layer2.0': features of shape \\(4, 50\\) do not match the 48 units"):
        SpatialLoss(_positions())(torch.randn(4, 50))


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_cuda_matches_the_numpy_reference_also_under_bf16_autocast(layer, kind):
    features, coords, hoods = layer
    expected = np.mean([_reference(features, coords, hood, kind) for hood in hoods])
    x = torch.as_tensor(features, dtype=torch.float32, device="cuda")
    args = (torch.as_tensor(coords, device="cuda"), torch.as_tensor(hoods, dtype=torch.int32, device="cuda"), kind)
    assert float(spatial_loss(x, *args)) == pytest.approx(expected, rel=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = spatial_loss(x, *args)
    assert got.dtype == torch.float32 and float(got) == pytest.approx(expected, rel=1e-5)


@pytest.mark.gpu
def test_module_runs_on_cuda_without_host_copies():
    module = SpatialLoss(_positions()).cuda()
    features = torch.randn(8, 3, 4, 4, device="cuda", requires_grad=True)
    loss = module(features)
    loss.backward()
    assert loss.device.type == "cuda" and module.neighborhoods.device.type == "cuda"


@pytest.mark.parametrize("kind", ["relative", "absolute"])
def test_computed_in_float32_under_bfloat16_autocast(layer, kind):
    """Under autocast the correlations must not be computed in reduced precision."""
    features, coords, hoods = (torch.as_tensor(a) for a in layer)
    features = features.float().requires_grad_()
    coords = coords.float()
    expected = spatial_loss(features, coords, hoods, kind)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = spatial_loss(features, coords, hoods, kind)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    (grad,) = torch.autograd.grad(got, features)
    (expected_grad,) = torch.autograd.grad(expected, features)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-7)
