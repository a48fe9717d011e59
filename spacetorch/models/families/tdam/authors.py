"""Checkpoints of the TDAM authors' code (shantanuj/TDAM_Top_down_attention_module) in
spacetorch's module names.

Their ResNet blocks keep the torchvision names for the convolutions, norms, downsampling and
classifier, which spacetorch's TD blocks keep too.  Two parts differ:

* the attention module is ``RA_block``, with ``Ug_top_mlp.0`` (top branch), ``Ug_bottom_mlp.0``
  (bottom branch) and ``Ug_mlp.0`` (the projection to the bottom channels); in the
  ``top_attention_only`` technique ``Ug_mlp`` is the whole path, ``Ug_mlp.0`` the top branch and
  ``Ug_mlp.2`` the projection.  spacetorch: ``tdam.top_branch.0``, ``tdam.bottom_branch.0``,
  ``tdam.project``;
* a later step's norms are ``bn<k>_<t>`` (``t = 1 .. T-1``); spacetorch: ``step_norms.<t-1>.bn<k>``.

Their TD ConvNeXt is written in the official ConvNeXt layout (``downsample_layers``,
``stages.<s>.<b>.dwconv``, ``pwconv1``, ``head``), as are the official ConvNeXt weights; timm's
own converter turns that layout into timm's names (:func:`from_official_convnext`), and the
``RA_block`` names are renamed as above.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from spacetorch.models.weight_layouts import WeightLayout, register_weight_layout

__all__ = ["from_official_convnext", "from_tdam_authors", "is_official_convnext", "is_tdam_authors"]

_ATTENTION = re.compile(r"^(?P<block>.+)\.RA_block\.(?P<part>Ug_top_mlp|Ug_bottom_mlp|Ug_mlp)\.(?P<index>\d+)\.weight$")
_STEP_NORM = re.compile(r"^(?P<block>.+)\.bn(?P<k>\d)_(?P<t>\d+)\.(?P<param>[a-z_]+)$")


def is_tdam_authors(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` uses the TDAM authors' names (an ``RA_block`` anywhere)."""
    return any(".RA_block." in key for key in state)


def from_tdam_authors(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the TDAM authors' names turned into spacetorch's (others unchanged)."""
    top_only = {m["block"] for key in state if (m := _ATTENTION.match(key)) and m["part"] == "Ug_mlp" and m["index"] == "2"}
    renamed = {}
    for key, value in state.items():
        attention, norm = _ATTENTION.match(key), _STEP_NORM.match(key)
        if attention:
            block, part, index = attention["block"], attention["part"], attention["index"]
            if part == "Ug_top_mlp" or (part == "Ug_mlp" and index == "0" and block in top_only):
                key = f"{block}.tdam.top_branch.0.weight"
            elif part == "Ug_bottom_mlp":
                key = f"{block}.tdam.bottom_branch.0.weight"
            else:
                key = f"{block}.tdam.project.weight"
        elif norm and int(norm["t"]) >= 1:
            key = f"{norm['block']}.step_norms.{int(norm['t']) - 1}.bn{norm['k']}.{norm['param']}"
        renamed[key] = value
    return renamed


def is_official_convnext(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` is in the official ConvNeXt layout (facebookresearch/ConvNeXt, and the
    TDAM authors' TD ConvNeXt), not timm's."""
    return "downsample_layers.0.0.weight" in state


def _official_convnext_for(state: Mapping[str, Any], model: Any) -> dict[str, Any]:
    from timm.models.convnext import ConvNeXt

    if not isinstance(model, ConvNeXt):
        raise ValueError(f"it holds a ConvNeXt, and the model ({type(model).__name__}) is not a ConvNeXt")
    return from_official_convnext(state, model)


def from_official_convnext(state: Mapping[str, Any], model: Any) -> dict[str, Any]:
    """``state`` in the official ConvNeXt layout with timm's names, for the timm ConvNeXt ``model``."""
    from timm.models.convnext import checkpoint_filter_fn

    return dict(checkpoint_filter_fn(dict(state), model))  # type: ignore[no-untyped-call]  # timm is not annotated here


register_weight_layout(WeightLayout("the TDAM authors' layout", is_tdam_authors, rename_keys=from_tdam_authors))
register_weight_layout(WeightLayout("the official ConvNeXt layout", is_official_convnext, convert=_official_convnext_for,
                                    head_key="head.weight"))
