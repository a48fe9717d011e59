"""Losses in plain PyTorch; they import and run without VISSL."""

from spacetorch.losses.spatial_loss import (
    LOSS_KINDS,
    LayerWeightedSpatialLoss,
    SpatialLoss,
    layer_weight_mismatch,
    spatial_loss,
)

__all__ = ["LOSS_KINDS", "LayerWeightedSpatialLoss", "SpatialLoss", "layer_weight_mismatch", "spatial_loss"]
