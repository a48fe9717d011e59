"""Models, their layers and unit positions.

``create_model(name)`` builds any registered model; ``list_models(pattern)`` lists them; a
model family registers its builders with ``register_model`` (see
:mod:`spacetorch.models.registry`).
"""

from spacetorch.models.registry import ModelInfo, create_model, list_models, model_info, register_model, stage_areas

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model", "stage_areas"]
