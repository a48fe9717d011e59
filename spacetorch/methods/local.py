"""Locally connected sheets with smooth kernels (after All-TNN: Lu et al., Nat. Hum. Behav. 2025).

In each chosen block, the 3x3 ``conv2`` becomes a locally connected layer (the V1 family's
:class:`~spacetorch.models.families.v1.LocallyConnected2d`): a kernel for every channel at every
position, no weight sharing.  The units tile the sheet and the penalty is
:func:`spacetorch.losses.neighbour_dissimilarity` of their kernels (``1 - mean cosine``
between sheet neighbours), times ``weight``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from spacetorch.losses import local_weight_sheet, neighbour_dissimilarity
from spacetorch.methods import TopographyMethod, register_method
from spacetorch.models.capture import output_dims
from spacetorch.models.families.v1 import LocallyConnected2d


@register_method
class LocalSheet(TopographyMethod):
    name: ClassVar[str] = "local"
    paper: ClassVar[str] = "Lu et al., End-to-end topographic networks as models of cortical map formation and human visual behaviour, Nat. Hum. Behav. 2025"
    sheet: ClassVar[str] = "tiled"
    simplified: ClassVar[str] = (
        "only the chosen blocks' conv2 is locally connected (All-TNN has no convolution at all), and the smoothness "
        "term is 1 - cosine between neighbouring kernels"
    )

    def prepare(self, model: nn.Module, image_size: int) -> nn.Module:
        blocks = self.modules(model)
        for name, block in blocks.items():
            if not isinstance(getattr(block, "conv2", None), nn.Conv2d):
                raise ValueError(f"topography method 'local': layer {name!r} has no conv2 (a ResNet block's 3x3 convolution)")
        inputs = output_dims(model, [f"{name}.conv1" for name in blocks], image_size)
        for name, block in blocks.items():
            conv: nn.Conv2d = block.conv2  # type: ignore[assignment]
            if conv.groups != 1 or conv.dilation != (1, 1) or conv.kernel_size[0] != conv.kernel_size[1]:
                raise ValueError(f"topography method 'local': {name}.conv2 is grouped, dilated or not square")
            _, h, w = inputs[f"{name}.conv1"]
            block.conv2 = LocallyConnected2d(
                conv.in_channels, conv.out_channels, (h, w), kernel_size=conv.kernel_size[0],
                stride=conv.stride[0], padding=int(conv.padding[0]), bias=conv.bias is not None,
            )
        return model

    def penalties(self, model: nn.Module) -> dict[str, torch.Tensor]:
        found = {}
        for name, block in self.modules(model).items():
            local = block.conv2
            if not isinstance(local, LocallyConnected2d):
                raise ValueError(f"topography method 'local': {name}.conv2 is not locally connected; was the model prepared?")
            found[name] = self.weight * neighbour_dissimilarity(local_weight_sheet(local.weight))
        return found
