"""Fixed local lateral connections between the units of a tiled sheet (after LLCNN, Qian et al.).

A layer's ``(C, H, W)`` output is laid out as a sheet (:mod:`spacetorch.models.positions.tiled`:
each feature-map position a ``height x width`` tile of channels) and every unit receives a fixed,
distance-dependent share of its sheet neighbours' activity:

    y = (1 - strength) * x + strength * (G_sigma * x)

``G_sigma`` a normalised Gaussian of width ``sigma`` (in sheet cells) over a ``(2r + 1)^2``
window (``r = ceil(2 sigma)``), the sheet's edges replicated; applied ``steps`` times.  Nothing
is learned: the interaction is a non-persistent buffer, so a model's state dict (and its
checkpoints) are those of the model without it.

Shapes: ``(B, C, H, W)`` -> ``(B, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from spacetorch.models.positions.tiled import sheet_shape

__all__ = ["LateralInteraction", "add_lateral", "from_sheet", "to_sheet"]


def to_sheet(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, 1, H * height, W * width)``, channel ``c`` of position
    ``(y, x)`` at row ``y * height + c // width``, column ``x * width + c % width``."""
    b, c, h, w = x.shape
    gh, gw = sheet_shape(c)
    return x.reshape(b, gh, gw, h, w).permute(0, 3, 1, 4, 2).reshape(b, 1, h * gh, w * gw)


def from_sheet(sheet: torch.Tensor, channels: int) -> torch.Tensor:
    """The inverse of :func:`to_sheet`."""
    b, _, rows, cols = sheet.shape
    gh, gw = sheet_shape(channels)
    h, w = rows // gh, cols // gw
    return sheet.reshape(b, h, gh, w, gw).permute(0, 2, 4, 1, 3).reshape(b, channels, h, w)


class LateralInteraction(nn.Module):
    """See the module docs."""

    kernel: torch.Tensor

    def __init__(self, sigma: float = 1.0, strength: float = 0.5, steps: int = 1) -> None:
        super().__init__()
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"lateral sigma={sigma!r} is not valid; it must be > 0 (sheet cells)")
        if not 0 <= strength <= 1:
            raise ValueError(f"lateral strength={strength!r} is not valid; it must be in [0, 1]")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"lateral steps={steps!r} is not valid; it must be an integer >= 1")
        self.sigma, self.strength, self.steps = float(sigma), float(strength), steps
        radius = math.ceil(2 * sigma)
        r = torch.arange(-radius, radius + 1, dtype=torch.float32)
        g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
        self.register_buffer("kernel", (g / g.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sheet = to_sheet(x)
        pad = self.kernel.shape[-1] // 2
        for _ in range(self.steps):
            spread = F.conv2d(F.pad(sheet, (pad,) * 4, mode="replicate"), self.kernel.to(sheet.dtype))
            sheet = (1 - self.strength) * sheet + self.strength * spread
        return from_sheet(sheet, x.shape[1])

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, strength={self.strength}, steps={self.steps}"


def _apply_lateral(module: nn.Module, inputs: object, output: torch.Tensor) -> torch.Tensor:
    lateral: LateralInteraction = module.lateral  # type: ignore[assignment]
    result: torch.Tensor = lateral(output)
    return result


def add_lateral(module: nn.Module, lateral: LateralInteraction) -> nn.Module:
    """Apply ``lateral`` to ``module``'s output, in place: it becomes ``module.lateral`` and a
    forward hook, registered before any capture tap, so recorded outputs are the laterally
    interacted ones.  Returns ``module``.

    Raises:
        ValueError: ``module`` already has lateral connections.
    """
    if hasattr(module, "lateral"):
        raise ValueError(f"{type(module).__name__} already has lateral connections")
    module.lateral = lateral
    module.register_forward_hook(_apply_lateral)
    return module
