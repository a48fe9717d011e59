"""Wiring length between two layers (Margalit et al. 2024, Fig. 7 and its supplement).

For one stimulus, the units of a layer that respond above the ``active_percentile``-th
percentile of that layer's responses are its active units.  They are served by "fibres":
k-means clusters of their positions, with the smallest ``k`` whose inertia (the summed squared
distance of units to their centroids) is at most ``n_active * distance_threshold^2``, i.e. a
root-mean-square distance to the fibre of at most ``distance_threshold`` mm.  The target layer's
active units are clustered into as many fibres as the source needed, on a sheet placed beside
the source's (shifted by the source's extent, as if the two areas lay next to each other).

The wiring length of the stimulus is

* ``between``: the optimal one-to-one assignment (Hungarian algorithm) of source fibres to
  target fibres, summed over their centroid distances, plus
* ``within``: every active unit's distance to its fibre's centroid, in both layers.

``total = between + within``.  The original code (neuroailab/TDANN, ``wiring_length.py``)
returns ``between`` and keeps the target's ``within`` beside it; both parts are reported here.
A topographic model's active units sit in few, compact clusters, so it needs less wire than the
same model with its source positions shuffled (:func:`wiring_lengths` measures both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

__all__ = [
    "ACTIVE_PERCENTILE",
    "DISTANCE_THRESHOLD",
    "MAX_FIBRES",
    "Fibres",
    "NoActiveUnitError",
    "WiringLength",
    "active_units",
    "fibres",
    "wiring_length",
    "wiring_lengths",
]

#: a unit is active for a stimulus above this percentile of its layer's responses (the original's default)
ACTIVE_PERCENTILE = 99.0
#: fibres' root-mean-square radius bound, mm (the original's default; its figure uses 10 mm)
DISTANCE_THRESHOLD = 1.0
#: the most fibres tried per stimulus (the original's bound)
MAX_FIBRES = 99


class NoActiveUnitError(ValueError):
    """No unit of a layer responds above the percentile (its responses to the stimulus are equal)."""


@dataclass(frozen=True)
class Fibres:
    """The active units of one layer for one stimulus, grouped into fibres."""

    positions: np.ndarray  # (n_active, 2) mm
    labels: np.ndarray  # (n_active,) fibre of each active unit
    centroids: np.ndarray  # (k, 2) mm
    within: float  # summed distance of the active units to their fibre's centroid, mm

    @property
    def count(self) -> int:
        return int(len(self.centroids))


@dataclass(frozen=True)
class WiringLength:
    """The wire one stimulus needs between two layers, mm."""

    between: float
    within: float
    fibres: int
    source: Fibres
    target: Fibres
    pairs: tuple[np.ndarray, np.ndarray]  # source fibre i[k] is wired to target fibre j[k]

    @property
    def total(self) -> float:
        return self.between + self.within


def _check(percentile: float, threshold: float) -> None:
    if not 0 < percentile < 100:
        raise ValueError(f"active_percentile must be in (0, 100), got {percentile}")
    if not threshold > 0:
        raise ValueError(f"distance_threshold must be > 0 mm, got {threshold}")


def active_units(responses: np.ndarray, active_percentile: float = ACTIVE_PERCENTILE) -> np.ndarray:
    """``(N,)`` bool: the units responding above the ``active_percentile``-th percentile."""
    _check(active_percentile, DISTANCE_THRESHOLD)
    r = np.asarray(responses, dtype=np.float64).ravel()
    mask: np.ndarray = r > np.percentile(r, active_percentile)
    return mask


def _kmeans(points: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    from sklearn.cluster import KMeans

    fitted = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points)
    return fitted.cluster_centers_, fitted.labels_, float(fitted.inertia_)


def fibres(
    positions: np.ndarray, k: int | None = None, *, distance_threshold: float = DISTANCE_THRESHOLD,
    max_fibres: int = MAX_FIBRES, seed: int = 0,
) -> Fibres:
    """Group active units at ``positions`` into ``k`` fibres, or into the fewest whose inertia is
    at most ``len(positions) * distance_threshold^2`` (at most ``max_fibres``)."""
    _check(ACTIVE_PERCENTILE, distance_threshold)
    points = np.asarray(positions, dtype=np.float64)
    if len(points) == 0:
        raise NoActiveUnitError("no active unit to group into fibres (every response equal?)")
    if k is None:
        bound = len(points) * distance_threshold**2
        for k in range(1, min(max_fibres, len(points)) + 1):
            centroids, labels, inertia = _kmeans(points, k, seed)
            if inertia <= bound:
                break
    else:
        centroids, labels, _ = _kmeans(points, min(k, len(points)), seed)
    within = float(np.linalg.norm(points - centroids[labels], axis=1).sum())
    return Fibres(points, labels, centroids, within)


def wiring_length(
    source_positions: np.ndarray,
    source_responses: np.ndarray,
    target_positions: np.ndarray,
    target_responses: np.ndarray,
    *,
    active_percentile: float = ACTIVE_PERCENTILE,
    distance_threshold: float = DISTANCE_THRESHOLD,
    seed: int = 0,
) -> WiringLength:
    """The wiring length of one stimulus from a source to a target layer.

    Args:
        source_positions, target_positions: ``(N, 2)`` / ``(M, 2)`` unit positions, mm.
        source_responses, target_responses: ``(N,)`` / ``(M,)`` responses to the stimulus.
        active_percentile: units above this percentile of their layer are active.
        distance_threshold: fibres' root-mean-square radius bound, mm.
        seed: k-means initialisation.
    """
    _check(active_percentile, distance_threshold)
    for name, pos, resp in (("source", source_positions, source_responses), ("target", target_positions, target_responses)):
        if np.ndim(pos) != 2 or np.shape(pos)[1] != 2 or np.size(resp) != len(pos):
            raise ValueError(f"{name}: positions must be (N, 2) with one response per unit, got {np.shape(pos)} and {np.size(resp)}")
    source_positions = np.asarray(source_positions, dtype=np.float64)
    source = fibres(source_positions[active_units(source_responses, active_percentile)],
                    distance_threshold=distance_threshold, seed=seed)  # fmt: skip
    beside = np.asarray(target_positions, dtype=np.float64) + [0.0, np.ptp(source_positions[:, 0])]
    target = fibres(beside[active_units(target_responses, active_percentile)], source.count, seed=seed)
    distances = cdist(source.centroids, target.centroids)
    rows, cols = linear_sum_assignment(distances)
    return WiringLength(float(distances[rows, cols].sum()), source.within + target.within, source.count, source, target,
                        (rows, cols))  # fmt: skip


def wiring_lengths(
    source_positions: np.ndarray,
    source_responses: np.ndarray,
    target_positions: np.ndarray,
    target_responses: np.ndarray,
    *,
    active_percentile: float = ACTIVE_PERCENTILE,
    distance_threshold: float = DISTANCE_THRESHOLD,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per stimulus (rows of ``(S, N)`` / ``(S, M)`` responses): the wiring length with the
    model's positions and with its source positions shuffled (one permutation, from ``seed``),
    as rows ``{"stimulus", "positions": "model" | "shuffled", "between", "within", "total", "fibres"}``.
    A stimulus to which no unit of a layer responds above the others (all equal) gets NaN."""
    source_r, target_r = np.atleast_2d(source_responses), np.atleast_2d(target_responses)
    if len(source_r) != len(target_r):
        raise ValueError(f"source and target responses are to {len(source_r)} and {len(target_r)} stimuli; they must be the same")
    shuffled = np.asarray(source_positions)[np.random.default_rng(seed).permutation(len(source_positions))]
    rows: list[dict[str, Any]] = []
    for s in range(len(source_r)):
        for name, positions in (("model", source_positions), ("shuffled", shuffled)):
            row: dict[str, Any] = {"stimulus": s, "positions": name}
            try:
                result = wiring_length(positions, source_r[s], target_positions, target_r[s], active_percentile=active_percentile,
                                       distance_threshold=distance_threshold, seed=seed)  # fmt: skip
            except NoActiveUnitError:
                row.update(between=float("nan"), within=float("nan"), total=float("nan"), fibres=0)
            else:
                row.update(between=result.between, within=result.within, total=result.total, fibres=result.fibres)
            rows.append(row)
    return rows
