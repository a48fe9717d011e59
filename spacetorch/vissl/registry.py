"""VISSL registrations: trunks, the identity head and the spatial losses.

Thin adapters: the models and the spatial loss themselves are plain PyTorch
(:mod:`spacetorch.models.trunks`, :mod:`spacetorch.losses`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from classy_vision.losses import ClassyLoss, register_loss
from torch import nn
from vissl.losses.dino_loss import DINOLoss
from vissl.losses.simclr_info_nce_loss import SimclrInfoNCELoss
from vissl.models.heads import register_model_head
from vissl.models.trunks import register_model_trunk

from spacetorch.losses import LayerWeightedSpatialLoss
from spacetorch.models.capture import layer_output
from spacetorch.models.positions import NetworkPositions
from spacetorch.models.registry import create_model
from spacetorch.models.trunks import SpatialTrunk

if TYPE_CHECKING:
    from spacetorch.methods import TopographyMethod

__all__ = [
    "USER_MODULES_ENV",
    "import_user_modules",
    "SPATIAL_LOSS_NAMES",
    "PLAIN_TRUNK_NAMES",
    "SPATIAL_TRUNK_NAMES",
    "CrossEntropySpatialCorrelationLoss",
    "CustomResNet",
    "IdentityHead",
    "PlainModel",
    "SpatialModel",
    "model_from_config",
    "topography_of",
    "trunk_model_kwargs",
    "SpatialCorrelationDinoLoss",
    "SpatialCorrelationSimclrInfoNCELoss",
    "trunk_param",
]

#: the registered trunks that read ``TRUNK_PARAMS.position_dir`` (filled by :func:`_spatial_trunk`)
SPATIAL_TRUNK_NAMES: list[str] = []
#: the registered trunks of a plain registered model, pooled features only (filled by :func:`_plain_trunk`)
PLAIN_TRUNK_NAMES: list[str] = []
#: the registered losses with a spatial term (filled by :func:`_spatial_task_loss`)
SPATIAL_LOSS_NAMES: list[str] = []


def _spatial_trunk(name: str) -> Any:
    """Register a spatial trunk with VISSL under ``name`` and list it in SPATIAL_TRUNK_NAMES."""
    SPATIAL_TRUNK_NAMES.append(name)
    return register_model_trunk(name)


def _plain_trunk(name: str) -> Any:
    """Register a plain trunk with VISSL under ``name`` and list it in PLAIN_TRUNK_NAMES."""
    PLAIN_TRUNK_NAMES.append(name)
    return register_model_trunk(name)


def _spatial_task_loss(name: str) -> Any:
    """Register a task + spatial loss with VISSL under ``name``, which its errors also use."""

    def register(cls: Any) -> Any:
        cls._loss_name = name
        SPATIAL_LOSS_NAMES.append(name)
        return register_loss(name)(cls)

    return register


def trunk_param(model_config: Any, key: str, default: Any = ...) -> Any:
    """``MODEL.TRUNK.TRUNK_PARAMS.<key>``, with an error naming the key when it is required."""
    params = model_config.TRUNK.TRUNK_PARAMS
    if key in params and params[key] is not None:
        return params[key]
    if default is ...:
        raise KeyError(
            f"config key MODEL.TRUNK.TRUNK_PARAMS.{key} is not set (trunk {model_config.TRUNK.NAME!r}); "
            f"set it in the YAML or with +config.MODEL.TRUNK.TRUNK_PARAMS.{key}=..."
        )
    return default


# -- trunks ------------------------------------------------------------------------------
class SpatialModelTrunk(SpatialTrunk):
    """Any registered model whose layers output positions from ``position_dir``.

    Config (``MODEL.TRUNK.TRUNK_PARAMS``): ``model`` (a registered name, see
    ``spacetorch.models.list_models()``; ``arch`` for ``spatial_resnet``; fixed for
    ``spatial_resnet18`` / ``spatial_resnet50``), ``position_dir`` (required), ``layers``
    (optional module names; default every layer of the position set) and ``model_kwargs``
    (optional, passed to the model's builder).
    """

    #: the model of an alias trunk (``spatial_resnet18``); None: read from TRUNK_PARAMS
    model_name: str | None = None

    def __init__(self, model_config: Any, model_name: str) -> None:
        name = model_from_config(model_config, type(self).model_name)
        kwargs = trunk_model_kwargs(model_config)
        positions = NetworkPositions.load_from_dir(trunk_param(model_config, "position_dir"))
        layers: Sequence[str] | None = trunk_param(model_config, "layers", None)
        method = topography_of(model_config)
        super().__init__(_prepared(create_model(name, headless=True, **kwargs), name, method, model_config), positions, layers)
        self.topography = method


def topography_of(model_config: Any) -> TopographyMethod | None:
    """The topography method of ``MODEL.TRUNK.TRUNK_PARAMS.topography`` (``{method, layers,
    weight, ...}``, see :mod:`spacetorch.methods`), or None when unset or ``method: none``.

    Raises:
        ValueError: a bad setting (:func:`~spacetorch.methods.method_from_spec`), naming the key.
    """
    from omegaconf import DictConfig, OmegaConf

    from spacetorch.methods import UnknownMethodError, method_from_spec

    spec = trunk_param(model_config, "topography", None)
    if spec is None:
        return None
    plain = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else spec
    if not isinstance(plain, Mapping):
        raise ValueError(f"config.MODEL.TRUNK.TRUNK_PARAMS.topography must be a mapping {{method, layers, ...}}, got {plain!r}")
    values = {str(key): value for key, value in plain.items() if key != "image_size"}
    if values.get("method") in (None, "none") and set(values) <= {"method"}:
        return None
    try:
        return method_from_spec(values)
    except (UnknownMethodError, ValueError, TypeError) as err:
        raise ValueError(f"config.MODEL.TRUNK.TRUNK_PARAMS.topography: {err}") from None


def _prepared(model: nn.Module, name: str, method: TopographyMethod | None, model_config: Any) -> nn.Module:
    """``model`` with the architecture ``method`` needs, for the input size
    ``TRUNK_PARAMS.topography.image_size`` (default: the model's registered input size)."""
    if method is None:
        return model
    from spacetorch.models.registry import model_info

    size = int(trunk_param(model_config, "topography").get("image_size") or model_info(name).input_size)
    try:
        return method.prepare(model, size)
    except ValueError as err:
        raise ValueError(f"config.MODEL.TRUNK.TRUNK_PARAMS.topography: {err}") from None


def trunk_model_kwargs(model_config: Any) -> dict[str, Any]:
    """``MODEL.TRUNK.TRUNK_PARAMS.model_kwargs`` as plain Python values (lists, dicts), for the builder."""
    from omegaconf import DictConfig, OmegaConf

    kwargs = trunk_param(model_config, "model_kwargs", {})
    plain = OmegaConf.to_container(kwargs, resolve=True) if isinstance(kwargs, DictConfig) else dict(kwargs)
    return {str(key): value for key, value in plain.items()}  # type: ignore[union-attr]


def model_from_config(model_config: Any, fixed: str | None = None, default: str | None = None) -> str:
    """The registered model a trunk config names: ``fixed``, else ``TRUNK_PARAMS.model`` (or
    its older name ``arch``), else ``default``.

    Raises:
        KeyError: naming the key, when no model is named and there is no default.
    """
    if fixed is not None:
        return fixed
    params = model_config.TRUNK.TRUNK_PARAMS
    for key in ("model", "arch"):
        if params.get(key) is not None:
            return str(params[key])
    if default is not None:
        return default
    raise KeyError(
        f"config key MODEL.TRUNK.TRUNK_PARAMS.model is not set (trunk {model_config.TRUNK.NAME!r}): name a "
        "registered model (spacetorch.models.list_models()), e.g. +config.MODEL.TRUNK.TRUNK_PARAMS.model=resnet18"
    )


@_spatial_trunk("spatial_model")
class SpatialModel(SpatialModelTrunk):
    pass


@_spatial_trunk("spatial_resnet18")
class SpatialResNet18(SpatialModelTrunk):
    model_name = "resnet18"


@_spatial_trunk("spatial_resnet50")
class SpatialResNet50(SpatialModelTrunk):
    model_name = "resnet50"


@_spatial_trunk("spatial_resnet")
class SpatialResNet(SpatialModelTrunk):
    pass


@_spatial_trunk("spatial_tdresnet18")
class SpatialTDResNet18(SpatialModelTrunk):
    """The top-down attention ResNet-18; its TD settings come from ``TRUNK_PARAMS.model_kwargs``."""

    model_name = "tdresnet18"


@_spatial_trunk("spatial_tdresnet50")
class SpatialTDResNet50(SpatialModelTrunk):
    """The top-down attention ResNet-50; its TD settings come from ``TRUNK_PARAMS.model_kwargs``."""

    model_name = "tdresnet50"


class PlainModelTrunk(nn.Module):
    """A registered model without its classifier (``TRUNK_PARAMS.model``, or ``arch``; default
    resnet18), returning its pooled features, e.g. for linear evaluation.

    Its weights are named ``base_model.*`` like the spatial trunks', so a spatial checkpoint
    initialises it directly.
    """

    def __init__(self, model_config: Any, model_name: str) -> None:
        super().__init__()
        name = model_from_config(model_config, default="resnet18")
        kwargs = trunk_model_kwargs(model_config)
        self.topography = topography_of(model_config)
        self.base_model = _prepared(create_model(name, headless=True, **kwargs), name, self.topography, model_config)
        self._trunk_name = model_name
        # linear evaluation / fine-tuning (FEATURE_EVAL_SETTINGS): VISSL freezes the trunk's
        # parameters but leaves its BatchNorms in train mode, which would update their
        # running statistics; a frozen trunk stays in eval mode
        settings = model_config.get("FEATURE_EVAL_SETTINGS", {})
        self.frozen = bool(settings.get("EVAL_MODE_ON")) and bool(
            settings.get("FREEZE_TRUNK_ONLY") or settings.get("FREEZE_TRUNK_AND_HEAD")
        )

    def train(self, mode: bool = True) -> PlainModelTrunk:
        super().train(mode)
        if self.frozen:
            self.base_model.eval()
        return self

    def forward(self, x: torch.Tensor, out_feat_keys: list[str] | None = None) -> list[torch.Tensor]:
        if out_feat_keys:
            raise ValueError(f"{self._trunk_name} outputs only its pooled features, got out_feat_keys={out_feat_keys}")
        return [torch.flatten(layer_output(self.base_model(x), self._trunk_name), 1)]


@_plain_trunk("plain_model")
class PlainModel(PlainModelTrunk):
    pass


@_plain_trunk("custom_resnet")
class CustomResNet(PlainModelTrunk):
    pass


# -- heads -------------------------------------------------------------------------------
@register_model_head("identity")
class IdentityHead(nn.Module):
    """Pass a trunk output through unchanged (gives the spatial outputs their own head)."""

    def __init__(self, model_config: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


# -- losses ------------------------------------------------------------------------------
class _SpatialTaskLoss(ClassyLoss):  # type: ignore[misc]  # classy-vision is not annotated
    """``task loss + sum_l layer_weights[l] * SL_l`` on ``[task output, spatial outputs]``.

    After each call, ``last_task_loss`` and ``last_spatial_losses`` (``{layer key: SL}``)
    hold the detached parts, which the train step logs without computing them again.
    """

    _loss_name: str  # the registered name

    def __init__(self, loss_config: Any) -> None:
        super().__init__()
        self.loss_config = loss_config
        self._add_spatial(loss_config)

    def _add_spatial(self, loss_config: Any) -> None:
        if "layer_weights" not in loss_config:
            raise KeyError(f"config key LOSS.{self._loss_name}.layer_weights is not set: give a weight per spatial layer")
        self.spatial = LayerWeightedSpatialLoss(
            dict(loss_config["layer_weights"]),
            kind="absolute" if loss_config.get("use_old_version", False) else "relative",
            neighborhoods_per_batch=int(loss_config.get("neighborhoods_per_batch", 1)),
        )
        self.last_task_loss: torch.Tensor | None = None
        self.last_spatial_losses: dict[str, torch.Tensor] = {}

    @classmethod
    def from_config(cls, loss_config: Any) -> _SpatialTaskLoss:
        return cls(loss_config)

    def task_loss(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        task_output, spatial_outputs = _split_output(output, self._loss_name)
        task = self.task_loss(task_output, target)
        spatial, per_layer = self.spatial(spatial_outputs)
        self.last_task_loss = task.detach()
        self.last_spatial_losses = per_layer
        total: torch.Tensor = task + spatial
        return total


def _split_output(output: Any, loss_name: str) -> tuple[Any, Mapping[str, Any]]:
    """``(task output, spatial dict)``: the task output is a tensor, or a head's list of them."""
    if (
        isinstance(output, (list, tuple))
        and len(output) == 2
        and (isinstance(output[0], torch.Tensor)
             or (isinstance(output[0], (list, tuple)) and all(isinstance(o, torch.Tensor) for o in output[0])))
        and isinstance(output[1], Mapping)
    ):
        return output[0], output[1]
    got = type(output).__name__ + (f" of {[type(o).__name__ for o in output]}" if isinstance(output, (list, tuple)) else "")
    raise TypeError(
        f"{loss_name} expects the model output [task output, {{layer: (features, positions)}}]: a trunk "
        f"returning [flat, spatial dict] and two heads, the second an 'identity' head; got {got}"
    )


@_spatial_task_loss("spatial_correlation_simclr_info_nce_loss")
class SpatialCorrelationSimclrInfoNCELoss(_SpatialTaskLoss):
    """SimCLR InfoNCE (VISSL's, ``temperature``, ``buffer_params``) plus the spatial loss."""


    def __init__(self, loss_config: Any) -> None:
        super().__init__(loss_config)
        self.simclr = SimclrInfoNCELoss(loss_config)

    def task_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss: torch.Tensor = self.simclr(output, target)
        return loss


@_spatial_task_loss("spatial_correlation_dino_loss")
class SpatialCorrelationDinoLoss(_SpatialTaskLoss, DINOLoss):  # type: ignore[misc]  # VISSL is not annotated
    """DINO's self-distillation loss (VISSL's ``dino_loss``, its keys) plus the spatial loss.

    The student's output is head 0's (a ``swav_head`` of ``num_clusters`` prototypes); the
    teacher, an exponential moving average of the student, is kept and run by
    :class:`spacetorch.vissl.hooks.SpatialDinoTeacher` on the same views.  The views are the two
    (or more) same-size crops of ``ImgReplicatePil`` + ``simclr_collator``, all shown to the teacher:
    DINO's smaller local crops would give the blocks another token grid than their positions'.
    """

    def __init__(self, loss_config: Any) -> None:
        DINOLoss.__init__(self, loss_config)
        self._add_spatial(loss_config)

    def task_loss(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        if self.teacher_output is None:
            raise RuntimeError(
                "spatial_correlation_dino_loss has no teacher output: the SpatialDinoTeacher hook runs the "
                "teacher on each batch (train.py adds it; custom_train_step runs it after the forward)"
            )
        loss: torch.Tensor = DINOLoss.forward(self, output)
        return loss


@_spatial_task_loss("cross_entropy_spatial_correlation_loss")
class CrossEntropySpatialCorrelationLoss(_SpatialTaskLoss):
    """Cross-entropy on class logits (supervised TDANN) plus the spatial loss."""


    def task_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target.reshape(-1).long())


# -- a user's own trunks, heads or losses -------------------------------------------------
#: os.pathsep-separated modules or .py files that register a user's own pieces with VISSL
USER_MODULES_ENV = "SPACETORCH_IMPORTS"


def import_user_modules(entries: Sequence[str] | None = None) -> None:
    """Import modules (``pkg.mod``) or files (``path/to/my_trunk.py``) that register with VISSL.

    With ``entries``, they are also added to ``$SPACETORCH_IMPORTS``, which every process
    started later (VISSL's ranks) reads when it imports :mod:`spacetorch.vissl`, so a
    user's trunk is registered everywhere (``train.py --import my_trunk.py``).

    Raises:
        ImportError: naming the entry that cannot be imported.
    """
    known = [e for e in os.environ.get(USER_MODULES_ENV, "").split(os.pathsep) if e]
    added = [str(Path(e).resolve()) if e.endswith(".py") else e for e in entries or []]
    for entry in known + added:
        if entry.endswith(".py"):
            _import_file(Path(entry))
        else:
            importlib.import_module(entry)
    if added:  # only once they import
        os.environ[USER_MODULES_ENV] = os.pathsep.join(dict.fromkeys(known + added))


def _import_file(path: Path) -> None:
    name = f"spacetorch_user_{path.stem}"
    if name in sys.modules:
        return
    if not path.is_file():
        raise ImportError(f"{path}: no such Python file to import (from ${USER_MODULES_ENV} or --import)")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
