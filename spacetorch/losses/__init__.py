"""Losses in plain PyTorch; they import and run without VISSL."""

from spacetorch.losses.spatial_loss import (
    LOSS_KINDS,
    LayerWeightedSpatialLoss,
    SpatialLoss,
    check_weight,
    layer_weight_mismatch,
    spatial_loss,
)
from spacetorch.losses.weight_topography import (
    local_weight_sheet,
    neighbour_dissimilarity,
    sheet_shape,
    topoloss,
    weight_sheet,
)

__all__ = [
    "LOSS_KINDS",
    "LayerWeightedSpatialLoss",
    "SpatialLoss",
    "check_weight",
    "layer_weight_mismatch",
    "local_weight_sheet",
    "neighbour_dissimilarity",
    "sheet_shape",
    "spatial_loss",
    "topoloss",
    "weight_sheet",
]
