"""Divisive normalisation across channels.

* :class:`TunedDivisiveNorm` (opponent channels): ``y = x / (1 + W x)``, ``W`` a 1x1
  cross-channel weight.  Channels sit on a ring; ``W[o, i] = exp(-(C/2 - ringdist(o, i))^2 /
  (2 sigma_i^2))`` with a learnable width per input channel (``sigma_i >= 0.5``), each input
  channel's weights normalised to sum 1, so that channel ``i`` inhibits most the channel C/2
  away on the ring.
* :class:`StandardDivisiveNorm`: ``y = x / (conv3x3(x, G) + |b|)``; every (output, input) pair
  has a rotated anisotropic Gaussian 3x3 kernel with six learnable parameters: amplitude ``A``
  (used as ``|A|``), aspect ratio ``rho``, width ``sigma``, angle ``theta`` and centre
  ``(v, w)`` px; ``b`` is one learnable scalar: ``6 C^2 + 1`` parameters
  (393,217 at C = 256).

Both expect non-negative inputs (they follow a ReLU), which keeps the denominators positive.
Shapes: ``(B, C, H, W)`` -> ``(B, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["StandardDivisiveNorm", "TunedDivisiveNorm"]


def _check(x: torch.Tensor, channels: int, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} was built for (B, {channels}, H, W), got {tuple(x.shape)}")


class TunedDivisiveNorm(nn.Module):
    """Opponent (tuned) divisive normalisation over ``channels`` channels on a ring."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.sigma = nn.Parameter(torch.rand(channels) + channels / 8)
        index = torch.arange(channels)
        diff = (index[:, None] - index[None, :]).abs()
        ring = torch.minimum(diff, channels - diff).to(torch.float32)  # (o, i)
        self.register_buffer("offset", channels / 2 - ring, persistent=False)

    offset: torch.Tensor

    def weights(self) -> torch.Tensor:
        """``(C_out, C_in)``, each column summing to 1."""
        sigma = self.sigma.clamp_min(0.5)
        w = torch.exp(-self.offset**2 / (2 * sigma[None, :] ** 2))
        return w / w.sum(dim=0, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.channels, "TunedDivisiveNorm")
        inhibition = torch.einsum("oi,bihw->bohw", self.weights().to(x.dtype), x)
        return x / (1 + inhibition)


class StandardDivisiveNorm(nn.Module):
    """Divisive normalisation by a learnable 3x3 Gaussian pool over all channels."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        shape = (channels, channels)
        self.amplitude = nn.Parameter(torch.rand(shape) * 0.1)
        self.rho = nn.Parameter(torch.ones(shape))
        self.sigma = nn.Parameter(torch.ones(shape))
        self.theta = nn.Parameter(torch.rand(shape) * torch.pi)
        self.v = nn.Parameter(torch.zeros(shape))
        self.w = nn.Parameter(torch.zeros(shape))
        self.b = nn.Parameter(torch.tensor(1.0))

    def kernels(self) -> torch.Tensor:
        """``(C, C, k, k)`` rotated anisotropic Gaussians."""
        r = torch.arange(self.kernel_size, dtype=self.sigma.dtype, device=self.sigma.device) - (self.kernel_size - 1) / 2
        y, x = torch.meshgrid(r, r, indexing="ij")
        dx, dy = x - self.v[..., None, None], y - self.w[..., None, None]
        cos, sin = torch.cos(self.theta)[..., None, None], torch.sin(self.theta)[..., None, None]
        along, across = cos * dx + sin * dy, -sin * dx + cos * dy
        sigma = self.sigma.abs().clamp_min(0.1)[..., None, None]
        rho = self.rho.abs().clamp_min(0.1)[..., None, None]
        return self.amplitude.abs()[..., None, None] * torch.exp(-(along**2 + (across / rho) ** 2) / (2 * sigma**2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x, self.channels, "StandardDivisiveNorm")
        pooled = F.conv2d(x, self.kernels().to(x.dtype), padding=self.kernel_size // 2)
        return x / (pooled + self.b.abs() + 1e-6)
