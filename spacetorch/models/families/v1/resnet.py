"""Neuro-constrained ResNet-50s with a V1-like front end (Pogoncheff, Granley and Beyeler, NeurIPS 2023).

A torchvision ResNet-50 for 64 px images (conv1 gives 32 x 32 maps, layer1 runs at 16 x 16)
whose stem and layer1 carry the components of :mod:`spacetorch.models.families.v1`:

* **center-surround**: in layer1 blocks 0 and 1, conv2 (3x3) is followed by a DoG convolution
  on 16 of its 64 channels, before bn2;
* **local RF**: layer1 block 2's conv2 is a locally connected layer (64 -> 64, 3x3, 16 x 16),
  optionally after ``Dropout2d``;
* **tuned / standard divisive normalisation**: after the residual add and ReLU of every
  layer1 block (256 channels);
* **cortical magnification**: the polar transform replaces the max-pool (32 x 32 -> 16 x 16).

Composite variants (letters as in the paper): a = DoG + LC + tuned DN + polar; b = LC + tuned
DN + polar; c = DoG + LC + polar; d = DoG + LC + tuned DN; e = tuned DN + polar; f = LC + polar;
g = LC + tuned DN.  Each model is built from explicit arguments (:class:`V1Components`), so
building several in one process never shares settings.  Blocks keep torchvision's names, and
every residual block carries positions (layer1 -> retina, layer2 -> V1, ..., as for the TDANN).

>>> from spacetorch.models import create_model
>>> model = create_model("v1_resnet50_a")
>>> type(model.maxpool).__name__, type(model.layer1[2].conv2[-1]).__name__
('PolarTransform', 'LocallyConnected2d')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from spacetorch.models.families.v1 import (
    CenterSurround,
    LocallyConnected2d,
    PolarTransform,
    StandardDivisiveNorm,
    TunedDivisiveNorm,
)
from spacetorch.models.registry import register_model

__all__ = ["COMPOSITES", "SINGLE_COMPONENTS", "V1Bottleneck", "V1Components", "V1ResNet"]

#: the input size of the V1 ResNets, px
INPUT_SIZE = 64
#: their normalisation
MEAN = STD = (0.5, 0.5, 0.5)
_NORMS = ("none", "tuned", "standard")


@dataclass(frozen=True)
class V1Components:
    """Which components a V1 ResNet-50 has.

    Attributes:
        center_surround: DoG in conv2 of layer1 blocks 0 and 1 (on ``dog_channels`` channels).
        local_rf: a locally connected conv2 in layer1 block 2 (after ``Dropout2d(local_rf_dropout)``
            if that is > 0).
        divisive_norm: ``"none"``, ``"tuned"`` or ``"standard"``, after every layer1 block.
        cortical_magnification: the polar transform instead of the max-pool.
    """

    center_surround: bool = False
    local_rf: bool = False
    divisive_norm: str = "none"
    cortical_magnification: bool = False
    dog_channels: int = 16
    local_rf_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.divisive_norm not in _NORMS:
            raise ValueError(f"divisive_norm={self.divisive_norm!r} is not valid; choose one of {', '.join(map(repr, _NORMS))}")
        if not 0 <= self.local_rf_dropout < 1:
            raise ValueError(f"local_rf_dropout={self.local_rf_dropout!r} is not valid; it must be in [0, 1)")


#: the composite variants of the paper
COMPOSITES = {
    "a": V1Components(center_surround=True, local_rf=True, divisive_norm="tuned", cortical_magnification=True),
    "b": V1Components(local_rf=True, divisive_norm="tuned", cortical_magnification=True),
    "c": V1Components(center_surround=True, local_rf=True, cortical_magnification=True),
    "d": V1Components(center_surround=True, local_rf=True, divisive_norm="tuned"),
    "e": V1Components(divisive_norm="tuned", cortical_magnification=True),
    "f": V1Components(local_rf=True, cortical_magnification=True),
    "g": V1Components(local_rf=True, divisive_norm="tuned"),
}
#: the single-component models
SINGLE_COMPONENTS = {
    "center_surround": V1Components(center_surround=True),
    "local_rf": V1Components(local_rf=True),
    "cortical_magnification": V1Components(cortical_magnification=True),
    "tuned_dn": V1Components(divisive_norm="tuned"),
    "standard_dn": V1Components(divisive_norm="standard"),
}


class V1Bottleneck(nn.Module):
    """A torchvision Bottleneck (its submodules under their names) followed by ``post_norm``."""

    def __init__(self, block: Bottleneck, post_norm: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1, self.bn1 = block.conv1, block.bn1
        self.conv2, self.bn2 = block.conv2, block.bn2
        self.conv3, self.bn3 = block.conv3, block.bn3
        self.relu = block.relu
        self.downsample: nn.Module | None = block.downsample
        self.post_norm = post_norm if post_norm is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.post_norm(self.relu(out + identity))
        return result


class V1ResNet(ResNet):  # type: ignore[misc]  # torchvision's ResNet is not annotated
    """A ResNet-50 with the V1 components ``components`` (see the module docs); ``num_classes``
    outputs (1000 for ImageNet, 200 for Tiny-ImageNet)."""

    def __init__(self, components: V1Components, num_classes: int = 1000, **kwargs: Any) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, **kwargs)
        self.components = components
        side = INPUT_SIZE // 4  # layer1's maps
        if components.cortical_magnification:
            self.maxpool = PolarTransform(INPUT_SIZE // 2, side)
        for index in range(3):
            block = self.layer1[index]
            if components.center_surround and index in (0, 1):
                block.conv2 = nn.Sequential(block.conv2, CenterSurround(64, components.dog_channels))
            if components.local_rf and index == 2:
                local = LocallyConnected2d(64, 64, side, kernel_size=3, padding=1)
                dropout = [nn.Dropout2d(components.local_rf_dropout)] if components.local_rf_dropout > 0 else []
                block.conv2 = nn.Sequential(*dropout, local)
            norm = {"tuned": TunedDivisiveNorm, "standard": StandardDivisiveNorm}.get(components.divisive_norm)
            self.layer1[index] = V1Bottleneck(block, norm(256) if norm is not None else None)


def _register(name: str, components: V1Components, doc: str) -> None:
    def builder(**kwargs: Any) -> V1ResNet:
        return V1ResNet(components, **kwargs)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc
    register_model(builder, input_size=INPUT_SIZE, mean=MEAN, std=STD, family="v1_resnet")


def _describe(c: V1Components) -> str:
    parts = [label for flag, label in ((c.center_surround, "center-surround (DoG)"), (c.local_rf, "local RF"),
                                       (c.divisive_norm != "none", f"{c.divisive_norm} divisive normalisation"),
                                       (c.cortical_magnification, "cortical magnification (polar)")) if flag]
    return " + ".join(parts)


for _letter, _components in COMPOSITES.items():
    _register(f"v1_resnet50_{_letter}", _components, f"V1 ResNet-50 variant {_letter}: {_describe(_components)}, 64 px.")
for _single, _components in SINGLE_COMPONENTS.items():
    _register(f"v1_resnet50_{_single}", _components, f"V1 ResNet-50 with {_describe(_components)}, 64 px.")
