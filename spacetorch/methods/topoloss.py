"""TopoLoss (Deb, Deb and Murty, TopoNets, ICLR 2025).

Every ``Conv2d`` and ``Linear`` inside the chosen layers gets the penalty of
:func:`spacetorch.losses.topoloss` on its output-channel grid, each on its own grid, as the
TopoNets apply it; a layer's penalty is the mean over its convolutions, times ``weight``.
Computed here in plain PyTorch; the values equal those of the ``topoloss`` package (0.0.2) on
the same weights (the tests check three cases).  It is not a dependency: it pins ``typeguard<3``
through ``torchtyping``, which conflicts with current packages that need typeguard 4.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from spacetorch.losses import topoloss, weight_sheet
from spacetorch.methods import TopographyMethod, register_method


@register_method
class TopoLoss(TopographyMethod):
    name: ClassVar[str] = "topoloss"
    paper: ClassVar[str] = "Deb, Deb and Murty, TopoNets: high performing vision and language models with brain-like topography, ICLR 2025"
    sheet: ClassVar[str] = "tiled"
    #: ``factor``: how many times the grid is shrunk per side for its low-pass copy
    PARAMS: ClassVar[dict[str, Any]] = {"factor": 2.0}
    simplified: ClassVar[str] = "one shrink factor for both sides of every grid"

    def _convolutions(self, model: nn.Module) -> dict[str, list[nn.Module]]:
        found: dict[str, list[nn.Module]] = {}
        for name, module in self.modules(model).items():
            convs: list[nn.Module] = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
            if not convs:
                raise ValueError(f"topography method 'topoloss': layer {name!r} holds no Conv2d or Linear")
            found[name] = convs
        return found

    def prepare(self, model: nn.Module, image_size: int) -> nn.Module:
        for name, convs in self._convolutions(model).items():
            for conv in convs:
                side = min(weight_sheet(conv).shape[:2])
                if float(self.params["factor"]) > side:
                    raise ValueError(
                        f"topography method 'topoloss': factor {self.params['factor']} is larger than a grid side "
                        f"({side}) of a convolution in {name!r}"
                    )
        return model

    def penalties(self, model: nn.Module) -> dict[str, torch.Tensor]:
        factor = float(self.params["factor"])
        return {
            name: self.weight * torch.stack([topoloss(weight_sheet(conv), factor) for conv in convs]).mean()
            for name, convs in self._convolutions(model).items()
        }
