"""Sine gratings: the standard set, labels, and each image's orientation and frequency."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spacetorch.stimuli import COLORS, ORIENTATIONS, PHASES, SPATIAL_FREQUENCIES, SineGratings, sine_grating


def test_standard_set_has_640_labelled_gratings() -> None:
    gratings = SineGratings()
    assert len(gratings) == 8 * 8 * 5 * 2 == 640
    np.testing.assert_allclose(ORIENTATIONS, np.arange(0, 180, 22.5))
    np.testing.assert_allclose(SPATIAL_FREQUENCIES, np.linspace(5.5, 110, 9)[:-1])
    assert len(PHASES) == 5 and COLORS == ("bw", "rc")
    expected = list(itertools.product(ORIENTATIONS, SPATIAL_FREQUENCIES, PHASES, COLORS))
    got = list(zip(gratings.orientation, gratings.spatial_frequency, gratings.phase, gratings.color, strict=False))
    assert got == expected
    image, index = gratings[17]
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32 and index == 17
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0


def _fft_orientation_and_frequency(image: np.ndarray):
    """Stripe angle (deg, counter-clockwise from horizontal) and cycles per image of the FFT peak."""
    size = image.shape[0]
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    row, col = np.unravel_index(np.argmax(power), power.shape)
    f_row = np.fft.fftfreq(size, 1 / size)[row]  # cycles per image along rows (down)
    f_col = np.fft.fftfreq(size, 1 / size)[col]
    wave = np.rad2deg(np.arctan2(-f_row, f_col))  # wave-vector angle with y up
    return (wave - 90.0) % 180.0, np.hypot(f_row, f_col)


@pytest.mark.parametrize("size", [224, 96])
def test_each_grating_has_its_labelled_orientation_and_frequency(size: int) -> None:
    frequencies = [f for f in SPATIAL_FREQUENCIES if f < size / 2 - 8]
    gratings = SineGratings(size, spatial_frequencies=frequencies, phases=[0.7], colors=["bw"])
    for i in range(len(gratings)):
        image = gratings[i][0][0].numpy()
        orientation, frequency = _fft_orientation_and_frequency(image)
        error = abs((orientation - gratings.orientation[i] + 90) % 180 - 90)
        # the FFT peak lies on the integer-frequency grid: allow the angle that one bin subtends
        assert error <= np.rad2deg(np.arctan(1.0 / gratings.spatial_frequency[i])) + 1e-6, (i, orientation)
        assert abs(frequency - gratings.spatial_frequency[i]) <= 1.0


def test_colour_modes() -> None:
    bw = sine_grating(32, 45.0, 4.0, 0.3, "bw")
    rc = sine_grating(32, 45.0, 4.0, 0.3, "rc")
    torch.testing.assert_close(bw[0], bw[1])
    torch.testing.assert_close(rc[0], bw[0])
    torch.testing.assert_close(rc[1], 1 - bw[0])
    torch.testing.assert_close(rc[2], 1 - bw[0])


def test_phase_shifts_the_grating() -> None:
    a = sine_grating(64, 0.0, 8.0, 0.0)[0]
    b = sine_grating(64, 0.0, 8.0, np.pi)[0]
    torch.testing.assert_close(a + b, torch.ones_like(a))  # half a cycle: the negative


def test_bad_parameters_name_the_limit() -> None:
    with pytest.raises(ValueError, match=r"spatial frequencies \[44.6875.*outside \(0, 32\) for 64 px"):
        SineGratings(64)
    with pytest.raises(ValueError, match="colors must be among"):
        SineGratings(64, spatial_frequencies=[4.0], colors=["green"])
    with pytest.raises(ValueError, match="orientations must not be empty"):
        SineGratings(64, orientations=[])
    with pytest.raises(IndexError, match="grating index 5 out of range for 5"):
        SineGratings(64, orientations=[0.0], spatial_frequencies=[4.0], colors=["bw"])[5]
