"""Checkpoints of the V1 models' authors' code (gpogoncheff/explaining_v1) in spacetorch's names.

Their ResNet-50s keep torchvision's names for everything but the V1 components:

* local RF: ``layer1.2.conv2`` (or ``conv2.1`` after a ``Dropout2d``) is a locally connected layer
  with weight ``(1, out, in, h, w, k*k)``; spacetorch's has the same layout without the leading 1
  and sits wherever the model puts it (``layer1.2.conv2.0`` or ``.1``);
* tuned divisive normalisation: ``layer1.<b>.dn.sigmas`` (and the fixed ``dn.channel_distances``);
  spacetorch: ``layer1.<b>.post_norm.sigma``.  The two compute the same function;
* their polar transform's masks (``lpp.*``) are fixed buffers, present whether or not the model
  uses the transform.

Three components are not converted, because spacetorch's modules compute them differently on
purpose, so the same numbers would give another function: the center-surround DoG
(``conv2.dog.dog_conv.*``: the original multiplies by sigma where the paper divides, and
L2-normalises across all channel pairs at each pixel rather than per kernel), the polar transform
(the original's grid is centred on pixel (16, 16) of the 32 x 32 map, spacetorch's on the map's
centre, and its empty cells are interpolated differently), and the standard divisive
normalisation (``dn.A``, ``dn.rho``...: another parameterisation of the Gaussian pool).  A
checkpoint of a model that uses one of them is refused with that reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from spacetorch.models.weight_layouts import WeightLayout, register_weight_layout

__all__ = ["from_v1_authors", "is_v1_authors"]

_DOG = re.compile(r"\.conv2\.dog\.dog_conv\.")
_STANDARD_DN = re.compile(r"\.dn\.(A|rho|theta|v|w|x_coords|y_coords)$")
_TUNED_DN = re.compile(r"^(?P<block>.+)\.dn\.sigmas$")


def is_v1_authors(state: Mapping[str, Any]) -> bool:
    """Whether ``state`` uses the V1 authors' names (their ``dn``, ``lpp`` or DoG modules, or a
    6-D locally connected weight)."""
    return any(
        ".dn." in key or key.startswith("lpp.") or _DOG.search(key)
        or (key.startswith("layer1.2.conv2") and getattr(value, "ndim", 0) == 6)
        for key, value in state.items()
    )


def from_v1_authors(state: Mapping[str, Any], model: Any) -> dict[str, Any]:
    """``state`` with the V1 authors' names turned into those of ``model`` (a V1 ResNet).

    Raises:
        ValueError: ``state`` holds a component whose original computation spacetorch's module
            does not reproduce (see the module docs), naming it; or its model used the polar
            transform, which ``model`` has but cannot take from it.
    """
    components = getattr(model, "components", None)
    if any(_DOG.search(key) for key in state):
        raise ValueError(
            "its center-surround (DoG) weights (conv2.dog.dog_conv.*) cannot be converted: the original DoG "
            "multiplies by sigma and normalises across all channel pairs, spacetorch's follows the paper"
        )
    if any(_STANDARD_DN.search(key) for key in state):
        raise ValueError(
            "its standard divisive normalisation (dn.A, dn.rho...) cannot be converted: spacetorch's Gaussian "
            "pool has another parameterisation"
        )
    if components is not None and components.cortical_magnification:
        raise ValueError(
            "the original polar transform is not spacetorch's (another grid centre and interpolation of empty "
            "cells), so a model with cortical magnification cannot take its weights"
        )
    targets = dict(model.state_dict())
    local = [k for k in targets if k.startswith("layer1.2.conv2.") and k.endswith(".weight") and targets[k].ndim == 5]
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith("lpp.") or key.endswith(".dn.channel_distances"):
            continue  # fixed buffers
        tuned = _TUNED_DN.match(key)
        if tuned:
            key = f"{tuned['block']}.post_norm.sigma"
        elif key.startswith("layer1.2.conv2") and key.endswith(".weight") and value.ndim == 6 and local:
            key, value = local[0], value[0]
        elif key.startswith("layer1.2.conv2") and key.endswith(".bias") and value.ndim == 4 and local:
            key, value = local[0].removesuffix("weight") + "bias", value[0]
        renamed[key] = value
    return renamed


register_weight_layout(WeightLayout("the V1 authors' layout", is_v1_authors, convert=from_v1_authors))
