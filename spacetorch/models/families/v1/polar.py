"""Cortical magnification: a fixed polar-transform pooling of a feature map.

The ``input_size`` x ``input_size`` map (32 x 32 after the stem at 64 px) is divided around its
centre into rings (edges, px: 0, 1, ..., 12, 13, 14, 16, 18, 20, 23; 18 rings, 1 px wide in the
fovea and wider outside) and ``wedges`` angular sectors (30 of 12 degrees).  Each ring x wedge
cell is the mean of the pixels whose centres fall in it; cells with no pixel (near the centre)
are interpolated along the angle from the nearest non-empty cells of their ring.  The
(rings, wedges) map is reflect-padded by one wedge on each side of the angle axis and resized
bilinearly to ``output_size`` x ``output_size`` (rows: eccentricity, columns: angle).

All of this is linear and fixed, so it is precomputed once as one ``(output^2, input^2)``
matrix (a buffer); the forward pass is one matrix product.

Shapes: ``(B, C, input_size, input_size)`` -> ``(B, C, output_size, output_size)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["RING_EDGES", "PolarTransform", "polar_matrix"]

#: ring edges in px from the map's centre
RING_EDGES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 20, 23)


def _pool_matrix(size: int, edges: Sequence[float], wedges: int) -> np.ndarray:
    """``(rings * wedges, size * size)``: each cell's mean over its pixels, empty cells interpolated."""
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    radius = np.hypot(x - c, y - c).ravel()
    angle = (np.degrees(np.arctan2(y - c, x - c)).ravel() + 360) % 360
    ring = np.searchsorted(np.asarray(edges, dtype=np.float64), radius, side="right") - 1
    wedge = np.minimum((angle / (360 / wedges)).astype(int), wedges - 1)
    rings = len(edges) - 1
    pool = np.zeros((rings, wedges, size * size))
    inside = (ring >= 0) & (ring < rings)
    pool[ring[inside], wedge[inside], np.flatnonzero(inside)] = 1.0
    counts = pool.sum(-1)
    pool[counts > 0] /= counts[counts > 0][:, None]
    for r in range(rings):
        full = np.flatnonzero(counts[r] > 0)
        if len(full) == 0:
            raise ValueError(f"ring {r} ({edges[r]} to {edges[r + 1]} px) holds no pixel of a {size} x {size} map")
        for j in np.flatnonzero(counts[r] == 0):  # nearest non-empty wedges on each side, on the circle
            after = full[(full - j) % wedges == np.min((full - j) % wedges)][0]
            before = full[(j - full) % wedges == np.min((j - full) % wedges)][0]
            da, db = (after - j) % wedges, (j - before) % wedges
            pool[r, j] = (db * pool[r, after] + da * pool[r, before]) / (da + db)
    return pool.reshape(rings * wedges, size * size)


def polar_matrix(input_size: int = 32, output_size: int = 16, edges: Sequence[float] = RING_EDGES, wedges: int = 30) -> torch.Tensor:
    """``(output_size^2, input_size^2)``: the whole transform as one linear map."""
    pool = torch.from_numpy(_pool_matrix(input_size, edges, wedges))  # (R*W, N)
    rings = len(edges) - 1
    basis = pool.T.reshape(input_size * input_size, 1, rings, wedges)  # the response to each input pixel
    padded = F.pad(basis, (1, 1, 0, 0), mode="reflect")
    resized = F.interpolate(padded, size=(output_size, output_size), mode="bilinear", align_corners=False)
    return resized.reshape(input_size * input_size, output_size * output_size).T.to(torch.float32).contiguous()


class PolarTransform(nn.Module):
    """See the module docs."""

    matrix: torch.Tensor

    def __init__(self, input_size: int = 32, output_size: int = 16, edges: Sequence[float] = RING_EDGES, wedges: int = 30) -> None:
        super().__init__()
        self.input_size, self.output_size = input_size, output_size
        self.register_buffer("matrix", polar_matrix(input_size, output_size, edges, wedges), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"PolarTransform was built for (B, C, {self.input_size}, {self.input_size}) maps, got {tuple(x.shape)}"
            )
        b, c = x.shape[:2]
        out = x.reshape(b * c, -1) @ self.matrix.to(x.dtype).T
        return out.reshape(b, c, self.output_size, self.output_size)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, output_size={self.output_size}"
