"""Orientation, spatial-frequency and colour tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spacetorch.analyses import orientation_tuning, preferred_value, tuning_curves
from spacetorch.stimuli import SineGratings


def test_circular_variance_of_analytic_curves() -> None:
    theta = np.arange(8) * 22.5
    theta0 = 67.5
    curves = np.stack(
        [
            (theta == theta0).astype(float),  # one orientation: CV 0
            np.ones(8),  # flat: CV 1
            1 + np.cos(np.deg2rad(2 * (theta - theta0))),  # sum r e^{2i theta} = 4 e^{2i theta0}, sum r = 8
            np.zeros(8),  # silent
        ],
        1,
    )
    tuning = orientation_tuning(curves, theta)
    np.testing.assert_allclose(tuning.circular_variance, [0.0, 1.0, 0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(tuning.preferred[[0, 2]], [theta0, theta0], atol=1e-9)
    assert np.isnan(tuning.preferred[3])
    assert tuning.selective().tolist() == [True, False, True, False]


def test_a_bank_of_oriented_filters_is_recovered() -> None:
    """Units are oriented Gabor filters with known preferences; responses are their energy."""
    size, frequency = 48, 6.0
    preferred = np.array([0.0, 10.0, 30.0, 45.0, 80.0, 100.0, 135.0, 170.0])
    gratings = SineGratings(size, spatial_frequencies=[frequency], colors=["bw"])
    images = gratings.images()[:, 0].reshape(len(gratings), -1).double()
    centres = (np.arange(size) + 0.5) / size - 0.5
    x, y = np.meshgrid(centres, -centres)
    envelope = np.exp(-(x**2 + y**2) / (2 * 0.08**2))  # broad tuning: little pull to the 8 sampled angles
    filters = []
    for angle in np.deg2rad(preferred):
        across = -x * np.sin(angle) + y * np.cos(angle)
        for phase in (0.0, np.pi / 2):  # a quadrature pair: energy is phase-invariant
            filters.append((envelope * np.cos(2 * np.pi * frequency * across + phase)).ravel())
    drive = (images - images.mean(1, keepdim=True)) @ torch.tensor(np.stack(filters)).T
    energy = (drive[:, 0::2] ** 2 + drive[:, 1::2] ** 2).numpy()
    tuning = orientation_tuning(energy, gratings.orientation)
    error = np.abs((tuning.preferred - preferred + 90) % 180 - 90)
    assert error.max() < 3.0, tuning.preferred
    assert tuning.selective().all()


def test_spatial_frequency_and_colour_preferences() -> None:
    gratings = SineGratings(64, spatial_frequencies=[4.0, 8.0, 16.0], phases=[0.0])
    sf_unit = (gratings.spatial_frequency == 8.0) * 2.0 + 0.1
    colour_unit = (gratings.color == "rc") * 1.0
    responses = np.stack([sf_unit, colour_unit], 1)
    assert preferred_value(responses, gratings.spatial_frequency)[0] == 8.0
    assert preferred_value(responses, gratings.color)[1] == "rc"
    levels, curves = tuning_curves(responses, gratings.spatial_frequency)
    np.testing.assert_allclose(levels, [4.0, 8.0, 16.0])
    np.testing.assert_allclose(curves[:, 0], [0.1, 2.1, 0.1])


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"responses hold 3 stimuli but 4 stimulus labels"):
        orientation_tuning(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(S stimuli, N units\)"):
        tuning_curves(np.zeros(3), np.zeros(3))


def test_feature_map_border_is_exactly_the_outer_rows_and_columns() -> None:
    import numpy as np

    from spacetorch.models.receptive_field import feature_map_border

    c, h, w = 3, 6, 7
    for width in (0, 1, 2):
        mask = feature_map_border((c, h, w), width).reshape(c, h, w)
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        expected = (rows < width) | (rows >= h - width) | (cols < width) | (cols >= w - width)
        assert (mask == expected[None]).all()
