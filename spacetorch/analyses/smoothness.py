"""How similar the preferences of nearby units are: difference vs cortical distance.

For pairs of units, the absolute difference of their preferences (circular for orientation,
period 180 deg) is averaged in bins of cortical distance.  In a smooth map the curve starts
low and rises to the level of unrelated units;
``smoothness = (max(curve) - curve[0]) / max(curve)`` (Margalit et al. 2024) is near 0 for a
map without order and approaches 1 for a smooth one.

Pairs are drawn as every unit against a random sample of anchor units, so the cost is
``O(n_anchors * N)`` and memory stays bounded for layers of 10^5 units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DistanceCurve", "distance_curve", "smoothness"]


@dataclass
class DistanceCurve:
    """Mean preference difference per distance bin.

    Attributes:
        bin_edges: ``(K + 1,)`` mm.
        mean_difference: ``(K,)`` mean absolute difference (NaN for empty bins).
        pairs: ``(K,)`` pairs per bin.
    """

    bin_edges: np.ndarray
    mean_difference: np.ndarray
    pairs: np.ndarray

    @property
    def distances(self) -> np.ndarray:
        """``(K,)`` bin centres, mm."""
        centres: np.ndarray = (self.bin_edges[:-1] + self.bin_edges[1:]) / 2
        return centres

    @property
    def smoothness(self) -> float:
        """``(max - first) / max`` of the curve over its non-empty bins."""
        return smoothness(self.mean_difference[self.pairs > 0])


def smoothness(curve: np.ndarray) -> float:
    """``(max(curve) - curve[0]) / max(curve)``.

    >>> smoothness(np.array([10.0, 30.0, 40.0, 40.0]))
    0.75

    Raises:
        ValueError: an empty curve, or one whose maximum is not positive.
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.size == 0 or not np.nanmax(curve) > 0:
        raise ValueError(f"smoothness needs a curve with a positive maximum, got {curve}")
    top = float(np.nanmax(curve))
    return (top - float(curve[0])) / top


def distance_curve(
    coordinates: np.ndarray,
    values: np.ndarray,
    *,
    period: float | None = 180.0,
    max_distance: float | None = None,
    n_bins: int = 20,
    n_anchors: int = 500,
    seed: int = 0,
) -> DistanceCurve:
    """Mean ``|difference|`` of ``values`` between units, binned by their cortical distance.

    Args:
        coordinates: ``(N, 2)`` mm.
        values: ``(N,)`` each unit's preference; NaN units are left out.
        period: the values' period (180 for orientation in degrees), ``None`` for linear values.
        max_distance: the last bin edge, mm (default: half the sheet's shorter side).
        n_bins: equal-width bins from 0.
        n_anchors: units paired with every other unit (at most N).
        seed: which anchors.

    Raises:
        ValueError: shapes that disagree, or fewer than 2 units with values.
    """
    xy = np.asarray(coordinates, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or v.shape != (xy.shape[0],):
        raise ValueError(f"coordinates must be (N, 2) and values (N,), got {xy.shape} and {v.shape}")
    keep = np.isfinite(v)
    xy, v = xy[keep], v[keep]
    if len(v) < 2:
        raise ValueError("a distance curve needs at least 2 units with finite values")
    if max_distance is None:
        max_distance = float(np.ptp(xy, axis=0).min()) / 2
    edges = np.linspace(0.0, max_distance, n_bins + 1)
    anchors = np.random.default_rng(seed).choice(len(v), size=min(n_anchors, len(v)), replace=False)
    sums = np.zeros(n_bins)
    counts = np.zeros(n_bins, dtype=np.int64)
    for anchor in anchors:
        distance = np.hypot(*(xy - xy[anchor]).T)
        difference = np.abs(v - v[anchor])
        if period is not None:
            difference = np.minimum(difference % period, period - difference % period)
        which = np.searchsorted(edges, distance, side="right") - 1
        ok = (which >= 0) & (which < n_bins) & (np.arange(len(v)) != anchor)
        sums += np.bincount(which[ok], weights=difference[ok], minlength=n_bins)
        counts += np.bincount(which[ok], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return DistanceCurve(edges, mean, counts)
