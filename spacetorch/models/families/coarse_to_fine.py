"""Top-Down Networks: coarse-to-fine CNNs (Lelekas, Tomen, Pintea and van Gemert, CVPR-W 2020),
and the bottom-up ResNets they are compared with.

A coarse-to-fine network sees the image as an anti-aliased pyramid (:class:`GaussianPyramid`:
the image blurred with sigma ``2**(k-1)`` px and subsampled by ``2**k``, for ``k = 1 .. L-1``).
It starts at the coarsest level and works towards the finest; every stage runs at one scale:

* the first stage convolves the coarsest image (3x3) to its width;
* every later stage upsamples the features x2 (nearest), convolves its own, finer image (3x3,
  ``s``, as many channels as the features ``x``), and merges the two:
  ``concat([x + s, s]) -> BN -> ReLU -> conv3x3`` to its width;
* then its pre-activation residual blocks (stride 1 everywhere).

Widths go from wide at the coarse end to narrow at the fine end, and global average pooling
happens at full resolution.  The bottom-up twin is the same network read the other way: a
pre-activation ResNet from the full-resolution image, each stage halving the resolution with a
strided first block, with the same widths and blocks per scale.

Variants (``num_classes`` default 10, as MNIST, CIFAR-10 and Imagenette):

=====================================  ======  ====================================================
name                                   input   stages, coarse to fine (width x blocks @ scale)
=====================================  ======  ====================================================
``topdown_resnet20_mnist``             28 grey 64x3 @ 1/4, 32x3 @ 1/2, 16x3 @ 1
``topdown_resnet32_cifar``             32      64x5 @ 1/4, 32x5 @ 1/2, 16x5 @ 1 (ResNet-32 reversed)
``topdown_resnet18_imagenette``        128     256x2 @ 1/16, 256x2 @ 1/8, 128x2 @ 1/4, 64x2 @ 1/2,
                                               32x0 @ 1 (a merge only)
=====================================  ======  ====================================================

and ``bottomup_resnet20_mnist``, ``bottomup_resnet32_cifar``, ``bottomup_resnet18_imagenette``.
The stages are ``layer1`` .. ``layerN`` in forward order and carry the unit positions; a stage's
cortical area follows its scale (full resolution: V1, or retina for five stages; coarsest: VTC).

>>> import torch
>>> from spacetorch.models import create_model
>>> create_model("topdown_resnet32_cifar")(torch.rand(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spacetorch.models.registry import register_model, stage_areas

__all__ = ["BottomUpNet", "GaussianPyramid", "PreActBlock", "TopDownNet", "TopDownStage", "gaussian_kernel"]

#: scipy.ndimage's default: the kernel reaches 4 sigma (rounded) on each side
TRUNCATE = 4.0


def gaussian_kernel(sigma: float, truncate: float = TRUNCATE) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``sigma`` px over ``[-r, r]``, ``r = int(truncate * sigma + 0.5)``
    (the kernel ``scipy.ndimage.gaussian_filter`` uses)."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return (kernel / kernel.sum()).float()


class GaussianPyramid(nn.Module):
    """``(B, C, H, W)`` -> ``levels`` tensors, finest first: the image, then for ``k = 1 ..
    levels-1`` the image blurred by a Gaussian of sigma ``2**(k-1)`` px (1 at /2, 2 at /4, ...)
    and subsampled by ``2**k`` (rows and columns ``0, 2**k, ...``): ``(B, C, H / 2**k, W / 2**k)``.

    Each level is blurred from the full image (not from the level before), separably, with
    mirrored borders (``d c b | a b c d``, scipy's ``mode="mirror"``), computing only the kept
    pixels (strided convolutions).

    Args:
        levels: how many levels (1: the image alone).
        channels: the input's channels (checked).

    Raises:
        ValueError: at call, an input whose channels differ, or whose height or width is not a
            multiple of ``2**(levels-1)``.
    """

    def __init__(self, levels: int, channels: int) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = levels
        self.channels = channels
        for k in range(1, levels):
            self.register_buffer(f"kernel{k}", gaussian_kernel(2.0 ** (k - 1)), persistent=False)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, channels={self.channels}, sigmas={[2.0 ** (k - 1) for k in range(1, self.levels)]}"

    def check(self, shape: Sequence[int]) -> None:
        """Raise ``ValueError`` if an input of ``shape`` (B, C, H, W) does not fit."""
        if len(shape) != 4 or shape[1] != self.channels:
            kind = {1: "grey", 3: "colour"}.get(self.channels, f"{self.channels}-channel")
            raise ValueError(
                f"input of shape {tuple(shape)}: expected (B, {self.channels}, H, W), {kind} images"
                + (" (convert grey images to RGB first)" if self.channels == 3 else "")
            )
        factor = 2 ** (self.levels - 1)
        height, width = shape[2], shape[3]
        if height % factor or width % factor:
            raise ValueError(
                f"input of {height}x{width} px: the {self.levels}-level pyramid halves it {self.levels - 1} times, "
                f"so height and width must be multiples of {factor}"
            )
        radius = (len(getattr(self, f"kernel{self.levels - 1}")) - 1) // 2 if self.levels > 1 else 0
        if radius >= min(height, width):
            raise ValueError(f"input of {height}x{width} px is smaller than the coarsest blur's reach ({radius + 1} px)")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.check(x.shape)
        levels = [x]
        flat = x.reshape(-1, 1, x.shape[2], x.shape[3])
        for k in range(1, self.levels):
            kernel: torch.Tensor = getattr(self, f"kernel{k}").to(x.dtype)
            radius, step = (len(kernel) - 1) // 2, 2**k
            rows = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1), stride=(1, step))
            both = F.conv2d(F.pad(rows, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1), stride=(step, 1))
            levels.append(both.reshape(x.shape[0], x.shape[1], both.shape[2], both.shape[3]))
        return levels


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """A pre-activation residual block: ``BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3`` plus the input,
    through a strided 1x1 convolution of the pre-activated input where the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            if stride != 1 or in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        skip = self.shortcut(activated) if self.shortcut is not None else x
        out: torch.Tensor = self.conv2(F.relu(self.bn2(self.conv1(activated)))) + skip
        return out


class TopDownStage(nn.Module):
    """One scale of a coarse-to-fine network (see the module docstring).

    Args:
        in_chans: the image's channels.
        coarser: the width of the coarser stage's output; ``None`` for the first stage.
        width: this stage's width; ``blocks``: its residual blocks.
    """

    def __init__(self, in_chans: int, coarser: int | None, width: int, blocks: int) -> None:
        super().__init__()
        self.first = coarser is None
        if coarser is None:
            self.entry = _conv3x3(in_chans, width)
        else:
            self.lateral = _conv3x3(in_chans, coarser)
            self.merge = nn.Sequential(nn.BatchNorm2d(2 * coarser), nn.ReLU(inplace=True), _conv3x3(2 * coarser, width))
        self.blocks = nn.Sequential(*(PreActBlock(width, width) for _ in range(blocks)))

    def forward(self, image: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        if self.first:
            x = self.entry(image)
        else:
            if features is None:
                raise ValueError("a later stage needs the coarser stage's features")
            s = self.lateral(image)
            x = self.merge(torch.cat([F.interpolate(features, scale_factor=2.0, mode="nearest") + s, s], dim=1))
        out: torch.Tensor = self.blocks(x)
        return out


def _check_stages(widths: Sequence[int], blocks: Sequence[int]) -> None:
    if not widths or len(widths) != len(blocks):
        raise ValueError(f"widths and blocks need one entry per stage, got {list(widths)} and {list(blocks)}")
    if any(w < 1 for w in widths) or any(b < 0 for b in blocks):
        raise ValueError(f"widths must be >= 1 and blocks >= 0, got {list(widths)} and {list(blocks)}")


class TopDownNet(nn.Module):
    """A coarse-to-fine network.

    Args:
        widths: per stage, coarse to fine (one stage per pyramid level).
        blocks: residual blocks per stage.
        in_chans: image channels (1: grey, 3: colour).
        num_classes: classifier outputs.

    Input ``(B, in_chans, H, W)`` with H and W multiples of ``2**(len(widths)-1)``; output ``(B, num_classes)``.
    """

    def __init__(self, widths: Sequence[int], blocks: Sequence[int], *, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        _check_stages(widths, blocks)
        self.widths, self.depths = tuple(widths), tuple(blocks)
        self.pyramid = GaussianPyramid(len(widths), in_chans)
        coarser: int | None = None
        for index, (width, count) in enumerate(zip(widths, blocks, strict=True), 1):
            self.add_module(f"layer{index}", TopDownStage(in_chans, coarser, width, count))
            coarser = width
        self.norm = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        _initialise(self)

    def stages(self) -> list[TopDownStage]:
        return [getattr(self, f"layer{i}") for i in range(1, len(self.widths) + 1)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output after BN-ReLU, at full resolution: ``(B, widths[-1], H, W)``."""
        levels = self.pyramid(x)
        features: torch.Tensor | None = None
        for stage, image in zip(self.stages(), reversed(levels), strict=True):
            features = stage(image, features)
        assert features is not None
        out: torch.Tensor = self.norm(features)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))
        return out


class BottomUpNet(nn.Module):
    """The bottom-up twin of a :class:`TopDownNet`: a pre-activation ResNet.

    Args:
        widths, blocks: per stage, fine to coarse (a TopDownNet's, reversed).  The stem convolves
            the image to ``widths[0]``; every later stage starts with a stride-2 block (a stage
            of 0 blocks, the first only, is the stem alone).
        in_chans, num_classes: as :class:`TopDownNet`.
    """

    def __init__(self, widths: Sequence[int], blocks: Sequence[int], *, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        _check_stages(widths, blocks)
        if any(b < 1 for b in blocks[1:]):
            raise ValueError(f"every stage after the first needs a block to change the scale, got blocks {list(blocks)}")
        self.widths, self.depths = tuple(widths), tuple(blocks)
        self.in_chans = in_chans
        self.stem = _conv3x3(in_chans, widths[0])
        previous = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks, strict=True), 1):
            stride = 1 if index == 1 else 2
            layers = [PreActBlock(previous if i == 0 else width, width, stride if i == 0 else 1) for i in range(count)]
            self.add_module(f"layer{index}", nn.Sequential(*layers))
            previous = width
        self.norm = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        _initialise(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(f"input of shape {tuple(x.shape)}: expected (B, {self.in_chans}, H, W)")
        x = self.stem(x)
        for index in range(1, len(self.widths) + 1):
            x = getattr(self, f"layer{index}")(x)
        out: torch.Tensor = self.norm(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))
        return out


def _initialise(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


#: per variant: (input size, image channels, widths coarse to fine, blocks coarse to fine,
#: normalisation mean, std)
VARIANTS: dict[str, tuple[int, int, tuple[int, ...], tuple[int, ...], tuple[float, ...], tuple[float, ...]]] = {
    "resnet20_mnist": (28, 1, (64, 32, 16), (3, 3, 3), (0.1307,), (0.3081,)),
    "resnet32_cifar": (32, 3, (64, 32, 16), (5, 5, 5), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "resnet18_imagenette": (128, 3, (256, 256, 128, 64, 32), (2, 2, 2, 2, 0), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

# cortical areas by scale, finest first: a stage's area follows the resolution it works at (the
# full-resolution stage is V1-like, the coarsest VTC-like), so a coarse-to-fine network runs
# through them from VTC to V1 and its bottom-up twin from V1 to VTC
_AREAS_BY_SCALE = {3: ("V1", "V4", "VTC"), 5: ("retina", "V1", "V2", "V4", "VTC")}


def _register(kind: str, variant: str) -> None:
    size, chans, widths, blocks, mean, std = VARIANTS[variant]
    stage_names = [f"layer{i}" for i in range(1, len(widths) + 1)]
    by_scale = _AREAS_BY_SCALE[len(widths)]
    in_order = by_scale[::-1] if kind == "topdown" else by_scale  # the top-down net starts coarse
    areas = stage_areas(dict(zip(stage_names, in_order, strict=True)), stage_of=r"(layer\d+)")
    name = f"{kind}_{variant}"

    def builder(*, num_classes: int = 10, **kwargs: Any) -> nn.Module:
        if kind == "topdown":
            return TopDownNet(widths, blocks, in_chans=chans, num_classes=num_classes, **kwargs)
        return BottomUpNet(widths[::-1], blocks[::-1], in_chans=chans, num_classes=num_classes, **kwargs)

    builder.__name__ = builder.__qualname__ = name
    where = "coarse to fine" if kind == "topdown" else "fine to coarse (its bottom-up twin)"
    builder.__doc__ = f"{name}: {size} px {'grey' if chans == 1 else 'colour'} images, stage widths {list(widths)} {where}."
    register_model(
        builder, layers=r"layer\d+", areas=areas, input_size=size, in_chans=chans, mean=mean, std=std, family="topdown"
    )


for _variant in VARIANTS:
    for _kind in ("topdown", "bottomup"):
        _register(_kind, _variant)
