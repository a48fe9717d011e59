"""The V1 front-end modules against slow references and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from spacetorch.models.families.v1 import (
    CenterSurround,
    DoGConv2d,
    LocallyConnected2d,
    PolarTransform,
    StandardDivisiveNorm,
    TunedDivisiveNorm,
)
from spacetorch.models.families.v1.center_surround import dog_kernels
from spacetorch.models.families.v1.polar import RING_EDGES


def test_dog_kernel_is_its_formula() -> None:
    """Against the formula evaluated in NumPy: a (E - I) / ||E - I||, E = exp(-d^2/s1)/(pi s1)."""
    s1, ratio, a = 1.7, 2.5, -0.8
    kernel = dog_kernels(torch.tensor([[s1]]), torch.tensor([[ratio]]), torch.tensor([[a]]), 5)[0, 0].double()
    r = np.arange(5) - 2.0
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    s2 = s1 * ratio
    dog = np.exp(-d2 / s1) / (math.pi * s1) - np.exp(-d2 / s2) / (math.pi * s2)
    np.testing.assert_allclose(kernel.numpy(), a * dog / np.linalg.norm(dog), rtol=1e-5, atol=1e-7)
    assert float(kernel.square().sum()) == pytest.approx(a**2, rel=1e-5)  # L2-normalised, then scaled


def test_each_gaussian_integrates_to_one_so_a_wide_dog_sums_to_zero() -> None:
    """sigma is a variance-like width: exp(-d^2/s)/(pi s) integrates to 1, so on a grid much wider
    than both Gaussians E - I sums to 0, and the normalised kernel sums to 0 as well."""
    kernel = dog_kernels(torch.tensor([[3.0]]), torch.tensor([[2.0]]), torch.tensor([[1.0]]), 41).double()
    assert abs(float(kernel.sum())) < 1e-5


def test_center_surround_passes_the_other_channels_through() -> None:
    layer = CenterSurround(64, dog_channels=16)
    x = torch.randn(2, 64, 16, 16)
    y = layer(x)
    assert torch.equal(y[:, 16:], x[:, 16:])
    torch.testing.assert_close(y[:, :16], F.conv2d(x[:, :16], layer.dog.kernels(), padding=2))
    with pytest.raises(ValueError, match="dog_channels=65 is not valid for 64 channels"):
        CenterSurround(64, dog_channels=65)
    with pytest.raises(ValueError, match="DoGConv2d expects 3 input channels, got 4"):
        DoGConv2d(3, 3)(torch.randn(1, 4, 8, 8))


def _slow_locally_connected(layer: LocallyConnected2d, x: torch.Tensor) -> torch.Tensor:
    """The plain formulation: broadcast the unfolded input against every output channel's weights."""
    oh, ow = layer.output_size
    columns = F.unfold(x, layer.kernel_size, padding=layer.padding, stride=layer.stride)  # (B, I*kk, L)
    b = x.shape[0]
    columns = columns.reshape(b, 1, layer.in_channels, -1, oh * ow).permute(0, 1, 2, 4, 3)  # (B, 1, I, L, kk)
    weight = layer.weight.reshape(layer.out_channels, layer.in_channels, oh * ow, -1)  # (O, I, L, kk)
    return (columns * weight[None]).sum(dim=(2, 4)).reshape(b, layer.out_channels, oh, ow)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0)])
def test_locally_connected_matches_the_slow_reference(stride: int, padding: int) -> None:
    torch.manual_seed(0)
    layer = LocallyConnected2d(3, 5, (9, 8), kernel_size=3, stride=stride, padding=padding)
    x = torch.randn(2, 3, 9, 8)
    torch.testing.assert_close(layer(x), _slow_locally_connected(layer, x))


@pytest.mark.gpu
def test_locally_connected_on_cuda_matches_the_cpu_forward_and_backward() -> None:
    torch.manual_seed(0)
    layer = LocallyConnected2d(8, 6, 12, kernel_size=3, padding=1, bias=False).double()
    x = torch.randn(4, 8, 12, 12, dtype=torch.float64, requires_grad=True)
    gpu_layer = LocallyConnected2d(8, 6, 12, kernel_size=3, padding=1, bias=False).double().cuda()
    gpu_layer.load_state_dict(layer.state_dict())
    gpu_x = x.detach().cuda().requires_grad_()
    layer(x).square().sum().backward()
    gpu_layer(gpu_x).square().sum().backward()
    torch.testing.assert_close(gpu_x.grad.cpu(), x.grad)
    torch.testing.assert_close(gpu_layer.weight.grad.cpu(), layer.weight.grad)
    torch.testing.assert_close(gpu_layer(gpu_x).detach().cpu(), _slow_locally_connected(layer, x.detach()))


def test_locally_connected_with_shared_weights_is_a_convolution() -> None:
    torch.manual_seed(0)
    layer = LocallyConnected2d(4, 6, 10, kernel_size=3, padding=1)
    kernel = torch.randn(6, 4, 3, 3)
    with torch.no_grad():
        layer.weight.copy_(kernel.reshape(6, 4, 1, 1, 9).expand_as(layer.weight))
    x = torch.randn(2, 4, 10, 10)
    torch.testing.assert_close(layer(x), F.conv2d(x, kernel, padding=1))


def test_locally_connected_sizes_and_bad_input() -> None:
    layer = LocallyConnected2d(64, 64, 16, kernel_size=3, padding=1)  # layer1[2] conv2 of the V1 ResNets
    assert layer.weight.numel() == 9_437_184
    with pytest.raises(ValueError, match=r"built for input \(B, 64, 16, 16\), got \(1, 64, 32, 32\)"):
        layer(torch.randn(1, 64, 32, 32))


def test_tuned_normalisation_inhibits_most_the_channel_half_a_ring_away() -> None:
    c = 12
    norm = TunedDivisiveNorm(c)
    w = norm.weights()
    torch.testing.assert_close(w.sum(dim=0), torch.ones(c))
    assert all(int(w[:, i].argmax()) == (i + c // 2) % c for i in range(c))
    x = torch.rand(2, c, 3, 3)
    torch.testing.assert_close(norm(x), x / (1 + torch.einsum("oi,bihw->bohw", w, x)))
    with pytest.raises(ValueError, match=r"TunedDivisiveNorm was built for \(B, 12, H, W\)"):
        norm(torch.rand(1, 8, 3, 3))


def test_standard_normalisation_parameters_and_formula() -> None:
    assert sum(p.numel() for p in StandardDivisiveNorm(256).parameters()) == 393_217
    torch.manual_seed(0)
    norm = StandardDivisiveNorm(4)
    x = torch.rand(2, 4, 6, 6)
    expected = x / (F.conv2d(x, norm.kernels(), padding=1) + norm.b.abs() + 1e-6)
    torch.testing.assert_close(norm(x), expected)
    # a centred isotropic kernel (rho 1, v = w = 0) is a plain Gaussian: symmetric under transposition
    k = norm.kernels()[0, 0]
    torch.testing.assert_close(k, k.T)


def test_polar_transform_shapes_and_a_radially_symmetric_image() -> None:
    polar = PolarTransform()
    assert polar(torch.randn(2, 5, 32, 32)).shape == (2, 5, 16, 16)
    c = 15.5
    yy, xx = np.mgrid[0:32, 0:32]
    ring = np.searchsorted(np.asarray(RING_EDGES, float), np.hypot(xx - c, yy - c), side="right") - 1
    image = torch.tensor(np.sin(ring) + 0.1 * ring, dtype=torch.float32)[None, None]  # constant on each ring
    out = polar(image)[0, 0]
    torch.testing.assert_close(out, out[:, :1].expand_as(out), atol=1e-5, rtol=0)  # constant along angle
    assert float(out[:, 0].std()) > 0.1  # but not along eccentricity
    torch.testing.assert_close(polar(torch.full((1, 1, 32, 32), 3.0)), torch.full((1, 1, 16, 16), 3.0))
    with pytest.raises(ValueError, match=r"PolarTransform was built for \(B, C, 32, 32\) maps, got \(1, 1, 16, 16\)"):
        polar(torch.randn(1, 1, 16, 16))
