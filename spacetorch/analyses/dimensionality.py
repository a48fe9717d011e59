"""Dimensionality of a layer's responses to natural images (Margalit et al. 2024, Fig. 6).

The eigenspectrum is the variance along each principal component of the ``(S images, N units)``
responses: the eigenvalues of their covariance, largest first.  Two numbers summarise it:

* the effective dimensionality ``(sum lambda)^2 / sum lambda^2``: ``n`` for ``n`` equal
  eigenvalues, 1 when one component holds all the variance;
* the power-law exponent ``alpha`` of ``lambda_n ~ n^-alpha``, fitted by least squares on
  ``log lambda`` against ``log n`` over a stated range of ranks (Stringer et al., Nature 2019, fit
  such spectra of mouse V1; the TDANN paper reports the effective dimensionality).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["POWER_LAW_RANKS", "Spectrum", "effective_dimensionality", "eigenspectrum", "power_law_exponent", "spectrum"]

#: ranks (1 = the largest eigenvalue) over which the power law is fitted, both included
POWER_LAW_RANKS = (10, 100)


def eigenspectrum(responses: np.ndarray) -> np.ndarray:
    """Eigenvalues of the covariance of ``(S, N)`` responses, largest first (``min(S - 1, N)`` of them).

    Equal to PCA's explained variances: the squared singular values of the centred responses
    over ``S - 1``.

    Raises:
        ValueError: not a 2-D array of at least two stimuli, or not finite.
    """
    x = np.asarray(responses, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"responses must be (stimuli, units) with at least 2 stimuli and 1 unit, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("responses hold NaN or infinite values")
    centred = x - x.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    eigenvalues: np.ndarray = singular[: min(x.shape[0] - 1, x.shape[1])] ** 2 / (x.shape[0] - 1)
    return eigenvalues


def effective_dimensionality(eigenvalues: np.ndarray) -> float:
    """``(sum lambda)^2 / sum lambda^2`` of a spectrum (NaN when every eigenvalue is 0).

    >>> effective_dimensionality(np.ones(7))
    7.0
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or (lam < 0).any():
        raise ValueError("eigenvalues must be a 1-D array of numbers >= 0")
    squares = float(np.sum(lam**2))
    return float(np.sum(lam) ** 2 / squares) if squares > 0 else float("nan")


def power_law_exponent(eigenvalues: np.ndarray, ranks: tuple[int, int] = POWER_LAW_RANKS) -> float:
    """``alpha`` of ``lambda_n ~ n^-alpha`` over ranks ``ranks[0]`` to ``ranks[1]`` (1-based, both in).

    Ranks beyond the spectrum are left out; eigenvalues of 0 in the range are refused.

    Raises:
        ValueError: fewer than 3 ranks in the range, or a zero eigenvalue in it.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=np.float64))[::-1]
    first, last = ranks
    if not 1 <= first < last:
        raise ValueError(f"ranks must be 1 <= first < last, got {ranks}")
    n = np.arange(first, min(last, lam.size) + 1)
    if n.size < 3:
        raise ValueError(f"the power law needs at least 3 ranks in {ranks}; the spectrum has {lam.size} eigenvalues")
    values = lam[n - 1]
    if (values <= 0).any():
        raise ValueError(f"eigenvalues of 0 in ranks {ranks}: fit a shorter range")
    slope = np.polyfit(np.log(n), np.log(values), 1)[0]
    return float(-slope)


@dataclass(frozen=True)
class Spectrum:
    """A layer's eigenspectrum and its two summaries."""

    eigenvalues: np.ndarray
    effective_dimensionality: float
    alpha: float
    ranks: tuple[int, int]

    def summary(self) -> dict[str, float | int | list[int]]:
        return {"effective_dimensionality": self.effective_dimensionality, "alpha": self.alpha,
                "alpha_ranks": list(self.ranks), "components": int(self.eigenvalues.size)}  # fmt: skip


def spectrum(responses: np.ndarray, ranks: tuple[int, int] = POWER_LAW_RANKS) -> Spectrum:
    """The eigenspectrum of ``(S, N)`` responses with its effective dimensionality and power-law
    exponent (NaN when the range holds too few ranks)."""
    lam = eigenspectrum(responses)
    try:
        alpha = power_law_exponent(lam, ranks)
    except ValueError:
        alpha = float("nan")
    return Spectrum(lam, effective_dimensionality(lam), alpha, ranks)
