"""Preference difference vs distance, and smoothness."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses import distance_curve, near_pair_difference, smoothness


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


def _all_pairs_reference(xy: np.ndarray, values: np.ndarray, radius: float) -> np.ndarray:
    """Every pair closer than ``radius``, by brute force: their circular differences (period 180)."""
    distance = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    i, j = np.nonzero(np.triu(distance <= radius, k=1))
    d = np.abs(values[i] - values[j]) % 180
    return np.minimum(d, 180 - d)


def test_near_pairs_equal_a_brute_force_mean_with_its_interval() -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 10, size=(400, 2))
    values = rng.uniform(0, 180, size=400)
    values[::7] = np.nan  # unselective units are left out
    keep = np.isfinite(values)
    expected = _all_pairs_reference(xy[keep], values[keep], 1.0)
    near = near_pair_difference(xy, values, radius=1.0, n_shuffles=20)
    assert near.pairs == len(expected)
    assert near.mean == pytest.approx(expected.mean())
    half = 1.96 * expected.std(ddof=1) / np.sqrt(len(expected))
    assert (near.ci_low, near.ci_high) == pytest.approx((expected.mean() - half, expected.mean() + half))


def test_near_pairs_of_an_unordered_map_match_chance_and_a_smooth_map_beats_it() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20, size=(3000, 2))
    unordered = near_pair_difference(xy, rng.uniform(0, 180, size=3000), n_shuffles=50)
    # uniform preferences differ by 45 deg on average (the circular difference is uniform on 0-90)
    assert unordered.mean == pytest.approx(45, abs=2)
    assert unordered.shuffled_mean == pytest.approx(45, abs=1)
    assert abs(unordered.z) < 4
    smooth = near_pair_difference(xy, (xy[:, 0] * 9) % 180, n_shuffles=50)  # 9 deg per mm along x
    assert smooth.mean < 9  # pairs under 1 mm are under 9 deg apart
    assert smooth.shuffled_mean == pytest.approx(45, abs=2)
    assert smooth.z < -20


def test_near_pairs_errors() -> None:
    xy = np.array([[0.0, 0.0], [5.0, 5.0]])
    with pytest.raises(ValueError, match="closer than 1"):
        near_pair_difference(xy, np.array([10.0, 20.0]))
    with pytest.raises(ValueError, match="radius"):
        near_pair_difference(xy, np.array([10.0, 20.0]), radius=0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        near_pair_difference(xy, np.array([10.0]))
