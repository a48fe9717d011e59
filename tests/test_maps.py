"""spacetorch.maps: the one way every command measures an orientation map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spacetorch.analyses import analyze_orientation_map
from spacetorch.maps import kept_units, measure_orientation_map, orientation_map_image
from spacetorch.models import create_model, retinotopic_positions
from spacetorch.models.positions import NetworkPositions
from spacetorch.models.receptive_field import feature_map_border
from spacetorch.models.topographic import TopographicModel
from spacetorch.stimuli import SineGratings

from model_helpers import SMALL_IMAGE_SIZE

GRATINGS = SineGratings(SMALL_IMAGE_SIZE, spatial_frequencies=[4.0, 8.0], phases=[0.0, 90.0], colors=["bw"])


@pytest.fixture(scope="module")
def model() -> TopographicModel:
    torch.manual_seed(0)
    positions = retinotopic_positions("resnet18", n_neighborhoods=50, input_size=SMALL_IMAGE_SIZE)
    layer = NetworkPositions({"layer2.0": positions["layer2.0"]}, version=1)
    return TopographicModel(create_model("resnet18", headless=True), layer)


def _planted_responses(model: TopographicModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Every unit tuned (von Mises, sharp) to an orientation that grows with its x position: a smooth map."""
    xy = np.asarray(model.positions["layer2.0"].coordinates)
    preferred = 180.0 * (xy[:, 0] - xy[:, 0].min()) / np.ptp(xy[:, 0])
    theta = np.deg2rad(np.asarray(GRATINGS.orientation))[:, None]
    responses = np.exp(4.0 * np.cos(2 * (theta - np.deg2rad(preferred)[None, :])))
    return torch.from_numpy(responses).float(), torch.from_numpy(xy)


def test_a_planted_map_is_the_analysis_of_the_kept_units(model: TopographicModel) -> None:
    responses = _planted_responses(model)
    measured = measure_orientation_map(model, "layer2.0", GRATINGS, exclude_border=1, responses=responses)
    expected_keep = ~feature_map_border((128, 8, 8), 1)
    np.testing.assert_array_equal(measured.keep, expected_keep)
    assert measured.units_analysed == 128 * 6 * 6 and "1 outermost" in measured.left_out
    direct = analyze_orientation_map(
        responses[0].numpy()[:, expected_keep], responses[1].numpy()[expected_keep], GRATINGS.orientation
    )
    assert measured.map is not None and measured.note == ""
    assert measured.map.smoothness == pytest.approx(direct.smoothness)
    stats = measured.statistics()
    assert stats["selective_fraction"] == 1.0 and stats["selective_units"] == measured.units_analysed
    assert stats["smoothness"] > 0.5 > stats["shuffled_smoothness"]
    assert "4608 of 8192 units analysed; 3584 left out" in measured.summary()


def test_no_selective_unit_is_a_measurement_without_a_map(model: TopographicModel) -> None:
    n = model.positions["layer2.0"].num_units
    flat = (torch.ones(len(GRATINGS), n), torch.as_tensor(np.asarray(model.positions["layer2.0"].coordinates)))
    measured = measure_orientation_map(model, "layer2.0", GRATINGS, exclude_border=0, responses=flat)
    assert measured.map is None and "no unit has a circular variance below 0.6" in measured.note
    stats = measured.statistics()
    assert stats["selective_fraction"] == 0.0 and stats["selective_units"] == 0 and stats["pinwheels"] == 0
    assert all(math.isnan(stats[key]) for key in ("smoothness", "shuffled_smoothness", "column_spacing", "pinwheel_density"))
    assert stats["spacing_note"] == measured.note and "no map (" in measured.summary()


def test_no_unit_left_and_unknown_layers_are_errors(model: TopographicModel) -> None:
    # at 64 px every layer2.0 unit's receptive field touches the border
    with pytest.raises(ValueError, match=r"--exclude-border rf leaves no unit of layer2.0 .* at 64 px"):
        kept_units(model, "layer2.0", SMALL_IMAGE_SIZE)
    with pytest.raises(ValueError, match="leaves no unit of layer2.0"):
        measure_orientation_map(model, "layer2.0", GRATINGS)
    with pytest.raises(KeyError, match="layer9.9"):
        measure_orientation_map(model, "layer9.9", GRATINGS)
    keep, left_out = kept_units(model, "layer2.0", SMALL_IMAGE_SIZE, 0)
    assert keep.all() and left_out == ""


def test_recorded_and_given_responses_agree_and_the_image_is_drawn(model: TopographicModel) -> None:
    recorded = model.responses(GRATINGS, ["layer2.0"], progress=False)["layer2.0"]
    given = measure_orientation_map(model, "layer2.0", GRATINGS, exclude_border=1, responses=recorded)
    own = measure_orientation_map(model, "layer2.0", GRATINGS, exclude_border=1)
    numbers = ("selective_units", "smoothness", "shuffled_smoothness", "pinwheels")
    assert [given.statistics()[k] for k in numbers] == pytest.approx([own.statistics()[k] for k in numbers], nan_ok=True)
    # the picture falls back to every unit where the border policy leaves none, and says so
    image = orientation_map_image(model, "layer2.0", GRATINGS, title="t")
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
