"""Fixed local lateral connections (after LLCNN: Qian et al., Nat. Commun. 2026).

After each chosen layer, every unit of the tiled sheet receives a fixed Gaussian share of its
sheet neighbours' activity (:class:`spacetorch.models.lateral.LateralInteraction`); nothing is
added to the loss.  ``weight`` is the share (``strength``, in [0, 1]).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from spacetorch.methods import TopographyMethod, register_method
from spacetorch.models.lateral import LateralInteraction, add_lateral


@register_method
class Lateral(TopographyMethod):
    name: ClassVar[str] = "lateral"
    paper: ClassVar[str] = "Qian et al., Local lateral connectivity is sufficient for replicating cortex-like topographical organization in deep neural networks, Nat. Commun. 2026"
    sheet: ClassVar[str] = "tiled"
    #: ``sigma``: the Gaussian's width in sheet cells; ``steps``: how many times it is applied
    PARAMS: ClassVar[dict[str, Any]] = {"sigma": 1.0, "steps": 1}
    simplified: ClassVar[str] = (
        "a fixed Gaussian spread over the tiled channel sheet (width sigma, share weight, applied steps times) "
        "after each chosen block, in place of the paper's own lateral kernel and recurrence"
    )

    def prepare(self, model: nn.Module, image_size: int) -> nn.Module:
        if self.weight > 1:
            raise ValueError(f"topography method 'lateral': weight (the lateral share) must be in [0, 1], got {self.weight}")
        for module in self.modules(model).values():
            add_lateral(module, LateralInteraction(float(self.params["sigma"]), self.weight, int(self.params["steps"])))
        return model
