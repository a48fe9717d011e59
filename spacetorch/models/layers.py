"""One naming scheme for the layers that carry unit positions.

Layers are named by their module path in the model (``named_modules()``), e.g. ``layer2.0``
for the first block of a torchvision ResNet's second stage; which modules carry positions is
a fact of the model's registration (:mod:`spacetorch.models.registry`).  VISSL configs cannot
use dots in keys, so the same layer is ``layer2_0`` there: :func:`vissl_key` is the only place
that maps a module name to its key, and :func:`layer_for_key` finds a key's layer.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["layer_for_key", "vissl_key"]


def vissl_key(name: str) -> str:
    """Map a module name to the key used in VISSL configs (``"layer2.0"`` -> ``"layer2_0"``)."""
    return name.replace(".", "_")


def layer_for_key(key: str, layers: Iterable[str]) -> str:
    """The layer among ``layers`` whose VISSL key is ``key``.

    Raises:
        KeyError: naming the key and the keys of ``layers``.

    >>> layer_for_key("layer2_0", ["layer1.0", "layer2.0"])
    'layer2.0'
    """
    layers = list(layers)
    for name in layers:
        if vissl_key(name) == key:
            return name
    raise KeyError(f"no layer has the key {key!r}; keys: {[vissl_key(n) for n in layers]}")
