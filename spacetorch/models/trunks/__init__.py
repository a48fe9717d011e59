"""Trunks that output their layers' features together with the units' positions."""

from spacetorch.models.trunks.spatial import SpatialOutputs, SpatialTrunk, spatial_model, spatial_resnet

__all__ = ["SpatialOutputs", "SpatialTrunk", "spatial_model", "spatial_resnet"]
