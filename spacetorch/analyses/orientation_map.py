"""The standard V1 analysis of one layer: orientation tuning, map smoothness, pinwheels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spacetorch.analyses.pinwheels import (
    OrientationGrid,
    Pinwheels,
    SpacingEstimate,
    estimate_column_spacing,
    find_pinwheels,
    orientation_grid,
)
from spacetorch.analyses.smoothness import DistanceCurve, NearPairs, distance_curve, near_pair_difference
from spacetorch.analyses.tuning import SELECTIVE_CV, OrientationTuning, orientation_tuning

__all__ = ["OrientationMap", "analyze_orientation_map"]


@dataclass
class OrientationMap:
    """Everything the V1 figure shows for one layer.

    Attributes:
        coordinates: ``(N, 2)`` mm.
        tuning: per-unit orientation tuning.
        selective_cv: units with a lower circular variance are orientation-selective.
        curve: preference difference vs distance over the selective units.
        shuffled_curve: the same with preferences shuffled across units (the chance level).
        grid: the map resampled on a grid.
        pinwheels: pinwheels found on the grid.
        spacing: column spacing, mm (NaN when the map has no dominant spacing, or is no
            smoother than the shuffled map).
        spacing_note: why there is no spacing (empty when there is one).
        near: the selective units' pairs closer than 1 mm: their mean preference difference
            against shuffled preferences (``None`` when no two selective units are that close).
    """

    coordinates: np.ndarray
    tuning: OrientationTuning
    selective_cv: float
    curve: DistanceCurve
    shuffled_curve: DistanceCurve
    grid: OrientationGrid
    pinwheels: Pinwheels
    spacing: float
    spacing_note: str = ""
    near: NearPairs | None = None

    @property
    def selective(self) -> np.ndarray:
        """``(N,)`` bool: the orientation-selective units."""
        return self.tuning.selective(self.selective_cv)

    @property
    def selective_preferred(self) -> np.ndarray:
        """``(N,)`` preferred orientation of the selective units, NaN for the others."""
        return self.tuning.selective_preferred(self.selective_cv)

    @property
    def smoothness(self) -> float:
        return self.curve.smoothness

    @property
    def pinwheel_density(self) -> float:
        """Pinwheels per (column spacing)^2 (about pi in many species)."""
        return len(self.pinwheels) * self.spacing**2 / self.grid.area

    def summary(self) -> str:
        return (
            f"{int(self.selective.sum())} of {len(self.selective)} units orientation-selective; "
            f"smoothness {self.smoothness:.3f} (shuffled {self.shuffled_curve.smoothness:.3f}); "
            + (f"{self.near.summary()}; " if self.near is not None else "") +
            f"{len(self.pinwheels)} pinwheels, " + (
                f"column spacing {self.spacing:.2f} mm, density {self.pinwheel_density:.2f} per spacing^2"
                if np.isfinite(self.spacing) else f"no column spacing ({self.spacing_note}), so no pinwheel density"
            )
        )


def analyze_orientation_map(
    responses: np.ndarray,
    coordinates: np.ndarray,
    orientations: np.ndarray,
    *,
    selective_cv: float = SELECTIVE_CV,
    window: float = 1.5,
    stride: float = 0.45,
    max_distance: float | None = None,
    near_radius: float = 1.0,
    seed: int = 0,
) -> OrientationMap:
    """Tuning, smoothness and pinwheels of one layer from its responses to oriented stimuli.

    Args:
        responses: ``(S, N)``; coordinates: ``(N, 2)`` mm; orientations: ``(S,)`` degrees.
        selective_cv: units with a lower circular variance enter the map.
        window, stride: the grid's window side and spacing, mm.
        max_distance: the smoothness curve's range, mm (default: half the sheet).
        near_radius: the pairs whose preference difference is compared with chance, mm.
        seed: the smoothness curve's anchors and the shuffles.

    Raises:
        ValueError: no unit is orientation-selective.
    """
    xy = np.asarray(coordinates, dtype=np.float64)
    tuning = orientation_tuning(responses, orientations)
    selective = tuning.selective(selective_cv)
    if not selective.any():
        raise ValueError(
            f"no unit has a circular variance below {selective_cv} (lowest: {tuning.circular_variance.min():.3f}); "
            "there is no orientation map to draw"
        )
    preferred = tuning.selective_preferred(selective_cv)
    curve = distance_curve(xy, preferred, max_distance=max_distance, seed=seed)
    shuffled = preferred.copy()
    shuffled[selective] = np.random.default_rng(seed).permutation(preferred[selective])
    shuffled_curve = distance_curve(xy, shuffled, max_distance=max_distance, seed=seed)
    grid = orientation_grid(xy, preferred, window=window, stride=stride)
    try:
        estimate = estimate_column_spacing(grid)
    except ValueError as err:
        estimate = SpacingEstimate(float("nan"), float("nan"), str(err))
    if np.isfinite(estimate.spacing) and not curve.smoothness > shuffled_curve.smoothness:
        # the grid of a map without columns (e.g. few scattered units) can still show a ring
        # in its spectrum; a spacing of columns needs nearby units to be more alike than chance
        estimate = SpacingEstimate(
            float("nan"), estimate.contrast,
            f"nearby units are no more alike than in the shuffled map (smoothness {curve.smoothness:.3f} vs "
            f"{shuffled_curve.smoothness:.3f}), so there are no columns",
        )
    try:
        near: NearPairs | None = near_pair_difference(xy, preferred, radius=near_radius, seed=seed)
    except ValueError:  # no two selective units that close
        near = None
    return OrientationMap(
        xy, tuning, selective_cv, curve, shuffled_curve, grid, find_pinwheels(grid), estimate.spacing, estimate.reason,
        near,
    )
