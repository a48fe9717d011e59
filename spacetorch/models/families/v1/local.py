"""Locally connected 2-D layer: a convolution whose weights differ at every output position.

Weight ``(out_channels, in_channels, out_h, out_w, k * k)``.  The forward is one batched matrix
product over output positions, on the unfolded input: its memory is the unfolded input
``(B, in_channels * k * k, out_h * out_w)`` and the output, never the
``(B, out, in, positions, k * k)`` product the plain broadcast formulation builds.

Shapes: ``(B, in_channels, H, W)`` with ``(H, W)`` the ``input_size`` the layer was built for
-> ``(B, out_channels, out_h, out_w)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["LocallyConnected2d"]


class LocallyConnected2d(nn.Module):
    """See the module docs.

    Args:
        in_channels, out_channels: channel counts.
        input_size: ``(H, W)`` (or one int) of the input it is built for.
        kernel_size, stride, padding: as for ``nn.Conv2d``.
        bias: one bias per output unit ``(out_channels, out_h, out_w)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: int | tuple[int, int],
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__()
        h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_size = (h, w)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.output_size = ((h + 2 * padding - kernel_size) // stride + 1, (w + 2 * padding - kernel_size) // stride + 1)
        if min(self.output_size) < 1:
            raise ValueError(f"input_size {self.input_size} is too small for kernel_size {kernel_size} and padding {padding}")
        oh, ow = self.output_size
        fan_in = in_channels * kernel_size * kernel_size
        bound = 1 / math.sqrt(fan_in)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, oh, ow, kernel_size * kernel_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_channels, oh, ow).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(
                f"LocallyConnected2d was built for input (B, {self.in_channels}, {self.input_size[0]}, "
                f"{self.input_size[1]}), got {tuple(x.shape)}"
            )
        oh, ow = self.output_size
        columns = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (B, I*k*k, L)
        # (O, I, oh, ow, kk) -> (L, I*kk, O): per position, a (I*kk) x O matrix
        weight = self.weight.permute(2, 3, 1, 4, 0).reshape(oh * ow, -1, self.out_channels)
        out = torch.bmm(columns.permute(2, 0, 1), weight)  # (L, B, O)
        out = out.permute(1, 2, 0).reshape(x.shape[0], self.out_channels, oh, ow)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")
