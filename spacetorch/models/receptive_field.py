"""Which units of a layer have a receptive field that touches the image border.

Such units see the zero padding around the image and respond to the border itself; maps made of
them show the border, not the stimulus.  The receptive field is measured, not computed from
kernel sizes: the input pixels on which a unit's output depends (non-zero gradient), in eval
mode, for a few random images, taken over all channels at one position.

>>> from torchvision.models import resnet18
>>> border_widths(resnet18(), "layer2.0", 224)   # receptive field [8i - 33, 8i + 33] px
(5, 4, 5, 4)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spacetorch.models.capture import TOKEN_PREFIX, capture_outputs, eval_mode

__all__ = ["RECEPTIVE_FIELD", "border_units", "border_widths", "feature_map_border"]

#: ``exclude`` value of :func:`border_units`: the units whose receptive field touches the border
RECEPTIVE_FIELD = "rf"


def _support(model: nn.Module, layer: str, x: torch.Tensor, index: tuple[int, int], axis: int) -> torch.Tensor:
    """Input rows (``axis`` 0) or columns (``axis`` 1) on which the layer's position ``index`` depends."""
    x = x.detach().requires_grad_(True)
    with capture_outputs(model, [layer], stop_after=layer) as captured:
        model(x)
    (grad,) = torch.autograd.grad(captured[layer][:, :, index[0], index[1]].sum(), x)  # no parameter gradients
    return grad.abs().sum(dim=(0, 1)).sum(dim=1 - axis) > 0


def border_widths(model: nn.Module, layer: str, input_size: int, in_chans: int = 3, seed: int = 0) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)``: how many rows / columns of the layer's feature map, from each
    edge, hold units whose receptive field includes a pixel of the image's outermost row or column.

    Raises:
        ValueError: ``layer`` is not a submodule of ``model``, or it did not run.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, in_chans, input_size, input_size, generator=generator).to(device)
    with eval_mode(model), torch.no_grad(), capture_outputs(model, [layer], stop_after=layer) as captured:
        model(x)
    if layer not in captured:
        raise ValueError(f"layer {layer!r} did not run in a forward pass of {type(model).__name__}")
    _, _, h, w = captured[layer].shape
    widths = []
    with eval_mode(model), torch.enable_grad():
        for axis, size in ((0, h), (1, w)):
            centre = (h // 2, w // 2)

            def touches(i: int, edge: int, axis: int = axis, centre: tuple[int, int] = centre) -> bool:
                index = (i, centre[1]) if axis == 0 else (centre[0], i)
                return bool(_support(model, layer, x, index, axis)[edge])

            near = next((i for i in range(size) if not touches(i, 0)), size)
            far = next((size - 1 - i for i in range(size - 1, -1, -1) if not touches(i, input_size - 1)), size)
            widths += [near, far]
    return (widths[0], widths[1], widths[2], widths[3])


def feature_map_border(dims: tuple[int, int, int], width: int | tuple[int, int, int, int] = 1) -> np.ndarray:
    """``(C * H * W,)`` bool: the units in the outermost rows and columns of a ``(C, H, W)``
    feature map (channel-major unit order, as ``features.flatten(1)``).

    ``width`` is the number of rows / columns from every edge, or ``(top, bottom, left, right)``
    (:func:`border_widths` measures those whose receptive
    field touches the image border).  Such units see the zero padding around the image, which
    gives them a response to the border itself; maps measured on them show the border, not the
    stimulus.

    >>> feature_map_border((1, 3, 3)).reshape(3, 3).astype(int)
    array([[1, 1, 1],
           [1, 0, 1],
           [1, 1, 1]])
    """
    c, h, w = dims
    top, bottom, left, right = (width,) * 4 if isinstance(width, int) else width
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"border width must be >= 0 feature-map rows/columns, got {width}")
    rows = np.zeros(h, dtype=bool)
    cols = np.zeros(w, dtype=bool)
    rows[:top], rows[h - bottom:] = True, True  # a width of 0 selects nothing (rows[h:] is empty)
    cols[:left], cols[w - right:] = True, True
    plane = rows[:, None] | cols[None, :]
    border: np.ndarray = np.broadcast_to(plane, (c, h, w)).reshape(-1).copy()
    return border


def _is_token_layer(model: nn.Module, layer: str) -> bool:
    module = dict(model.named_modules()).get(layer)
    return module is not None and getattr(module, TOKEN_PREFIX, None) is not None


def border_units(
    model: nn.Module,
    layer: str,
    dims: tuple[int, int, int],
    input_size: int,
    exclude: int | str = RECEPTIVE_FIELD,
    in_chans: int = 3,
) -> tuple[np.ndarray, str]:
    """``(C * H * W,)`` bool mask of the units to leave out of a map, and what they are, in words.

    ``exclude`` is ``"rf"`` (the units whose receptive field touches the image border, measured
    with :func:`border_widths`; none for a transformer block's patch tokens, which see no
    padding) or a number of outermost feature-map rows and columns (0: none).
    """
    if exclude == RECEPTIVE_FIELD and _is_token_layer(model, layer):
        # patch tokens: the patches tile the image with no padding, so no unit sees a border that
        # is not the stimulus's; every token attends to the whole image from the first block on
        return feature_map_border(dims, 0), "none: patch tokens see no padding (a transformer block)"
    if exclude == RECEPTIVE_FIELD:
        widths = border_widths(model, layer, input_size, in_chans)
        what = "receptive field touches the image border (top/bottom/left/right: {}/{}/{}/{} rows/columns)".format(*widths)
        return feature_map_border(dims, widths), what
    if isinstance(exclude, str) or exclude < 0:
        raise ValueError(f"exclude must be {RECEPTIVE_FIELD!r} or a number of rows/columns >= 0, got {exclude!r}")
    return feature_map_border(dims, exclude), f"in the {exclude} outermost feature-map rows/columns"
