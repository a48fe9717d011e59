"""Models, their layers and unit positions.

``create_model(name)`` builds any registered model; ``list_models(pattern)`` lists them; a
model family registers its builders with ``register_model`` (see
:mod:`spacetorch.models.registry`); ``retinotopic_positions(name)`` places the units of its
layers on their cortical sheets (:mod:`spacetorch.models.sheets`).
"""

from spacetorch.models.registry import ModelInfo, create_model, list_models, model_info, register_model, stage_areas
from spacetorch.models.sheets import retinotopic_layer_specs, retinotopic_positions

__all__ = [
    "ModelInfo",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
    "retinotopic_layer_specs",
    "retinotopic_positions",
    "stage_areas",
]
