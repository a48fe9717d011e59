"""Analyses of trained topographic models: tuning, maps, smoothness, pinwheels, patches.

Everything here is plain NumPy/SciPy on responses ``(S stimuli, N units)`` and coordinates
``(N, 2)`` in mm, as returned by :meth:`spacetorch.models.topographic.TopographicModel.responses`.
"""

from spacetorch.analyses.category import CategoryPatches, Patch, category_patches, category_selectivity
from spacetorch.analyses.orientation_map import OrientationMap, analyze_orientation_map
from spacetorch.analyses.pinwheels import (
    OrientationGrid,
    Pinwheels,
    SpacingEstimate,
    column_spacing,
    estimate_column_spacing,
    find_pinwheels,
    orientation_grid,
)
from spacetorch.analyses.smoothness import DistanceCurve, NearPairs, distance_curve, near_pair_difference, smoothness
from spacetorch.analyses.tuning import (
    SELECTIVE_CV,
    OrientationTuning,
    orientation_tuning,
    preferred_value,
    tuning_curves,
)

__all__ = [
    "SELECTIVE_CV",
    "CategoryPatches",
    "DistanceCurve",
    "NearPairs",
    "OrientationGrid",
    "OrientationMap",
    "OrientationTuning",
    "Patch",
    "Pinwheels",
    "SpacingEstimate",
    "analyze_orientation_map",
    "category_patches",
    "category_selectivity",
    "column_spacing",
    "distance_curve",
    "estimate_column_spacing",
    "find_pinwheels",
    "near_pair_difference",
    "orientation_grid",
    "orientation_tuning",
    "preferred_value",
    "smoothness",
    "tuning_curves",
]
