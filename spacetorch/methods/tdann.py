"""The TDANN's spatial correlation loss (Margalit et al., Neuron 2024).

Its term lives in the training loss itself (``LOSS.<spatial loss>.layer_weights``, set by
``train.py --alpha A --alpha-layers KEYS``), on the unit positions of the config's position set,
so this method adds no architecture and no extra penalty; it is here so that every method is
named, listed and measured the same way.
"""

from __future__ import annotations

from typing import ClassVar

from spacetorch.methods import TopographyMethod, Training, register_method
from spacetorch.models.layers import vissl_key


@register_method
class TDANN(TopographyMethod):
    name: ClassVar[str] = "tdann"
    paper: ClassVar[str] = "Margalit et al., A unifying framework for functional organization in early and higher ventral visual cortex, Neuron 2024"
    sheet: ClassVar[str] = "retinotopic"

    def training(self, image_size: int) -> Training:
        """The spatial loss at ``weight`` on the method's layers (the others 0); without a weight,
        the config's own layer weights."""
        if not self.weighted:
            return Training(alpha=None)
        return Training(alpha=self.weight, alpha_layers=tuple(vissl_key(layer) for layer in self.layers))
