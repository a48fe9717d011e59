"""Difference-of-Gaussians (center-surround) convolution.

Each (output, input) channel pair has its own kernel with three learnable scalars: the centre
width ``sigma1``, the surround ratio ``s`` (``sigma2 = s * sigma1``) and an amplitude ``a``:

    E(d) = exp(-d^2 / sigma1) / (pi * sigma1),   I(d) = exp(-d^2 / sigma2) / (pi * sigma2)
    kernel = a * (E - I) / ||E - I||_2

``d`` is the distance in px from the kernel centre.  Sigma convention: ``sigma`` acts as a
variance (``exp(-d^2 / sigma)`` with the normaliser ``pi * sigma``), so each Gaussian integrates
to 1 over the plane and ``sigma = 2 * variance``; the division by ``pi * sigma`` is implemented
as written here (not the original's operator-precedence slip, which multiplies).  Kernels are
L2-normalised before the amplitude is applied; there is no bias.  ``sigma1 >= 0.1`` and
``s >= 1 + 1e-4`` are enforced by clamping at use.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CenterSurround", "DoGConv2d", "dog_kernels"]


def dog_kernels(sigma1: torch.Tensor, ratio: torch.Tensor, amplitude: torch.Tensor, size: int) -> torch.Tensor:
    """``(O, I, size, size)`` DoG kernels from ``(O, I)`` parameters (see the module docs)."""
    s1 = sigma1.clamp_min(0.1)[..., None, None]
    s2 = s1 * ratio.clamp_min(1 + 1e-4)[..., None, None]
    r = torch.arange(size, dtype=sigma1.dtype, device=sigma1.device) - (size - 1) / 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    dog = torch.exp(-d2 / s1) / (math.pi * s1) - torch.exp(-d2 / s2) / (math.pi * s2)
    dog = dog / dog.flatten(-2).norm(dim=-1).clamp_min(1e-12)[..., None, None]
    kernels: torch.Tensor = amplitude[..., None, None] * dog
    return kernels


class DoGConv2d(nn.Module):
    """A convolution whose kernels are differences of Gaussians.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: kernel side, px (5 in the V1 ResNets); padding keeps the size.

    Shapes: ``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} is not valid; it must be odd")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        shape = (out_channels, in_channels)
        self.sigma1 = nn.Parameter(torch.rand(shape) + 1)
        self.ratio = nn.Parameter(torch.rand(shape) + 1)
        self.amplitude = nn.Parameter(torch.randn(shape) * 2)

    def kernels(self) -> torch.Tensor:
        return dog_kernels(self.sigma1, self.ratio, self.amplitude, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"DoGConv2d expects {self.in_channels} input channels, got {x.shape[1]}")
        return F.conv2d(x, self.kernels(), padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"


class CenterSurround(nn.Module):
    """DoG convolution on the first ``dog_channels`` channels; the others pass through unchanged.

    Shapes: ``(B, channels, H, W)`` -> ``(B, channels, H, W)``.
    """

    def __init__(self, channels: int, dog_channels: int = 16, kernel_size: int = 5) -> None:
        super().__init__()
        if not 0 < dog_channels <= channels:
            raise ValueError(f"dog_channels={dog_channels} is not valid for {channels} channels; it must be 1 to {channels}")
        self.channels, self.dog_channels = channels, dog_channels
        self.dog = DoGConv2d(dog_channels, dog_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            raise ValueError(f"CenterSurround expects {self.channels} channels, got {x.shape[1]}")
        return torch.cat([self.dog(x[:, : self.dog_channels]), x[:, self.dog_channels:]], dim=1)
