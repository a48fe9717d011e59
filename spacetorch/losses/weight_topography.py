"""Penalties that make a layer's weights topographic on a 2-D sheet of its units.

Two methods lay the units of a layer out on a grid and ask neighbouring units to have similar
weights, with no positions in the loss:

* **TopoLoss** (Deb et al., ICLR 2025; the TopoNets): the output channels of a conv or linear
  layer sit on a ``height x width`` grid (:func:`sheet_shape`), each holding its flattened
  weights (:func:`weight_sheet`).  The grid is shrunk by ``factor`` per side and blown back up
  (bilinear both ways, as ``F.interpolate`` does), a low-pass copy; the loss is ``1 - mean
  cosine similarity`` between each unit's weights and the low-pass copy's (:func:`topoloss`).
* **Kernel smoothness on a locally connected sheet** (after All-TNN, Lu et al., Nat. Hum. Behav.
  2025): every unit of a locally connected layer, a channel at a position, has its own kernel;
  the units tile a sheet, each position a ``height x width`` block of channels
  (:func:`local_weight_sheet`), and the penalty is ``1 - mean cosine similarity`` between
  the kernels of horizontally and vertically adjacent units (:func:`neighbour_dissimilarity`).
  It is 0 when neighbouring kernels point the same way.

Plain PyTorch; the sheets are views of the weights, so the gradients reach them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spacetorch.models.positions.tiled import sheet_shape

__all__ = ["local_weight_sheet", "neighbour_dissimilarity", "sheet_shape", "topoloss", "weight_sheet"]


def weight_sheet(layer: nn.Module) -> torch.Tensor:
    """``(height, width, E)``: output channel ``c`` of a ``Conv2d`` or ``Linear`` at grid cell
    ``(c // width, c % width)``, holding its ``E`` flattened incoming weights."""
    weight = getattr(layer, "weight", None)
    if not isinstance(layer, (nn.Conv2d, nn.Linear)) or weight is None:
        raise TypeError(f"TopoLoss needs a Conv2d or Linear layer, got {type(layer).__name__}")
    height, width = sheet_shape(weight.shape[0])
    sheet: torch.Tensor = weight.reshape(height, width, -1)
    return sheet


def topoloss(sheet: torch.Tensor, factor_h: float, factor_w: float | None = None) -> torch.Tensor:
    """``1 - mean_units cos(w_unit, lowpass(w)_unit)`` over a ``(height, width, E)`` sheet.

    The low-pass copy is the sheet shrunk ``factor`` times per side (to ``floor(side /
    factor)``) and resized back, bilinear both ways.

    Raises:
        ValueError: a factor below 1 or above the sheet's side.
    """
    factor_w = factor_h if factor_w is None else factor_w
    if sheet.ndim != 3:
        raise ValueError(f"a weight sheet is (height, width, E), got shape {tuple(sheet.shape)}")
    height, width = sheet.shape[:2]
    for name, factor, side in (("factor_h", factor_h, height), ("factor_w", factor_w, width)):
        if not 1 <= factor <= side:
            raise ValueError(f"{name}={factor} is not valid for a sheet of side {side}; it must be in [1, {side}]")
    grid = sheet.permute(2, 0, 1)[None]  # (1, E, height, width)
    small = F.interpolate(grid, scale_factor=(1 / factor_h, 1 / factor_w), mode="bilinear")
    blurred = F.interpolate(small, size=(height, width), mode="bilinear")
    return 1 - F.cosine_similarity(grid.flatten(2), blurred.flatten(2), dim=1).mean()


def local_weight_sheet(weight: torch.Tensor) -> torch.Tensor:
    """The ``(out_h * height, out_w * width, E)`` sheet of a locally connected weight
    ``(out, in, out_h, out_w, k * k)``: position ``(y, x)`` is a ``height x width`` block
    (:func:`sheet_shape` of ``out``) whose cell ``(c // width, c % width)`` holds channel ``c``'s
    kernel there (``E = in * k * k`` values)."""
    if weight.ndim != 5:
        raise ValueError(f"a locally connected weight is (out, in, out_h, out_w, k*k), got shape {tuple(weight.shape)}")
    out, _, oh, ow, _ = weight.shape
    height, width = sheet_shape(out)
    kernels = weight.permute(2, 3, 0, 1, 4).reshape(oh, ow, height, width, -1)  # (y, x, gy, gx, E)
    return kernels.permute(0, 2, 1, 3, 4).reshape(oh * height, ow * width, -1)


def neighbour_dissimilarity(sheet: torch.Tensor) -> torch.Tensor:
    """``1 - mean cos`` between the vectors of horizontally and vertically adjacent cells of a
    ``(rows, cols, E)`` sheet (0 when all neighbours point the same way)."""
    if sheet.ndim != 3 or min(sheet.shape[:2]) < 1 or sheet.shape[0] * sheet.shape[1] < 2:
        raise ValueError(f"a sheet of at least two cells (rows, cols, E) is needed, got shape {tuple(sheet.shape)}")
    pairs = []
    if sheet.shape[1] > 1:
        pairs.append(F.cosine_similarity(sheet[:, 1:], sheet[:, :-1], dim=-1).flatten())
    if sheet.shape[0] > 1:
        pairs.append(F.cosine_similarity(sheet[1:], sheet[:-1], dim=-1).flatten())
    return 1 - torch.cat(pairs).mean()
