"""Neighborhood index and sampling (neighborhoods.py): exact window counts, uniform subsets,
the trimming rule, independence from the thread count."""

import math

import numpy as np
import pytest

from spacetorch.models.positions import build_neighborhoods, neighborhoods
from spacetorch.models.positions.neighborhoods import BandIndex, _sample_ranks, neighborhood_size


def _window_counts_brute_force(xy, low, high):
    inside = (xy[None, :, :] >= low[:, None, :]) & (xy[None, :, :] <= high[:, None, :])
    return inside.all(2).sum(1)


@pytest.mark.parametrize("n_units, width", [(3000, 0.5), (3000, 4.0), (500, 9.0)])
def test_window_counts_are_exact(n_units, width):
    rng = np.random.default_rng(n_units)
    xy = rng.normal(5.0, 2.0, (n_units, 2))
    xy[:50] = np.round(xy[:50], 1)  # ties and units on window borders
    low = rng.uniform(xy.min(0), xy.max(0) - width, (400, 2))
    low[:20] = xy[:20] - np.array([0.0, width])  # windows whose border passes through a unit
    counts = BandIndex(xy[:, 0].copy(), xy[:, 1].copy(), width).find(low, low + width).counts
    np.testing.assert_array_equal(counts, _window_counts_brute_force(xy, low, low + width))


def test_neighborhoods_are_valid_distinct_and_inside_one_window():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 10, (4000, 2))
    width = 1.5
    hoods = build_neighborhoods(xy, width, 500, np.random.default_rng(0))
    assert hoods.dtype == np.int32 and hoods.ndim == 2
    p, q = hoods.shape
    assert 0 < p <= 500 and 25 <= q <= 500
    assert ((hoods >= 0) & (hoods < len(xy))).all()
    assert all(len(set(row)) == q for row in hoods.tolist())
    extent = xy[hoods].max(1) - xy[hoods].min(1)  # (P, 2) bounding boxes
    assert (extent <= width + 1e-9).all()


def test_trimming_rule_uses_the_5th_percentile():
    assert neighborhood_size(np.arange(100, 201)) == 105
    assert neighborhood_size(np.array([3, 4, 5, 100])) == 25
    assert neighborhood_size(np.array([900, 1000])) == 500


def test_windows_below_q_are_dropped():
    """Units only in the left half: windows there are full, windows on the right are empty."""
    rng = np.random.default_rng(0)
    xy = np.concatenate([rng.uniform([0, 0], [5, 10], (5000, 2)), [[10.0, 0.0], [10.0, 10.0]]])
    hoods = build_neighborhoods(xy, 1.0, 1000, np.random.default_rng(0))
    assert hoods.shape[0] < 600  # roughly half the windows lie where there are no units
    assert (xy[hoods][..., 0] <= 5.0).all()


def _chi_square_p(counts):
    from scipy.stats import chisquare

    return chisquare(counts).pvalue


@pytest.mark.parametrize("n, q", [(6, 3), (9, 2), (12, 2), (4, 4)])
def test_subsets_are_uniform(n, q):
    rows = 40_000
    ranks = np.sort(_sample_ranks(np.full(rows, n), q, key=1), axis=1)
    assert (ranks[:, 1:] > ranks[:, :-1]).all() and ranks.min() >= 0 and ranks.max() < n
    codes = (ranks * n ** np.arange(q)).sum(1)
    _, counts = np.unique(codes, return_counts=True)
    assert len(counts) == math.comb(n, q)
    if len(counts) > 1:
        assert _chi_square_p(counts) > 1e-4


def test_mixed_row_sizes_get_exactly_q_distinct_each():
    n = np.array([5, 6, 40, 1000, 20, 5000])
    ranks = _sample_ranks(n, 5, key=0)
    assert ranks.shape == (6, 5)
    assert (ranks.max(1) < n).all() and all(len(set(row)) == 5 for row in ranks.tolist())
    with pytest.raises(ValueError, match="at least q=5"):
        _sample_ranks(np.array([4, 9]), 5, key=0)


def test_every_unit_of_a_window_is_equally_likely_to_be_kept():
    """All windows hold the same 60 units (a cluster spread over several bands); Q is capped at 10."""
    rng = np.random.default_rng(3)
    cluster = rng.uniform(4.9, 5.1, (60, 2))
    xy = np.concatenate([cluster, [[0.0, 0.0], [10.0, 10.0]]])
    hoods = build_neighborhoods(xy, 9.9, 6000, np.random.default_rng(4), max_size=10)
    assert hoods.shape == (6000, 10)
    kept = np.bincount(hoods.ravel(), minlength=len(xy))
    assert kept[60:].sum() == 0
    assert _chi_square_p(kept[:60]) > 1e-4


def test_neighborhoods_do_not_depend_on_the_number_of_threads(monkeypatch):
    xy = np.random.default_rng(0).uniform(0, 10, (20_000, 2))
    results = []
    for threads in (1, 3):
        monkeypatch.setattr(neighborhoods, "_threads", lambda threads=threads: threads)
        results.append(build_neighborhoods(xy, 1.0, 3000, np.random.default_rng(7)))
    np.testing.assert_array_equal(results[0], results[1])


def test_window_wider_than_the_sheet_is_an_error():
    with pytest.raises(ValueError, match="larger than the sheet"):
        build_neighborhoods(np.random.default_rng(0).uniform(0, 1, (100, 2)), 2.0, 10, np.random.default_rng(0))
