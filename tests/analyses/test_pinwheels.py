"""Gridded orientation maps, pinwheels and column spacing on synthetic maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses import column_spacing, estimate_column_spacing, find_pinwheels, orientation_grid
from spacetorch.analyses.pinwheels import OrientationGrid


def _planted_map(centres, signs, n=30_000, size=20.0, seed=0):
    """Orientation = half the sum of signed angles around each centre (each a +-180 deg pinwheel)."""
    xy = np.random.default_rng(seed).uniform(0, size, (n, 2))
    doubled = sum(s * np.arctan2(xy[:, 1] - cy, xy[:, 0] - cx) for (cx, cy), s in zip(centres, signs, strict=False))
    return xy, np.rad2deg(doubled) / 2 % 180


def test_planted_pinwheels_are_found_with_their_signs() -> None:
    centres = [(5.2, 5.1), (14.9, 5.3), (5.1, 14.8), (15.2, 15.1), (10.1, 10.2)]
    signs = [1, -1, -1, 1, 1]
    xy, theta = _planted_map(centres, signs)
    grid = orientation_grid(xy, theta, window=1.5, stride=0.45)
    pinwheels = find_pinwheels(grid)
    assert len(pinwheels) == len(centres)
    for (cx, cy), sign in zip(centres, signs, strict=False):
        nearest = np.argmin(np.hypot(pinwheels.x - cx, pinwheels.y - cy))
        assert np.hypot(pinwheels.x[nearest] - cx, pinwheels.y[nearest] - cy) < 0.5
        assert pinwheels.sign[nearest] == sign


def test_a_map_without_singularities_has_no_pinwheels_and_its_spacing_is_the_period() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 30, (40_000, 2))
    period = 6.0  # orientation turns through 180 deg every 6 mm along x
    theta = 180 * xy[:, 0] / period % 180
    grid = orientation_grid(xy, theta, window=1.0, stride=0.3)
    assert len(find_pinwheels(grid)) == 0
    assert column_spacing(grid) == pytest.approx(period, rel=0.1)


def test_grid_is_the_circular_mean_of_the_window() -> None:
    xy = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [3.0, 3.0]])
    theta = np.array([170.0, 10.0, 0.0, 90.0])
    grid = orientation_grid(xy, theta, window=1.0, stride=1.0)
    assert grid.angle.shape == (4, 4)
    angle = grid.angle[0, 0]
    assert min(angle, 180 - angle) < 1e-9  # 170, 10 and 0 deg average to 0, not 60
    assert grid.angle[3, 3] == pytest.approx(90.0)
    assert np.isnan(grid.angle[1, 2])  # no unit within 0.5 mm
    np.testing.assert_allclose(grid.strength[3, 3], 1.0)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="no unit has a preferred orientation"):
        orientation_grid(np.zeros((2, 2)), np.full(2, np.nan))
    with pytest.raises(ValueError, match=r"window and stride must be > 0 mm"):
        orientation_grid(np.zeros((2, 2)), np.zeros(2), stride=0)


def _grid(angle: np.ndarray, stride: float = 0.45) -> OrientationGrid:
    h, w = angle.shape
    return OrientationGrid(np.arange(w) * stride, np.arange(h) * stride, angle, np.ones_like(angle))


def _filtered_map(seed: int, gain, n: int = 80, stride: float = 0.45) -> np.ndarray:
    """Orientation from complex white noise filtered by ``gain(|k|)`` (k in cycles/mm)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.fft2(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    fy, fx = np.meshgrid(np.fft.fftfreq(n, stride), np.fft.fftfreq(n, stride), indexing="ij")
    return np.rad2deg(np.angle(np.fft.ifft2(spectrum * gain(np.hypot(fx, fy))))) % 360 / 2


@pytest.mark.parametrize("seed", range(5))
def test_a_map_without_structure_has_no_spacing_and_says_so(seed: int) -> None:
    noise = np.random.default_rng(seed).uniform(0, 180, (80, 80))
    estimate = estimate_column_spacing(_grid(noise))
    assert np.isnan(estimate.spacing) and np.isnan(column_spacing(_grid(noise)))
    assert estimate.reason.startswith("no ring stands out") and estimate.contrast < 2


@pytest.mark.parametrize("seed", range(3))
def test_a_smooth_map_without_a_scale_has_no_spacing(seed: int) -> None:
    smooth = _filtered_map(seed, lambda k: 1 / np.maximum(k, 1 / 36) ** 1.5)
    estimate = estimate_column_spacing(_grid(smooth))
    assert np.isnan(estimate.spacing)
    assert estimate.reason.startswith("power keeps rising up to the longest wavelength searched")


@pytest.mark.parametrize("seed", range(3))
def test_a_band_limited_map_has_its_band_as_spacing(seed: int) -> None:
    band = _filtered_map(seed, lambda k: np.exp(-(((k - 0.25) / 0.03) ** 2)))  # 4 mm columns
    estimate = estimate_column_spacing(_grid(band))
    assert estimate.spacing == pytest.approx(4.0, rel=0.1) and estimate.contrast > 10 and estimate.reason == ""


def test_scattered_units_with_random_preferences_get_no_spacing_and_no_density() -> None:
    """A few selective units with random preferences, like an untrained layer: their grid can show a
    ring in its spectrum, but nearby units are no more alike than shuffled ones, so no columns."""
    from spacetorch.analyses import analyze_orientation_map

    rng = np.random.default_rng(0)
    n = 20000
    xy = rng.uniform(0, 30, (n, 2))
    orientations = np.repeat(np.arange(0, 180, 22.5), 10)
    preferred = rng.uniform(0, 180, n)
    kappa = np.where(rng.random(n) < 0.02, 4.0, 0.1)  # 2% tuned
    responses = np.exp(kappa * np.cos(np.deg2rad(2 * (orientations[:, None] - preferred))))
    result = analyze_orientation_map(responses + 0.1 * rng.random(responses.shape), xy, orientations)
    assert not result.smoothness > result.shuffled_curve.smoothness
    assert np.isnan(result.spacing) and np.isnan(result.pinwheel_density)
    assert "no more alike than in the shuffled map" in result.spacing_note
    assert "no column spacing" in result.summary()
