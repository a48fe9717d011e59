"""One registry of the networks spacetorch can make topographic.

A model family is one file of small builder functions, each registered with
:func:`register_model` together with the facts spacetorch needs about it:

* which submodules carry unit positions by default (a pattern over ``named_modules()``),
* which cortical area each of them maps to,
* its default input size and normalisation,
* its classifier, which a trunk replaces by ``nn.Identity`` and whose weights checkpoints
  of trunks do not hold (the trunk's other weights are ``base_model.<module key>``).

Everything else follows from the registration: retinotopic positions (from the model's real
output sizes), :class:`~spacetorch.models.trunks.SpatialTrunk`, the VISSL trunk
``spatial_model`` (``TRUNK_PARAMS.model: <name>``), :func:`~spacetorch.models.checkpoints.load_trunk`
and :class:`~spacetorch.models.topographic.TopographicModel`.

With ``timm=True`` (the default) the builder is also registered in timm's own registry, so
``timm.create_model(name, ...)`` and ``timm.list_models()`` know it after ``import
spacetorch.models``.  Names that timm already uses for its own models (``resnet18`` is timm's
ResNet; spacetorch's ``resnet18`` is torchvision's, whose weights the published checkpoints
hold) are registered with ``timm=False``, so importing spacetorch never changes what timm builds.

>>> model = create_model("resnet18", headless=True)
>>> type(model.fc).__name__
'Identity'
>>> list_models("resnet1*")
['resnet101', 'resnet152', 'resnet18']
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelInfo",
    "UnknownModelError",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
    "stage_areas",
]

#: the normalisation of the ImageNet training configs (inputs in ``[0, 1]``)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: ``layer names in forward order -> {layer name: cortical area name}``
AreaMap = Callable[[Sequence[str]], dict[str, str]]
Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class ModelInfo:
    """What spacetorch knows about one registered model.

    Attributes:
        name: the registered name (``"resnet18"``).
        build: the builder; ``build(**kwargs)`` returns an untrained ``nn.Module``.
        layers: a regular expression, matched in full against the names of
            ``named_modules()``, selecting the submodules that carry positions by default
            (``r"layer\\d+\\.\\d+"``: every residual block of a torchvision ResNet).
        areas: maps those layer names (in forward order) to cortical area names (keys of
            :data:`spacetorch.models.positions.AREAS`); see :func:`stage_areas`.
        input_size: default input side in px.
        in_chans: input channels.
        mean, std: per-channel normalisation of ``[0, 1]`` images the model is trained with.
        classifier: module path of the classification head (``"fc"``), replaced by
            ``nn.Identity`` in a trunk; ``None`` if the model has none.
        family: models of one family share a weight layout; ``load_trunk`` looks among them
            for the one a checkpoint fits.  Default: the module the builder is defined in.
        neighborhoods: ``"area"``: a layer's neighborhood width is its area's
            (:data:`~spacetorch.models.positions.AREAS`), as for the TDANN's ResNets;
            ``"units"``: scaled so that a neighborhood holds as many units as the TDANN's
            ResNet-18 layer of that area (for layers of far fewer units: transformer blocks).
    """

    name: str
    build: Builder
    layers: str
    areas: AreaMap
    input_size: int = 224
    in_chans: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    classifier: str | None = "fc"
    family: str = ""
    neighborhoods: str = "area"
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(self.layers))
        if not self.family:
            object.__setattr__(self, "family", getattr(self.build, "__module__", "") or self.name)

    def layer_names(self, model: nn.Module) -> list[str]:
        """The default layers of ``model`` (a model this entry built), in ``named_modules()`` order.

        Raises:
            ValueError: no submodule matches :attr:`layers`.
        """
        names = [name for name, _ in model.named_modules() if name and self._pattern.fullmatch(name)]
        if not names:
            raise ValueError(f"model {self.name!r}: no submodule name matches its layer pattern {self.layers!r}")
        return names

    def layer_areas(self, names: Sequence[str]) -> dict[str, str]:
        """``{layer: cortical area}`` for the given layers (in forward order)."""
        return self.areas(list(names))


_REGISTRY: dict[str, ModelInfo] = {}


class UnknownModelError(KeyError, ValueError):
    """No model is registered under that name (the message lists the close matches)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def register_model(
    fn: B | None = None,
    *,
    name: str | None = None,
    layers: str = r"layer\d+\.\d+",
    areas: AreaMap | None = None,
    input_size: int = 224,
    in_chans: int = 3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    classifier: str | None = "fc",
    family: str = "",
    neighborhoods: str = "area",
    timm: bool = True,
) -> Any:
    """Register a model builder under its function name (or ``name``), with spacetorch's facts.

    Used bare (``@register_model``) or with arguments (``@register_model(areas=...)``); see
    :class:`ModelInfo` for the facts.  ``areas`` defaults to the ResNet mapping of the TDANN
    (:data:`RESNET_AREAS`).  The builder takes keyword arguments only and returns an untrained
    model; with ``timm=True`` it is also registered in timm's registry (it must then accept and
    may ignore timm's ``pretrained``, ``pretrained_cfg``... keywords).

    Raises:
        ValueError: the name is already registered by another builder.

    Example (a family file; after its import, positions, trunks and checkpoints work by name)::

        from torchvision.models.resnet import BasicBlock, ResNet

        @register_model(layers=r"layer\\d+", timm=False)
        def tiny_resnet(**kwargs):
            return ResNet(BasicBlock, [1, 1, 1, 1], **kwargs)

        retinotopic_positions("tiny_resnet")   # one position set per layer1 ... layer4
    """

    def decorate(builder: B) -> B:
        model_name = name or builder.__name__
        previous = _REGISTRY.get(model_name)
        if previous is not None and _qualname(previous.build) != _qualname(builder):
            raise ValueError(
                f"model name {model_name!r} is already registered by {_qualname(previous.build)}; choose another name"
            )
        _REGISTRY[model_name] = ModelInfo(
            name=model_name,
            build=builder,
            layers=layers,
            areas=areas or RESNET_AREAS,
            input_size=input_size,
            in_chans=in_chans,
            mean=tuple(mean),
            std=tuple(std),
            classifier=classifier,
            family=family,
            neighborhoods=neighborhoods,
        )
        if timm:
            _register_with_timm(model_name, builder)
        return builder

    return decorate if fn is None else decorate(fn)


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


_TIMM_KEYWORDS = ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _register_with_timm(model_name: str, builder: Builder) -> None:
    from timm.models import register_model as timm_register

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if pretrained:
            raise ValueError(f"{model_name}: spacetorch models have no downloadable weights; load a checkpoint instead")
        for key in _TIMM_KEYWORDS[1:]:
            kwargs.pop(key, None)
        return builder(**kwargs)

    # timm registers an entry point under its function name, in its function's module
    entrypoint.__name__ = entrypoint.__qualname__ = model_name
    entrypoint.__module__ = builder.__module__
    entrypoint.__doc__ = builder.__doc__
    timm_register(entrypoint)


def model_info(name: str) -> ModelInfo:
    """The registered facts of model ``name``.

    Raises:
        UnknownModelError: ``name`` is not registered; the message lists the close matches.
    """
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (spacetorch.models.list_models() lists all {len(_REGISTRY)})"
        ) from None


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"resnet*"``), sorted."""
    _load_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, *, headless: bool = False, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``, untrained.

    Args:
        name: a registered name (:func:`list_models`).
        headless: replace the classifier by ``nn.Identity``: the model returns its pooled
            features (what a trunk is).
        **kwargs: passed to the builder (e.g. ``num_classes``).

    Raises:
        UnknownModelError: an unknown name, listing the close matches.
    """
    info = model_info(name)
    model = info.build(**kwargs)
    if headless and info.classifier is not None:
        model.set_submodule(info.classifier, nn.Identity())
    return model


def stage_areas(stages: Mapping[str, str | Sequence[str]], stage_of: str = r"(.*)\.\d+") -> AreaMap:
    """An area map by stage: every layer of a stage maps to one area, or a stage is split.

    Args:
        stages: ``{stage name: area}`` or ``{stage name: (area, area, ...)}``; a stage given
            several areas is split in order: with ``m`` areas and ``n`` layers, layer ``i``
            gets area ``k`` = the number of ``j`` in ``1..m-1`` with ``i >= max(n * j // m, 1)``
            (for two areas, the first ``max(n // 2, 1)`` layers get the first area).
        stage_of: a regular expression whose first group is a layer's stage.

    >>> areas = stage_areas({"layer1": "retina", "layer3": ("V2", "V4")})
    >>> areas(["layer1.0", "layer3.0", "layer3.1", "layer3.2"])
    {'layer1.0': 'retina', 'layer3.0': 'V2', 'layer3.1': 'V4', 'layer3.2': 'V4'}
    """
    pattern = re.compile(stage_of)

    def area_map(names: Sequence[str]) -> dict[str, str]:
        grouped: dict[str, list[str]] = {}
        for layer in names:
            match = pattern.fullmatch(layer)
            stage = match.group(1) if match else layer
            if stage not in stages:
                raise ValueError(f"layer {layer!r} (stage {stage!r}) has no cortical area; stages with one: {sorted(stages)}")
            grouped.setdefault(stage, []).append(layer)
        result: dict[str, str] = {}
        for stage, members in grouped.items():
            assigned = stages[stage]
            if isinstance(assigned, str):
                result.update(dict.fromkeys(members, assigned))
                continue
            m, n = len(assigned), len(members)
            for i, layer in enumerate(members):
                result[layer] = assigned[sum(i >= max(n * j // m, 1) for j in range(1, m))]
        return {layer: result[layer] for layer in names}

    return area_map


#: the TDANN's ResNet mapping: layer1 -> retina, layer2 -> V1, first half of layer3 -> V2,
#: second half -> V4, layer4 -> VTC (Margalit et al. 2024)
RESNET_AREAS: AreaMap = stage_areas({"layer1": "retina", "layer2": "V1", "layer3": ("V2", "V4"), "layer4": "VTC"})

#: the modules that hold model families, imported on the registry's first use (each family
#: registers its models as it loads); a package of more families may add its own name here. By
#: name, not by import: the families import the registry, and the registry imports none of them.
FAMILY_MODULES: list[str] = ["spacetorch.models.families"]
_loaded: set[str] = set()


def _load_families() -> None:
    """Import the modules of :data:`FAMILY_MODULES` not imported yet."""
    import importlib

    for name in FAMILY_MODULES:
        if name not in _loaded:
            _loaded.add(name)
            importlib.import_module(name)
