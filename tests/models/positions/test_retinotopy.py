
import numpy as np
import pytest
import torch

from spacetorch.models import retinotopic_layer_specs, retinotopic_positions
from spacetorch.models.positions import AREAS, RetinotopicLayerSpec, positions_for_layers, retinotopic_layer
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


def test_positions_of_a_model_are_its_specs_placed_by_the_positions_package():
    specs = retinotopic_layer_specs("resnet18")
    made = positions_for_layers(specs, n_neighborhoods=30, seed=5)
    of_model = retinotopic_positions("resnet18", n_neighborhoods=30, seed=5)
    assert list(made) == list(of_model) == [s.name for s in specs]
    for name in made:
        np.testing.assert_array_equal(made[name].coordinates, of_model[name].coordinates)
        np.testing.assert_array_equal(made[name].neighborhood_indices, of_model[name].neighborhood_indices)


def test_the_earlier_import_path_still_gives_the_model_side_functions():
    from spacetorch.models import positions, sheets

    assert positions.retinotopic_positions is sheets.retinotopic_positions
    assert positions.retinotopic_layer_specs is sheets.retinotopic_layer_specs
    with pytest.raises(AttributeError, match="nosuch"):
        positions.nosuch  # noqa: B018
