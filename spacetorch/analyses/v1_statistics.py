"""V1 tuning statistics (Margalit et al. 2024, Fig. 2): per-unit orientation tuning fits and the
distributions of orientation bandwidth, circular variance and preferred spatial frequency, with
a comparison data set (the original compares with macaque V1, Ringach et al. 2002).

Orientation tuning curve model (a von Mises function of period 180 degrees)::

    r(theta) = b + a * exp(kappa * (cos(2 (theta - mu)) - 1)),   a >= 0, kappa >= 0

fitted to every unit's curve by least squares over a grid of ``mu`` (1 degree steps) and
``kappa`` (log-spaced), with ``a`` and ``b`` solved exactly for each grid point; the grid point
of least squared error wins.  The orientation bandwidth is the half-width of the fitted curve at
``1/sqrt(2)`` of its height above the baseline (Ringach et al. 2002's definition):
``0.5 * arccos(1 + ln(1/sqrt(2)) / kappa)`` in degrees, and 90 for a curve too flat to fall that far.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spacetorch.analyses.tuning import SELECTIVE_CV, orientation_tuning, tuning_curves

__all__ = [
    "BANDWIDTH_HEIGHT",
    "COMPARISON_COLUMNS",
    "V1Statistics",
    "VonMisesFit",
    "bandwidth",
    "fit_von_mises",
    "load_comparison",
    "v1_statistics",
]

#: the bandwidth is the half-width at this fraction of the tuning curve's height
BANDWIDTH_HEIGHT = 1 / np.sqrt(2)
_KAPPAS = np.geomspace(0.05, 100.0, 96)
_MUS = np.arange(0.0, 180.0, 1.0)
#: the statistics a comparison table may hold (a CSV column each; any subset)
COMPARISON_COLUMNS = ("circular_variance", "bandwidth", "preferred_sf")


def bandwidth(kappa: np.ndarray | float, height: float = BANDWIDTH_HEIGHT) -> np.ndarray:
    """Half-width in degrees at ``height`` of the curve's peak above baseline, for concentration ``kappa``.

    >>> float(np.round(bandwidth(np.log(2), height=0.5), 6))  # exp(kappa (cos 2d - 1)) = 1/2 at 2d = 90 deg
    45.0
    """
    k = np.asarray(kappa, dtype=np.float64)
    with np.errstate(divide="ignore"):
        cosine = 1.0 + np.log(height) / k
    width: np.ndarray = np.where(cosine <= -1.0, 90.0, np.rad2deg(0.5 * np.arccos(np.clip(cosine, -1.0, 1.0))))
    return width


@dataclass(frozen=True)
class VonMisesFit:
    """Fitted parameters of N units' orientation tuning curves (degrees for angles)."""

    preferred: np.ndarray
    kappa: np.ndarray
    amplitude: np.ndarray
    baseline: np.ndarray
    r2: np.ndarray

    @property
    def bandwidth(self) -> np.ndarray:
        return bandwidth(self.kappa)


def fit_von_mises(curves: np.ndarray, orientations: np.ndarray, *, chunk: int = 2048) -> VonMisesFit:
    """Fit the von Mises model to ``(L, N)`` tuning curves at ``(L,)`` orientations (degrees).

    A unit whose curve is flat gets ``kappa`` 0, amplitude 0 and ``r2`` 0.

    Raises:
        ValueError: fewer than 4 orientations, or shapes that disagree.
    """
    r = np.asarray(curves, dtype=np.float64)
    theta = np.deg2rad(np.asarray(orientations, dtype=np.float64))
    if r.ndim != 2 or r.shape[0] != theta.size:
        raise ValueError(f"curves must be (orientations, units) = ({theta.size}, N), got {r.shape}")
    if theta.size < 4:
        raise ValueError(f"a von Mises fit needs at least 4 orientations, got {theta.size}")
    mu, kappa = np.meshgrid(np.deg2rad(_MUS), _KAPPAS, indexing="ij")
    g = np.exp(kappa.reshape(-1, 1) * (np.cos(2 * (theta[None, :] - mu.reshape(-1, 1))) - 1.0))  # (M, L)
    g_mean = g.mean(1, keepdims=True)
    g_c = g - g_mean
    g_norm = np.linalg.norm(g_c, axis=1, keepdims=True)
    g_unit = (g_c / np.where(g_norm > 0, g_norm, 1.0)).astype(np.float32)
    n = r.shape[1]
    best = np.zeros(n, dtype=np.int64)
    corr = np.zeros(n)
    for start in range(0, n, chunk):
        block = r[:, start : start + chunk]
        centred = block - block.mean(0)
        norm = np.linalg.norm(centred, axis=0)
        c = g_unit @ (centred / np.where(norm > 0, norm, 1.0)).astype(np.float32)  # (M, chunk) correlations
        best[start : start + chunk] = c.argmax(0)
        corr[start : start + chunk] = np.where(norm > 0, c.max(0), 0.0)
    r_c_norm = np.linalg.norm(r - r.mean(0), axis=0)
    amplitude = np.clip(corr, 0.0, None) * r_c_norm / g_norm[best, 0]
    baseline = r.mean(0) - amplitude * g_mean[best, 0]
    flat = amplitude <= 0
    return VonMisesFit(
        preferred=np.where(flat, np.nan, np.rad2deg(mu.reshape(-1)[best]) % 180.0),
        kappa=np.where(flat, 0.0, kappa.reshape(-1)[best]),
        amplitude=amplitude,
        baseline=np.where(flat, r.mean(0), baseline),
        r2=np.clip(corr, 0.0, None) ** 2,
    )


@dataclass(frozen=True)
class V1Statistics:
    """Per-unit tuning statistics of a layer."""

    fit: VonMisesFit
    circular_variance: np.ndarray
    preferred_sf: np.ndarray
    selective: np.ndarray  # circular variance below SELECTIVE_CV
    responsive: np.ndarray  # responds to some grating

    @property
    def bandwidth(self) -> np.ndarray:
        return self.fit.bandwidth

    def distributions(self) -> dict[str, np.ndarray]:
        """The values whose distributions the figure draws: every responsive unit's circular
        variance, the selective units' bandwidths, every responsive unit's preferred SF."""
        return {
            "circular_variance": self.circular_variance[self.responsive],
            "bandwidth": self.bandwidth[self.selective],
            "preferred_sf": self.preferred_sf[self.responsive],
        }

    def summary(self) -> dict[str, float | int]:
        d = self.distributions()
        return {
            "units": int(self.responsive.size), "responsive": int(self.responsive.sum()), "selective": int(self.selective.sum()),
            "median_circular_variance": float(np.median(d["circular_variance"])) if d["circular_variance"].size else float("nan"),
            "median_bandwidth_deg": float(np.median(d["bandwidth"])) if d["bandwidth"].size else float("nan"),
            "median_preferred_sf": float(np.median(d["preferred_sf"])) if d["preferred_sf"].size else float("nan"),
        }  # fmt: skip


def v1_statistics(responses: np.ndarray, orientation: np.ndarray, spatial_frequency: np.ndarray) -> V1Statistics:
    """Tuning statistics of ``(S, N)`` responses to gratings with these ``(S,)`` parameters.

    The orientation curve averages over every other parameter (phase, SF, colour), as the
    circular variance does; the preferred SF is the argmax of the SF curve (averaged over the rest).
    """
    tuning = orientation_tuning(responses, orientation)
    sf_levels, sf_curves = tuning_curves(responses, spatial_frequency)
    responsive = np.clip(tuning.curves, 0.0, None).sum(0) > 0
    return V1Statistics(
        fit=fit_von_mises(tuning.curves, tuning.orientations),
        circular_variance=tuning.circular_variance,
        preferred_sf=sf_levels[np.argmax(sf_curves, axis=0)].astype(np.float64),
        selective=tuning.selective(SELECTIVE_CV) & responsive,
        responsive=responsive,
    )


def load_comparison(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """A comparison data set: a CSV with a header naming any of :data:`COMPARISON_COLUMNS`, one
    measured neuron per row (empty cells are skipped), e.g. macaque V1 from Ringach et al. 2002.

    Raises:
        ValueError: no such column, or a value that is not a number (naming the file, row and column).
    """
    path = Path(path)
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        columns = [c for c in (reader.fieldnames or []) if c in COMPARISON_COLUMNS]
        if not columns:
            raise ValueError(f"{path}: no column of {list(COMPARISON_COLUMNS)} in its header {reader.fieldnames}")
        values: dict[str, list[float]] = {c: [] for c in columns}
        for row_number, row in enumerate(reader, start=2):
            for column in columns:
                cell = (row.get(column) or "").strip()
                if not cell:
                    continue
                try:
                    values[column].append(float(cell))
                except ValueError:
                    raise ValueError(f"{path}: row {row_number}, column {column}: {cell!r} is not a number") from None
    return {column: np.asarray(v) for column, v in values.items()}
