"""Channel-grid ("tiled") positions: the sheet that weight-topography methods imply.

TopoLoss, local lateral connections and locally connected sheets put a layer's channels on a
``height x width`` grid (:func:`sheet_shape`) and ask grid neighbours to behave alike; a conv
layer repeats that grid at every position of its feature map.  Laid side by side, the grids tile
the cortical sheet: unit ``(c, y, x)`` sits in tile ``(y, x)`` at cell ``(c // width, c %
width)``, so the sheet has ``H * height`` rows and ``W * width`` columns of units, scaled to the
extent of the layer's retinotopic sheet.  Measuring these positions with the same analyses as
the TDANN's retinotopic ones puts every method on one bench.
"""

from __future__ import annotations

import math

import numpy as np

from spacetorch.models.positions.layer_positions import LayerPositions, NetworkPositions
from spacetorch.models.positions.neighborhoods import build_neighborhoods

__all__ = ["MIN_CELLS", "sheet_shape", "tiled_coordinates", "tiled_positions"]

#: the narrowest neighborhood window of a tiled layer, in sheet cells (so that it holds 36 units)
MIN_CELLS = 6.0


def sheet_shape(units: int) -> tuple[int, int]:
    """``(height, width)`` of the grid of ``units`` channels: the largest divisor of ``units``
    not above its square root, and the quotient (TopoLoss's rule: 64 -> 8 x 8, 128 -> 8 x 16;
    a prime count gives one row)."""
    if units < 1:
        raise ValueError(f"a sheet needs at least one unit, got {units}")
    height = math.isqrt(units)
    while units % height:
        height -= 1
    return height, units // height


def tiled_coordinates(dims: tuple[int, int, int], extent: tuple[float, float]) -> np.ndarray:
    """``(C * H * W, 2)`` positions in mm (x, y), channel-major unit order, of a ``(C, H, W)``
    layer tiled over a sheet of ``extent = (width, height)`` mm (see the module docs)."""
    channels, h, w = dims
    gh, gw = sheet_shape(channels)
    c, y, x = np.meshgrid(np.arange(channels), np.arange(h), np.arange(w), indexing="ij")
    row = y * gh + c // gw
    col = x * gw + c % gw
    xs = (col.ravel() + 0.5) / (w * gw) * extent[0]
    ys = (row.ravel() + 0.5) / (h * gh) * extent[1]
    return np.stack([xs, ys], axis=1)


def tiled_positions(template: NetworkPositions, n_neighborhoods: int = 2000, seed: int = 424) -> NetworkPositions:
    """The tiled positions of the layers of ``template`` (a retinotopic set of the same model):
    the same dims, sheet extent and neighborhood width, with units laid out by channel grid.  A
    window narrower than :data:`MIN_CELLS` cells (the retinotopic sets pack a position's channels
    into one point, so their windows can be small) is widened to that."""
    seeds = np.random.SeedSequence(seed).spawn(len(template.layer_positions))
    result = {}
    for (name, layer), layer_seed in zip(template.layer_positions.items(), seeds, strict=True):
        xy = np.asarray(layer.coordinates, dtype=np.float64)
        extent = (float(xy[:, 0].max() - xy[:, 0].min()), float(xy[:, 1].max() - xy[:, 1].min()))
        channels, h, w = layer.dims
        gh, gw = sheet_shape(channels)
        cell = max(extent[0] / (w * gw), extent[1] / (h * gh))
        width = max(float(layer.neighborhood_width), MIN_CELLS * cell)
        coordinates = tiled_coordinates(tuple(layer.dims), extent)  # type: ignore[arg-type]
        try:
            hoods = build_neighborhoods(coordinates, width, n_neighborhoods, np.random.default_rng(layer_seed))
        except ValueError as err:
            raise ValueError(f"layer {name!r}: {err}") from None
        result[name] = LayerPositions(
            name=name, dims=tuple(layer.dims), coordinates=coordinates,  # type: ignore[arg-type]
            neighborhood_indices=hoods, neighborhood_width=width,
        )
    return NetworkPositions(layer_positions=result, version=template.version)
