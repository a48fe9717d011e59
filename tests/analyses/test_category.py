"""Category selectivity (Welch t) and patches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from spacetorch.analyses import category_patches, category_selectivity


def test_welch_t_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [12, 20, 15])
    responses = rng.normal(size=(len(labels), 30)) * (1 + labels[:, None]) + labels[:, None] * rng.uniform(0, 1, 30)
    responses[:, 5] = 1.0  # a unit without variance: t = 0, not NaN
    categories, t = category_selectivity(responses, labels)
    assert categories.tolist() == [0, 1, 2]
    keep = np.arange(30) != 5
    for k in range(3):
        a, b = responses[labels == k][:, keep], responses[labels != k][:, keep]
        np.testing.assert_allclose(t[k, keep], stats.ttest_ind(a, b, equal_var=False).statistic, rtol=1e-10)
    assert (t[:, 5] == 0).all()


def test_planted_patches_are_found_with_their_areas() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 70, (25_000, 2))
    t = rng.normal(0, 0.5, len(xy))
    blobs = [((20.0, 20.0), 9.0), ((50.0, 45.0), 7.0), ((55.0, 12.0), 1.5)]  # the last is too small
    for (cx, cy), radius in blobs:
        t[np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) < radius] += 6.0
    result = category_patches(xy, t)
    assert len(result) == 2
    for patch, ((cx, cy), radius) in zip(sorted(result.patches, key=lambda p: p.x), blobs[:2], strict=False):
        assert patch.x == pytest.approx(cx, abs=1.0) and patch.y == pytest.approx(cy, abs=1.0)
        assert patch.area == pytest.approx(np.pi * radius**2, rel=0.25)  # smoothing blurs the edge
        assert patch.n_units > 10
    assert set(np.unique(result.labels)) == {0, 1, 2}


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"category 0 has 3 images and the rest 1; each needs >= 2"):
        category_selectivity(np.zeros((4, 2)), [0, 0, 0, 1])
    with pytest.raises(ValueError, match=r"coordinates must be \(N, 2\) and t \(N,\)"):
        category_patches(np.zeros((3, 2)), np.zeros(2))


def test_dprime_and_overlap_against_hand_made_values() -> None:
    from spacetorch.analyses.category import CategoryPatches, category_overlap, category_selectivity

    responses = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    _, d = category_selectivity(responses, [0, 0, 1, 1], measure="dprime")
    # unit 0: means 2 vs 1, variances 2 and 2 -> d' = 1 / sqrt(2); unit 1: no variance -> 0
    np.testing.assert_allclose(d[0], [1 / np.sqrt(2), 0.0])
    grid = np.zeros((4, 4), dtype=np.int64)
    a, b, c = grid.copy(), grid.copy(), grid.copy()
    a[:2, :2] = 1  # 4 pixels
    b[1:3, 1:3] = 1  # 4 pixels, 1 shared with a
    maps = [CategoryPatches([], np.arange(4.0), np.arange(4.0), np.zeros((4, 4)), m) for m in (a, b, c)]
    overlap = category_overlap(maps)
    assert overlap[0, 1] == overlap[1, 0] == pytest.approx(1 / 7)
    assert overlap[0, 0] == 1.0 and np.isnan(overlap[2, 2]) and overlap[0, 2] == 0.0
    with pytest.raises(ValueError, match="'t' or 'dprime'"):
        category_selectivity(responses, [0, 0, 1, 1], measure="z")


def test_planted_patch_areas_match_the_smoothed_planted_map_within_10_percent() -> None:
    """The reference: the noise-free planted map on a fine grid, smoothed with the same Gaussian
    (sigma 2.4 mm) and thresholded at t > 2, computed independently of category_patches."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 70, (40_000, 2))
    blobs = [((20.0, 20.0), 9.0), ((50.0, 45.0), 7.0), ((22.0, 55.0), 6.0)]
    t = rng.normal(0, 0.5, len(xy))
    step = 0.1
    axis = np.arange(0, 70, step) + step / 2
    gx, gy = np.meshgrid(axis, axis)
    ideal = np.zeros_like(gx)
    for (cx, cy), radius in blobs:
        t[np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) < radius] += 6.0
        ideal[np.hypot(gx - cx, gy - cy) < radius] += 6.0
    smoothed = ndimage.gaussian_filter(ideal, 2.4 / step, mode="constant")
    regions, count = ndimage.label(smoothed > 2.0)
    reference = sorted((float((regions == i).sum()) * step * step, float(gx[regions == i].mean())) for i in range(1, count + 1))
    found = category_patches(xy, t)
    assert len(found) == len(blobs) == count
    for patch, (area, _) in zip(sorted(found.patches, key=lambda p: p.area), reference, strict=True):
        assert patch.area == pytest.approx(area, rel=0.10), (patch.area, area)
