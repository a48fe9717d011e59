import math

import numpy as np
import pytest
import torch

from spacetorch.models.positions import (
    AREAS,
    RetinotopicLayerSpec,
    build_neighborhoods,
    retinotopic_layer,
    retinotopic_layer_specs,
    retinotopic_positions,
)
from spacetorch.models.positions import neighborhoods
from spacetorch.models.positions.neighborhoods import BandIndex, _sample_ranks, neighborhood_size
from spacetorch.models.positions.retinotopy import retinotopic_coordinates


def test_resnet18_preset_follows_the_reference():
    specs = {s.name: s for s in retinotopic_layer_specs("resnet18")}
    expected = {  # tdann.md: area, dims, overlap 0.1 * 56 / W
        "layer1.0": ("retina", (64, 56, 56), 0.1), "layer1.1": ("retina", (64, 56, 56), 0.1),
        "layer2.0": ("V1", (128, 28, 28), 0.2), "layer2.1": ("V1", (128, 28, 28), 0.2),
        "layer3.0": ("V2", (256, 14, 14), 0.4), "layer3.1": ("V4", (256, 14, 14), 0.4),
        "layer4.0": ("VTC", (512, 7, 7), 0.8), "layer4.1": ("VTC", (512, 7, 7), 0.8),
    }
    assert list(specs) == list(expected)
    sizes = {"retina": (2.4, 0.0475), "V1": (36.75, 1.626), "V2": (35.0, 3.977), "V4": (22.4, 2.545), "VTC": (70.0, 31.818)}
    for name, (area, dims, overlap) in expected.items():
        spec = specs[name]
        assert (spec.area, spec.dims) == (area, dims)
        assert spec.rf_overlap == pytest.approx(overlap)
        assert (spec.tissue_size, spec.neighborhood_width) == sizes[area]


def test_resnet50_preset_maps_every_block():
    specs = retinotopic_layer_specs("resnet50")
    assert len(specs) == 16
    by_name = {s.name: s for s in specs}
    assert by_name["layer1.2"].dims == (256, 56, 56) and by_name["layer4.2"].dims == (2048, 7, 7)
    assert [by_name[f"layer3.{i}"].area for i in range(6)] == ["V2"] * 3 + ["V4"] * 3


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match="unknown model 'resnet19'; did you mean resnet18"):
        retinotopic_layer_specs("resnet19")


def test_area_sizes_are_configurable():
    custom = AREAS["V1"].__class__(tissue_size=10.0, neighborhood_width=1.0)
    spec = {s.name: s for s in retinotopic_layer_specs("resnet18", areas={"V1": custom})}["layer2.0"]
    assert (spec.tissue_size, spec.neighborhood_width) == (10.0, 1.0)


def test_units_follow_channel_major_order_and_rf_geometry():
    """Without jitter, unit c*H*W + h*W + w lies within one RF radius of RF centre (h, w)."""
    c, h, w, size, overlap = 3, 5, 7, 14.0, 0.4
    spec = RetinotopicLayerSpec("l", (c, h, w), size, 2.0, overlap)
    xy = retinotopic_coordinates(spec, np.random.default_rng(1), jitter=0.0)
    def centres(n):  # n RFs overlapping by `overlap` tile the sheet exactly
        rf_width = size / (n - n * overlap + overlap)
        assert n * rf_width - (n - 1) * overlap * rf_width == pytest.approx(size)
        return rf_width / 2 + np.arange(n) * (size - rf_width) / (n - 1), rf_width / 2

    (centres_x, radius_x), (centres_y, radius_y) = centres(w), centres(h)
    features = torch.arange(c * h * w).reshape(1, c, h, w)
    for unit in features.flatten(1)[0].tolist():
        _, rest = divmod(unit, h * w)
        row, col = divmod(rest, w)
        assert abs(xy[unit, 0] - centres_x[col]) <= radius_x
        assert abs(xy[unit, 1] - centres_y[row]) <= radius_y
    # H < W here, so y RFs are wider: some y offsets must exceed the x radius
    assert np.abs(xy[:, 1] - np.repeat(centres_y, w)[np.arange(c * h * w) % (h * w)]).max() > radius_x
    # each channel's offsets are independent draws
    assert not np.allclose(xy[: h * w], xy[h * w : 2 * h * w])


def test_jitter_keeps_each_axis_min_and_range():
    spec = RetinotopicLayerSpec("l", (8, 6, 6), 10.0, 2.0, 0.2)
    plain = retinotopic_coordinates(spec, np.random.default_rng(3), jitter=0.0)
    jittered = retinotopic_coordinates(spec, np.random.default_rng(3), jitter=0.3)
    np.testing.assert_allclose(jittered.min(0), plain.min(0))
    np.testing.assert_allclose(np.ptp(jittered, 0), np.ptp(plain, 0))
    assert np.abs(jittered - plain).mean() > 0.05


def test_same_seed_same_positions():
    spec = RetinotopicLayerSpec("l", (16, 8, 8), 10.0, 2.0, 0.2)
    a, b = retinotopic_layer(spec, 300, seed=5), retinotopic_layer(spec, 300, seed=5)
    c = retinotopic_layer(spec, 300, seed=6)
    np.testing.assert_array_equal(a.coordinates, b.coordinates)
    np.testing.assert_array_equal(a.neighborhood_indices, b.neighborhood_indices)
    assert not np.array_equal(a.coordinates, c.coordinates)


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


def test_too_sparse_layer_names_the_layer():
    spec = RetinotopicLayerSpec("layer9.0", (1, 4, 4), 10.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="layer 'layer9.0': no window of width 1.0 mm holds 25 units"):
        retinotopic_layer(spec, 50)


def test_full_resnet18_set_is_consistent():
    positions = retinotopic_positions("resnet18", n_neighborhoods=300, seed=424)
    assert list(positions) == [s.name for s in retinotopic_layer_specs("resnet18")]
    for layer in positions.layer_positions.values():
        assert layer.coordinates.shape == (layer.num_units, 2)
        assert layer.neighborhood_indices.dtype == np.int32
        size = next(s.tissue_size for s in retinotopic_layer_specs("resnet18") if s.name == layer.name)
        assert layer.coordinates.min() >= 0 and layer.coordinates.max() <= size
