"""One naming scheme for the layers that carry unit positions.

Layers are named by their module path in the model (``named_modules()``), e.g. ``layer2.0``
for the first block of a torchvision ResNet's second stage.  VISSL configs cannot use dots in
keys, so the same layer is ``layer2_0`` there.  :func:`vissl_key` and :func:`module_name` are
the only place that maps between the two.
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn

__all__ = [
    "vissl_key",
    "module_name",
    "residual_block_names",
    "block_output_dims",
    "torchvision_resnet",
]

_BLOCK_NAME = re.compile(r"^layer(\d+)\.(\d+)$")


def vissl_key(name: str) -> str:
    """Map a module name to the key used in VISSL configs (``"layer2.0"`` -> ``"layer2_0"``)."""
    return name.replace(".", "_")


def module_name(key: str) -> str:
    """Inverse of :func:`vissl_key` for residual-block names (``"layer2_0"`` -> ``"layer2.0"``).

    Raises:
        ValueError: if ``key`` is not of the form ``layer<stage>_<block>``.
    """
    match = re.fullmatch(r"layer(\d+)_(\d+)", key)
    if match is None:
        raise ValueError(f"layer key {key!r} is not of the form 'layer<stage>_<block>'")
    return f"layer{match.group(1)}.{match.group(2)}"


def residual_block_names(model: nn.Module) -> List[str]:
    """Names of the residual blocks of a ResNet-style model, in forward order.

    A residual block is a module named ``layer<stage>.<index>`` (torchvision's layout).

    >>> from torchvision.models import resnet18
    >>> residual_block_names(resnet18())[:3]
    ['layer1.0', 'layer1.1', 'layer2.0']
    """
    names = [name for name, _ in model.named_modules() if _BLOCK_NAME.match(name)]
    if not names:
        raise ValueError(
            f"{type(model).__name__} has no modules named 'layer<stage>.<index>'; "
            "name the layers explicitly"
        )
    return names


def block_output_dims(
    model: nn.Module, names: Sequence[str], input_size: int = 224
) -> Dict[str, Tuple[int, int, int]]:
    """Output dims (C, H, W) of the named submodules for one ``input_size`` px RGB image.

    Runs one forward pass on the model's device; a model built on the ``meta`` device
    (``with torch.device("meta"): ...``) costs no memory or compute.

    Raises:
        ValueError: if a name is not a submodule of ``model``.
    """
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(
            f"{type(model).__name__} has no submodule(s) {missing}; "
            f"residual blocks are {residual_block_names(model)}"
        )
    dims: Dict[str, Tuple[int, int, int]] = {}
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: dims.__setitem__(name, tuple(out.shape[1:]))
        )
        for name in names
    ]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return {name: dims[name] for name in names}


def torchvision_resnet(arch: str, drop_fc: bool = False, **kwargs: object) -> nn.Module:
    """Build a torchvision ResNet by name (``resnet18``, ``resnet50``, ...), untrained.

    With ``drop_fc`` the classifier is an ``nn.Identity``: the model returns pooled features.

    Raises:
        ValueError: naming the available architectures if ``arch`` is unknown.
    """
    from torchvision.models import resnet

    available = sorted(
        name for name in resnet.__all__ if name.startswith(("resnet", "wide_resnet", "resnext"))
    )
    if arch not in available:
        raise ValueError(f"unknown ResNet architecture {arch!r}; available: {', '.join(available)}")
    model = getattr(resnet, arch)(weights=None, **kwargs)
    if drop_fc:
        model.fc = nn.Identity()
    return model
