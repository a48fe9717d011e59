"""The swapopt reference written plainly: one pair at a time, both rows' loss computed from
scratch before and after each swap (NumPy).  The baseline of ``bench/bench_swapopt.py`` and the
parity tests; never used for real runs.

It takes the windows, subsets and candidate pairs of a :class:`~.swapopt.WindowPlan` so that
its decisions can be compared one by one with the fast path.  The original computes the full
``N x N`` correlation matrix once; at 100,352 units (layer2.0 of a ResNet-18 at 224 px) that is
40 GB, so this computes the same entries window by window with ``np.corrcoef``.

**Ties.** The original keeps a swap when the loss after it is lower in floating point, so at
an exact tie (two units whose rows make the same loss either way) its rounding decides, and a
different order of summation decides differently.  Here, as in spacetorch's engines, a swap
whose change of the cross term ``sum(x * y)`` (the only part of the loss a swap changes) is
within ``1e-9`` of the terms is no change: no swap.  ``ties``, if given, collects the
attempts that rule decided.
"""

from __future__ import annotations

import numpy as np

from spacetorch.models.positions.swapopt import WindowPlan


def reference_swaps(
    responses: np.ndarray, coordinates: np.ndarray, plan: WindowPlan, ties: list[int] | None = None,
) -> tuple[np.ndarray, list[bool]]:
    """Run ``plan`` the plain way; returns the new ``(N, 2)`` coordinates of the units and each
    attempt's decision (True: swap kept), in order."""
    position = np.array(coordinates, dtype=np.float64)  # of each unit
    unit_at = np.arange(len(position))  # the unit at each slot
    decisions: list[bool] = []
    for i in range(len(plan)):
        slots = plan.window(i)
        window = unit_at[slots].copy()  # the window's units, fixed while its attempts run
        where = list(range(len(window)))  # the slot (in the window) of each of them
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.nan_to_num(np.corrcoef(responses[:, window].T))
        for a, b in plan.pairs[i]:
            before, cross_before = _pair_loss(corr, position, window, [a, b])
            ua, ub = window[a], window[b]
            position[[ua, ub]] = position[[ub, ua]]
            after, cross_after = _pair_loss(corr, position, window, [a, b])
            keep = after < before
            if abs(cross_after - cross_before) <= _TIE * (abs(cross_after) + abs(cross_before)):
                if ties is not None and keep:
                    ties.append(len(decisions))
                keep = False
            if keep:
                unit_at[slots[where[a]]], unit_at[slots[where[b]]] = ub, ua
                where[a], where[b] = where[b], where[a]
            else:
                position[[ua, ub]] = position[[ub, ua]]
            decisions.append(bool(keep))
    return position, decisions


_TIE = 1e-9


def _pair_loss(corr: np.ndarray, position: np.ndarray, window: np.ndarray, rows: list[int]) -> tuple[float, float]:
    """``(1 - pearson(C[rows, W], 1 / (dist(pos[rows], pos[W]) + 1))) / 2`` (NaN if undefined)
    and the cross term ``sum(x * y)`` of that correlation."""
    d = np.linalg.norm(position[window[rows]][:, None, :] - position[window][None, :, :], axis=-1)
    x, y = corr[rows].ravel(), (1 / (d + 1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return float((1 - np.corrcoef(x, y)[0, 1]) / 2), float(x @ y)
