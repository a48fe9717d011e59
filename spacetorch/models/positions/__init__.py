"""Unit positions on the simulated cortical sheet.

``LayerPositions`` and ``NetworkPositions`` keep the original TDANN names and file formats;
position pickles written by the original code name the class
``spacetorch.models.positions.LayerPositions`` and load from here.  This package places the units of the layers it is given; the layers of a
registered model come from :func:`spacetorch.models.retinotopic_positions`.
"""

from spacetorch.models.positions._safe_pickle import UnsafePickleError
from spacetorch.models.positions.layer_positions import (
    FlatIndices,
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
    positions_for_layers,
    retinotopic_layer,
)
from spacetorch.models.positions.tiled import sheet_shape, tiled_coordinates, tiled_positions

__all__ = [
    "AREAS",
    "CorticalArea",
    "FlatIndices",
    "LayerPositions",
    "NetworkPositions",
    "PositionsError",
    "RetinotopicLayerSpec",
    "UnsafePickleError",
    "build_neighborhoods",
    "check_output_dir",
    "positions_for_layers",
    "retinotopic_layer",
    "sheet_shape",
    "tiled_coordinates",
    "tiled_positions",
]

# The positions of a registered model are made on the model side (spacetorch.models.sheets),
# so that this package never imports the model registry.  Their earlier import path,
# ``from spacetorch.models.positions import retinotopic_positions``, still works.
_MODEL_SIDE = ("retinotopic_layer_specs", "retinotopic_positions")


def __getattr__(name: str) -> object:
    if name in _MODEL_SIDE:
        from spacetorch.models import sheets

        return getattr(sheets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
