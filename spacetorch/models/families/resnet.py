"""torchvision's ResNets, the TDANN's networks (Margalit et al., Neuron 2024).

Every residual block (``layer<stage>.<block>``) carries positions; layer1 maps to the retina,
layer2 to V1, the first half of layer3 to V2 and its second half to V4, layer4 to VTC.  The
models are torchvision's own (weights of the published checkpoints load as they are), so they
stay out of timm's registry, where these names are timm's ResNets.

>>> from spacetorch.models import list_models
>>> list_models("resnet*")
['resnet101', 'resnet152', 'resnet18', 'resnet34', 'resnet50']
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models import resnet as tv

from spacetorch.models.registry import register_model

__all__ = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
]


def _torchvision(arch: str, **kwargs: Any) -> nn.Module:
    model: nn.Module = getattr(tv, arch)(weights=None, **kwargs)
    return model


def _register(builder: Any) -> Any:
    return register_model(builder, timm=False, family="torchvision_resnet")


@_register
def resnet18(**kwargs: Any) -> nn.Module:
    """ResNet-18 (BasicBlock, 2-2-2-2): 8 blocks with positions, the headline TDANN."""
    return _torchvision("resnet18", **kwargs)


@_register
def resnet34(**kwargs: Any) -> nn.Module:
    """ResNet-34 (BasicBlock, 3-4-6-3)."""
    return _torchvision("resnet34", **kwargs)


@_register
def resnet50(**kwargs: Any) -> nn.Module:
    """ResNet-50 (Bottleneck, 3-4-6-3)."""
    return _torchvision("resnet50", **kwargs)


@_register
def resnet101(**kwargs: Any) -> nn.Module:
    """ResNet-101 (Bottleneck, 3-4-23-3)."""
    return _torchvision("resnet101", **kwargs)


@_register
def resnet152(**kwargs: Any) -> nn.Module:
    """ResNet-152 (Bottleneck, 3-8-36-3)."""
    return _torchvision("resnet152", **kwargs)


@_register
def resnext50_32x4d(**kwargs: Any) -> nn.Module:
    """ResNeXt-50 32x4d."""
    return _torchvision("resnext50_32x4d", **kwargs)


@_register
def resnext101_32x8d(**kwargs: Any) -> nn.Module:
    """ResNeXt-101 32x8d."""
    return _torchvision("resnext101_32x8d", **kwargs)


@_register
def resnext101_64x4d(**kwargs: Any) -> nn.Module:
    """ResNeXt-101 64x4d."""
    return _torchvision("resnext101_64x4d", **kwargs)


@_register
def wide_resnet50_2(**kwargs: Any) -> nn.Module:
    """Wide ResNet-50-2."""
    return _torchvision("wide_resnet50_2", **kwargs)


@_register
def wide_resnet101_2(**kwargs: Any) -> nn.Module:
    """Wide ResNet-101-2."""
    return _torchvision("wide_resnet101_2", **kwargs)
