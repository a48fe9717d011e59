"""timm's vision transformers on cortical sheets: every block (``blocks.<i>``) carries positions.

A block's output is tokens ``(B, T, C)``.  Its patch tokens sit retinotopically, at their
patch's place in the image, and each token's ``C`` channels sit within that patch's part of the
sheet, as a convolution's channels sit at their feature-map location: to every part of
spacetorch (positions, the spatial loss, swapopt, the maps) a block is a ``(C, H, W)`` feature
map on the patch grid (:data:`spacetorch.models.capture.TOKEN_PREFIX`).  The class token and any
register tokens have no place in the image and are left out.

Cortical areas follow the TDANN's ResNet-18 by relative depth: of ``n`` blocks, block ``i``
(``i / n``) maps to the retina below 1/4, V1 below 1/2, V2 below 5/8, V4 below 3/4 and VTC
above, the fractions at which ResNet-18's eight blocks change area.  A 12-block ViT: blocks 0-2
retina, 3-5 V1, 6-7 V2, 8 V4, 9-11 VTC.  The sheets are the areas' own
(:data:`spacetorch.models.positions.AREAS`), as for the ResNets.  A block holds far fewer units
than the ResNet layer of its area (ViT-Tiny at 224 px: 192 x 14 x 14 = 37,632, against
ResNet-18's 200,704 in layer1), so its neighborhood is widened until it holds as many units as
the ResNet's (:func:`~spacetorch.models.positions.retinotopy.matched_neighborhood_width`:
V1 1.63 -> 2.66 mm for ViT-Tiny at 224 px; at most half the sheet's side).  Every block's receptive field overlap is the
ResNet rule's on the patch grid (0.1: all blocks share one grid).

The models are timm's own, built with ``dynamic_img_size=True`` so that they take any square
input whose side is a multiple of the patch size (the CPU demos train at 112 px); their names
are timm's, so they stay out of timm's registry.

>>> from spacetorch.models import list_models
>>> list_models("vit_*")
['vit_base_patch16_224', 'vit_base_patch32_224', 'vit_small_patch16_224', 'vit_tiny_patch16_224']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from spacetorch.models.capture import TOKEN_PREFIX
from spacetorch.models.registry import register_model

__all__ = [
    "deit_small_patch16_224",
    "deit_tiny_patch16_224",
    "depth_areas",
    "vit_base_patch16_224",
    "vit_base_patch32_224",
    "vit_small_patch16_224",
    "vit_tiny_patch16_224",
]

#: (fraction of the depth at which an area ends, the area), after ResNet-18's eight blocks
_DEPTH_AREAS = ((1 / 4, "retina"), (1 / 2, "V1"), (5 / 8, "V2"), (3 / 4, "V4"), (1.0, "VTC"))


def depth_areas(names: Sequence[str]) -> dict[str, str]:
    """``{block: cortical area}`` by relative depth (see the module docs).

    >>> depth_areas([f"blocks.{i}" for i in range(8)])["blocks.2"]
    'V1'
    """
    count = len(names)
    return {name: next(area for end, area in _DEPTH_AREAS if i / count < end) for i, name in enumerate(names)}


def _timm_vit(arch: str, **kwargs: Any) -> nn.Module:
    import timm

    kwargs.setdefault("dynamic_img_size", True)
    model: nn.Module = timm.create_model(arch, pretrained=False, **kwargs)
    prefix = int(model.num_prefix_tokens)  # type: ignore[arg-type]
    for block in model.blocks:  # type: ignore[union-attr]
        setattr(block, TOKEN_PREFIX, prefix)
    return model


def _register(builder: Any) -> Any:
    return register_model(builder, layers=r"blocks\.\d+", areas=depth_areas, classifier="head", neighborhoods="units",
                          timm=False, family="timm_vit")  # fmt: skip


@_register
def vit_tiny_patch16_224(**kwargs: Any) -> nn.Module:
    """ViT-Tiny/16 (12 blocks of 192 channels, 3 heads): 14 x 14 patch tokens at 224 px."""
    return _timm_vit("vit_tiny_patch16_224", **kwargs)


@_register
def vit_small_patch16_224(**kwargs: Any) -> nn.Module:
    """ViT-Small/16 (12 blocks of 384 channels)."""
    return _timm_vit("vit_small_patch16_224", **kwargs)


@_register
def vit_base_patch16_224(**kwargs: Any) -> nn.Module:
    """ViT-Base/16 (12 blocks of 768 channels)."""
    return _timm_vit("vit_base_patch16_224", **kwargs)


@_register
def vit_base_patch32_224(**kwargs: Any) -> nn.Module:
    """ViT-Base/32 (12 blocks of 768 channels, 7 x 7 patch tokens at 224 px): the architecture of
    TopoNets' topographic ViT."""
    return _timm_vit("vit_base_patch32_224", **kwargs)


@_register
def deit_tiny_patch16_224(**kwargs: Any) -> nn.Module:
    """DeiT-Tiny/16 (ViT-Tiny's architecture, DeiT's training recipe)."""
    return _timm_vit("deit_tiny_patch16_224", **kwargs)


@_register
def deit_small_patch16_224(**kwargs: Any) -> nn.Module:
    """DeiT-Small/16."""
    return _timm_vit("deit_small_patch16_224", **kwargs)
