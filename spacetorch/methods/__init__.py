"""Ways to make a topographic network, on one bench.

Each method is one file here, registered with :func:`register_method`, and says four things:

* ``prepare(model, image_size)``: the architecture it needs (lateral connections, locally
  connected layers...), applied to a freshly built registered model; the default changes nothing;
* ``penalties(model)``: the terms it adds to the training loss, one per layer, each already
  multiplied by the method's ``weight``; the default adds none;
* ``training(image_size)``: how a training run makes it (:class:`Training`): the trunk's
  ``topography`` setting with the spatial loss off, by default; the TDANN sets the spatial
  loss's weights instead;
* ``sheet``: where its units sit on the cortical sheet, for the analyses: ``"retinotopic"``
  (the position set the config names, as the TDANN) or ``"tiled"`` (the channel grid repeated
  at every feature-map position, :mod:`spacetorch.models.positions.tiled`).

Training reads a method from ``config.MODEL.TRUNK.TRUNK_PARAMS.topography``
(``{method: topoloss, layers: [layer2.0], weight: 1.0, ...}``; :func:`method_from_spec`);
``spacetorch compare-methods`` trains and measures several of them the same way.  The
methods shipped:

========== ============================================================ =========
name       what                                                         sheet
========== ============================================================ =========
tdann      the spatial correlation loss on unit positions (the config's)  retinotopic
topoloss   TopoLoss on the chosen layers' conv / linear weights          tiled
lateral    fixed local lateral connections after the chosen layers      tiled
local      locally connected conv2 in the chosen blocks + smoothness    tiled
========== ============================================================ =========

A new method: a file with a :class:`TopographyMethod` subclass decorated with
:func:`register_method`, imported before training (the config's ``IMPORTS`` key, or
``train.py --import``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from spacetorch.losses import check_weight

__all__ = [
    "METHODS",
    "NO_TOPOGRAPHY",
    "TopographyMethod",
    "Training",
    "UnknownMethodError",
    "list_methods",
    "method_from_spec",
    "register_method",
]

#: the registered methods by name
METHODS: dict[str, type[TopographyMethod]] = {}


class UnknownMethodError(KeyError):
    """No method is registered under that name."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Training:
    """How a training run makes a method's topography.

    Attributes:
        alpha: the spatial loss's weight (the TDANN's alpha); None: the config's own layer weights.
        alpha_layers: the spatial loss's layers that get ``alpha`` (VISSL keys, ``layer2_0``), the
            others 0; None: every layer.
        topography: the trunk's ``TRUNK_PARAMS.topography`` setting (a method's spec); None: none.
    """

    alpha: float | None = 0.0
    alpha_layers: tuple[str, ...] | None = None
    topography: Mapping[str, Any] | None = None


#: a run without topography: the spatial loss off and no method (the alpha = 0 baseline)
NO_TOPOGRAPHY = Training()


class TopographyMethod:
    """A way to make a network topographic; see the module docs.

    Args:
        layers: module names (``"layer2.0"``) or their VISSL keys (``"layer2_0"``) the method acts on.
        weight: the factor of its penalties in the loss (the TDANN's alpha for ``tdann``); None:
            the method's default (1; for ``tdann``, the config's own layer weights).
        params: the method's own settings (its ``PARAMS`` and their defaults).

    Raises:
        ValueError: no layer, a negative or non-finite weight, or an unknown parameter (naming it).
    """

    name: ClassVar[str] = ""
    #: the paper it follows
    paper: ClassVar[str] = ""
    #: ``"retinotopic"`` or ``"tiled"``
    sheet: ClassVar[str] = "tiled"
    #: its settings and their defaults
    PARAMS: ClassVar[dict[str, Any]] = {}
    #: what spacetorch's version simplifies, in words
    simplified: ClassVar[str] = ""

    def __init__(self, layers: Sequence[str], weight: float | None = None, **params: Any) -> None:
        if isinstance(layers, str) or not layers:
            raise ValueError(f"topography method {self.name!r}: layers must be a non-empty list of layer names, got {layers!r}")
        #: whether a weight was given (the TDANN without one trains with the config's layer weights)
        self.weighted = weight is not None
        weight = 1.0 if weight is None else check_weight(weight, f"topography method {self.name!r}: weight")
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            raise ValueError(
                f"topography method {self.name!r} has no parameter(s) {unknown}; its parameters: "
                f"{', '.join(f'{k} (default {v!r})' for k, v in self.PARAMS.items()) or 'none'}"
            )
        self.layers = [str(layer) for layer in layers]
        self.weight = weight
        self.params = {**self.PARAMS, **{key: self._coerce(key, value) for key, value in params.items()}}

    def _coerce(self, key: str, value: Any) -> Any:
        """``value`` as the type of the parameter's default (an int or a float)."""
        kind = type(self.PARAMS[key])
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
                raise ValueError(f"topography method {self.name!r}: {key}={value!r} must be {'an integer' if kind is int else 'a number'}")
            return kind(value)
        return value

    def modules(self, model: nn.Module) -> dict[str, nn.Module]:
        """``{module name: module}`` of the method's layers in ``model`` (VISSL keys resolved).

        Raises:
            ValueError: a layer that is not a submodule of ``model``.
        """
        from spacetorch.models.layers import layer_for_key

        named = dict(model.named_modules())
        found = {}
        for layer in self.layers:
            name = layer if layer in named else None
            if name is None:
                try:
                    name = layer_for_key(layer, named)
                except KeyError:
                    raise ValueError(
                        f"topography method {self.name!r}: {type(model).__name__} has no layer {layer!r}"
                    ) from None
            found[name] = named[name]
        return found

    def prepare(self, model: nn.Module, image_size: int) -> nn.Module:
        """The architecture the method needs, made in ``model`` (a fresh registered model whose
        input is ``image_size`` px); returns the model."""
        self.modules(model)  # the layers exist
        return model

    def penalties(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``{layer: weight * penalty}`` to add to the loss this step."""
        return {}

    def spec(self) -> dict[str, Any]:
        """The config form: ``{method, layers, weight, <params>}``."""
        return {"method": self.name, "layers": list(self.layers), "weight": self.weight, **self.params}

    def training(self, image_size: int) -> Training:
        """How a training run makes this method: by default the trunk's ``topography`` setting
        (built for ``image_size`` px inputs), with the spatial loss off."""
        return Training(alpha=0.0, topography={**self.spec(), "image_size": image_size})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec()})"


def register_method(cls: type[TopographyMethod]) -> type[TopographyMethod]:
    """Class decorator: make ``cls`` (a :class:`TopographyMethod` with a ``name``) known by its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"a topography method named {cls.name!r} is already registered ({METHODS[cls.name].__name__})")
    METHODS[cls.name] = cls
    return cls


def list_methods() -> list[str]:
    """The registered method names."""
    _load_shipped()
    return sorted(METHODS)


def method_from_spec(spec: Mapping[str, Any]) -> TopographyMethod:
    """The method a config's ``topography`` mapping names (``method``, ``layers``, ``weight`` and
    its parameters).

    Raises:
        UnknownMethodError: an unknown ``method`` (listing the known ones).
        ValueError: a missing ``method`` or ``layers``, or a bad setting (naming it).
    """
    _load_shipped()
    values = dict(spec)
    name = values.pop("method", None)
    if name is None:
        raise ValueError(f"a topography setting needs 'method' (one of {', '.join(sorted(METHODS))}), got {dict(spec)}")
    if name not in METHODS:
        raise UnknownMethodError(f"no topography method {name!r}; known: {', '.join(sorted(METHODS))}")
    if "layers" not in values:
        raise ValueError(f"topography method {name!r} needs 'layers' (module names, e.g. [layer2.0])")
    layers = list(values.pop("layers"))
    return METHODS[name](layers, **values)


def _load_shipped() -> None:
    from spacetorch.methods import lateral, local, tdann, topoloss  # noqa: F401  (registers them)
