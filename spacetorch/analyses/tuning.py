"""Tuning of units to stimulus parameters: orientation, spatial frequency, colour.

Responses are ``(S, N)``: S stimuli by N units (as returned by
:meth:`spacetorch.models.topographic.TopographicModel.responses`).  A unit's tuning curve for
a parameter is its mean response over all stimuli sharing each value of that parameter.

Orientation (Margalit et al. 2024): with the tuning curve ``r(theta)`` (rectified at 0),
circular variance ``CV = 1 - |sum r e^{2 i theta}| / sum r`` (0: responds to one orientation,
1: to all alike); the preferred orientation is the angle of ``sum r e^{2 i theta}``, halved,
in ``[0, 180)`` degrees; a unit is orientation-selective if ``CV < 0.6``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SELECTIVE_CV", "OrientationTuning", "orientation_tuning", "preferred_value", "tuning_curves"]

#: units with a circular variance below this are orientation-selective
SELECTIVE_CV = 0.6

Array = np.ndarray | torch.Tensor


def _responses(responses: Array, n_stimuli: int) -> np.ndarray:
    r = responses.detach().cpu().numpy() if isinstance(responses, torch.Tensor) else np.asarray(responses)
    if r.ndim != 2:
        raise ValueError(f"responses must have shape (S stimuli, N units), got {r.shape}")
    if r.shape[0] != n_stimuli:
        raise ValueError(f"responses hold {r.shape[0]} stimuli but {n_stimuli} stimulus labels were given")
    return r.astype(np.float64, copy=False)


def tuning_curves(responses: Array, values: Array) -> tuple[np.ndarray, np.ndarray]:
    """Mean response per distinct stimulus value.

    Args:
        responses: ``(S, N)``.
        values: ``(S,)`` the parameter's value for each stimulus.

    Returns:
        ``levels (L,)`` sorted distinct values and ``curves (L, N)``.
    """
    values = np.asarray(values)
    r = _responses(responses, len(values))
    levels, which = np.unique(values, return_inverse=True)
    sums = np.zeros((len(levels), r.shape[1]))
    np.add.at(sums, which, r)
    return levels, sums / np.bincount(which, minlength=len(levels))[:, None]


def preferred_value(responses: Array, values: Array) -> np.ndarray:
    """Each unit's preferred value of a parameter (the argmax of its tuning curve): ``(N,)``."""
    levels, curves = tuning_curves(responses, values)
    preferred: np.ndarray = levels[np.argmax(curves, axis=0)]
    return preferred


@dataclass
class OrientationTuning:
    """Orientation tuning of N units.

    Attributes:
        orientations: ``(L,)`` the stimulus orientations, degrees.
        curves: ``(L, N)`` mean response per orientation.
        preferred: ``(N,)`` preferred orientation in ``[0, 180)`` degrees; NaN for units that
            never respond.
        circular_variance: ``(N,)`` in ``[0, 1]``; 1 for units that never respond.
    """

    orientations: np.ndarray
    curves: np.ndarray
    preferred: np.ndarray
    circular_variance: np.ndarray

    def selective(self, threshold: float = SELECTIVE_CV) -> np.ndarray:
        """``(N,)`` bool: circular variance below ``threshold``."""
        return self.circular_variance < threshold

    def selective_preferred(self, threshold: float = SELECTIVE_CV) -> np.ndarray:
        """``(N,)`` preferred orientation of the selective units, NaN for the others."""
        return np.where(self.selective(threshold), self.preferred, np.nan)


def orientation_tuning(responses: Array, orientations: Array) -> OrientationTuning:
    """Tuning curves, circular variance and preferred orientation of every unit.

    Args:
        responses: ``(S, N)`` responses to oriented stimuli (e.g. :class:`SineGratings`).
        orientations: ``(S,)`` each stimulus's orientation, degrees (period 180).

    >>> theta = np.array([0.0, 45.0, 90.0, 135.0])
    >>> tuning = orientation_tuning(np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]), theta)
    >>> float(tuning.preferred[0]), tuning.circular_variance.round(6).tolist()
    (0.0, [0.0, 1.0])
    """
    levels, curves = tuning_curves(responses, orientations)
    rectified = np.clip(curves, 0.0, None)
    phasors = np.exp(2j * np.deg2rad(levels))[:, None]
    vector = (rectified * phasors).sum(0)
    total = rectified.sum(0)
    responsive = total > 0
    cv = np.ones(curves.shape[1])
    cv[responsive] = 1.0 - np.abs(vector[responsive]) / total[responsive]
    preferred = np.full(curves.shape[1], np.nan)
    preferred[responsive] = np.rad2deg(np.angle(vector[responsive])) / 2 % 180.0
    return OrientationTuning(levels, curves, preferred, np.clip(cv, 0.0, 1.0))
