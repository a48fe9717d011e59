"""Unit positions on the simulated cortical sheet.

``LayerPositions`` and ``NetworkPositions`` keep the original TDANN names and file formats;
position pickles written by the original code name the class
``spacetorch.models.positions.LayerPositions`` and load from here.
"""

from spacetorch.models.positions._safe_pickle import UnsafePickleError
from spacetorch.models.positions.layer_positions import (
    LayerPositions,
    NetworkPositions,
    PositionsError,
    check_output_dir,
)
from spacetorch.models.positions.neighborhoods import build_neighborhoods
from spacetorch.models.positions.retinotopy import (
    AREAS,
    CorticalArea,
    RetinotopicLayerSpec,
    retinotopic_layer,
    retinotopic_layer_specs,
    retinotopic_positions,
)

__all__ = [
    "AREAS",
    "CorticalArea",
    "LayerPositions",
    "NetworkPositions",
    "PositionsError",
    "RetinotopicLayerSpec",
    "UnsafePickleError",
    "build_neighborhoods",
    "check_output_dir",
    "retinotopic_layer",
    "retinotopic_layer_specs",
    "retinotopic_positions",
]
