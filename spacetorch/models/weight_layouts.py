"""Other projects' layouts of a model's weights, each owned by the family whose models they fit.

A family that can load weights saved by another project (the TDAM authors' module names, the
official ConvNeXt layout, the V1 authors' names) registers a :class:`WeightLayout` beside its
models, as timm keeps ``checkpoint_filter_fn`` in each model's module.  The generic loader
(:func:`spacetorch.models.checkpoints.load_classifier`) asks :func:`weight_layouts` and knows no
family by name, so a new family with released weights adds its converter in its own files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["WeightLayout", "register_weight_layout", "weight_layouts"]

State = Mapping[str, Any]


@dataclass(frozen=True)
class WeightLayout:
    """A layout of weights saved by another project.

    Attributes:
        name: what it is, in words (named in errors: ``"the V1 authors' layout"``).
        matches: whether a state dict is in this layout.
        rename_keys: the state with spacetorch's names, computed from the names alone (before the
            model is built); ``None`` if the layout needs the model.
        convert: the state for ``model`` (after the model is built); raises ``ValueError``
            naming what cannot be converted.
        head_key: the classifier's weight in this layout (default: the model's own).
    """

    name: str
    matches: Callable[[State], bool]
    rename_keys: Callable[[State], dict[str, Any]] | None = None
    convert: Callable[[State, Any], dict[str, Any]] | None = None
    head_key: str | None = None


_LAYOUTS: list[WeightLayout] = []


def register_weight_layout(layout: WeightLayout) -> WeightLayout:
    """Add ``layout`` to those the loaders try (in the order they are registered)."""
    if any(known.name == layout.name for known in _LAYOUTS):
        raise ValueError(f"a weight layout named {layout.name!r} is registered already")
    _LAYOUTS.append(layout)
    return layout


def weight_layouts() -> list[WeightLayout]:
    """Every registered layout, the shipped families' included."""
    from spacetorch.models.registry import _load_families

    _load_families()
    return list(_LAYOUTS)
