"""How similar the preferences of nearby units are: difference vs cortical distance.

For pairs of units, the absolute difference of their preferences (circular for orientation,
period 180 deg) is averaged in bins of cortical distance.  In a smooth map the curve starts
low and rises to the level of unrelated units;
``smoothness = (max(curve) - curve[0]) / max(curve)`` (Margalit et al. 2024) is near 0 for a
map without order and approaches 1 for a smooth one.

Pairs are drawn as every unit against a random sample of anchor units, so the cost is
``O(n_anchors * N)`` and memory stays bounded for layers of 10^5 units.

Smoothness reads one bin of that curve against its maximum, so it swings between seeds and
checkpoints.  :func:`near_pair_difference` is the steadier statistic shown beside it: the mean
preference difference of *every* pair of units closer than a radius (1 mm by default), with a
95% confidence interval over those pairs, against the same pairs with the preferences shuffled
across units many times (a z-score over the shuffles).  A map has a mean well below the
shuffled one (z far below 0); a map without order has them equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DistanceCurve", "NearPairs", "distance_curve", "near_pair_difference", "smoothness"]


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


@dataclass
class NearPairs:
    """Preference difference of the pairs of units closer than ``radius``, against chance.

    Attributes:
        radius: mm.
        pairs: how many pairs were averaged.
        mean: their mean absolute preference difference.
        ci_low, ci_high: 95% confidence interval of ``mean`` over the pairs (normal approximation).
        shuffled_mean, shuffled_sd: mean and spread of the same statistic over the shuffles.
        z: ``(mean - shuffled_mean) / shuffled_sd``; far below 0 for a map.
    """

    radius: float
    pairs: int
    mean: float
    ci_low: float
    ci_high: float
    shuffled_mean: float
    shuffled_sd: float

    @property
    def z(self) -> float:
        if not self.shuffled_sd > 0:
            return float("nan")
        return (self.mean - self.shuffled_mean) / self.shuffled_sd

    def summary(self) -> str:
        return (f"pairs < {self.radius:g} mm differ by {self.mean:.1f} deg [{self.ci_low:.1f}, {self.ci_high:.1f}] "
                f"vs {self.shuffled_mean:.1f} shuffled (z {self.z:.1f}, {self.pairs:,} pairs)")


def near_pair_difference(
    coordinates: np.ndarray,
    values: np.ndarray,
    *,
    radius: float = 1.0,
    period: float | None = 180.0,
    n_shuffles: int = 100,
    max_pairs: int = 200_000,
    seed: int = 0,
) -> NearPairs:
    """Mean ``|difference|`` of ``values`` over every pair of units closer than ``radius`` mm,
    with its 95% interval over the pairs, against ``n_shuffles`` shuffles of the values.

    Args:
        coordinates: ``(N, 2)`` mm.
        values: ``(N,)`` each unit's preference; NaN units are left out.
        period: the values' period (180 for orientation in degrees), ``None`` for linear values.
        max_pairs: above this many pairs, a uniform sample of them (seeded) is averaged.
        seed: the sample of pairs and the shuffles.

    Raises:
        ValueError: shapes that disagree, a radius that is not > 0, or no pair closer than it.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(coordinates, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or v.shape != (xy.shape[0],):
        raise ValueError(f"coordinates must be (N, 2) and values (N,), got {xy.shape} and {v.shape}")
    if not radius > 0:
        raise ValueError(f"radius must be > 0 mm, got {radius}")
    keep = np.isfinite(v)
    xy, v = xy[keep], v[keep]
    pairs = cKDTree(xy).query_pairs(radius, output_type="ndarray") if len(v) > 1 else np.zeros((0, 2), np.int64)
    if len(pairs) == 0:
        raise ValueError(f"no two of the {len(v)} units with values are closer than {radius} mm")
    rng = np.random.default_rng(seed)
    if len(pairs) > max_pairs:
        pairs = pairs[rng.choice(len(pairs), size=max_pairs, replace=False)]
    first, second = pairs.T

    def differences(w: np.ndarray) -> np.ndarray:
        d: np.ndarray = np.abs(w[first] - w[second])
        if period is not None:
            d = np.minimum(d % period, period - d % period)
        return d

    observed = differences(v)
    mean = float(observed.mean())
    half = 1.96 * float(observed.std(ddof=1)) / np.sqrt(len(observed)) if len(observed) > 1 else float("nan")
    shuffled = np.array([differences(rng.permutation(v)).mean() for _ in range(n_shuffles)])
    return NearPairs(float(radius), len(observed), mean, mean - half, mean + half, float(shuffled.mean()),
                     float(shuffled.std(ddof=1)) if n_shuffles > 1 else float("nan"))
