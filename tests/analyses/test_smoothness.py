"""Preference difference vs distance, and smoothness."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses import distance_curve, smoothness


def _smooth_map(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 20, (n, 2))
    # a sum of plane waves in e^{2 i theta}: a smooth orientation map with about 5 mm columns
    z = sum(np.exp(1j * (2 * np.pi / 5 * (xy @ [np.cos(a), np.sin(a)]) + p))
            for a, p in zip(rng.uniform(0, np.pi, 6), rng.uniform(0, 2 * np.pi, 6), strict=False))
    return xy, np.rad2deg(np.angle(z)) / 2 % 180


def test_smooth_map_is_smoother_than_shuffled() -> None:
    xy, theta = _smooth_map()
    smooth = distance_curve(xy, theta, max_distance=8.0)
    shuffled = distance_curve(xy, np.random.default_rng(1).permutation(theta), max_distance=8.0)
    assert smooth.smoothness > 0.5
    assert shuffled.smoothness < 0.15
    # unrelated orientations differ by 45 deg on average
    assert abs(np.nanmean(shuffled.mean_difference) - 45) < 2


def test_curve_matches_all_pairs_when_every_unit_is_an_anchor() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 5, (60, 2))
    values = rng.uniform(0, 180, 60)
    curve = distance_curve(xy, values, max_distance=4.0, n_bins=4, n_anchors=60)
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    diff = np.abs(values[:, None] - values[None])
    diff = np.minimum(diff, 180 - diff)
    off = ~np.eye(60, dtype=bool)
    for k in range(4):
        in_bin = off & (d >= k) & (d < k + 1)
        assert curve.pairs[k] == in_bin.sum()
        np.testing.assert_allclose(curve.mean_difference[k], diff[in_bin].mean())


def test_smoothness_formula_and_errors() -> None:
    assert smoothness(np.array([5.0, 20.0, 25.0])) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="positive maximum"):
        smoothness(np.zeros(3))
    with pytest.raises(ValueError, match=r"coordinates must be \(N, 2\) and values \(N,\)"):
        distance_curve(np.zeros((3, 2)), np.zeros(4))
