"""Full-field sine gratings, the stimulus set of the TDANN V1 analyses.

The standard set crosses 8 orientations (0 to 157.5 deg), 8 spatial frequencies
(``linspace(5.5, 110, 9)[:-1]`` cycles per image; the image spans 8 deg of visual angle),
5 phases and 2 colour modes (black/white, red/cyan): 640 images.

Conventions: an orientation is the angle of the stripes, counter-clockwise from horizontal
(0 deg = horizontal stripes, 90 deg = vertical stripes); luminance is
``0.5 + 0.5 * sin(2 pi f u + phase)`` with ``u`` the position across the stripes in image
widths.  A red/cyan grating puts the luminance in the red channel and its complement in
green and blue.  Images are ``(3, size, size)`` float32 in ``[0, 1]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["COLORS", "ORIENTATIONS", "PHASES", "SPATIAL_FREQUENCIES", "SineGratings", "sine_grating"]

#: stripe angles, degrees
ORIENTATIONS: tuple[float, ...] = tuple(np.arange(8) * 22.5)
#: cycles per image (8 deg of visual angle)
SPATIAL_FREQUENCIES: tuple[float, ...] = tuple(np.linspace(5.5, 110.0, 9)[:-1])
#: radians
PHASES: tuple[float, ...] = tuple(np.linspace(0.0, 2 * np.pi, 6)[:-1])
#: black/white and red/cyan
COLORS: tuple[str, ...] = ("bw", "rc")

#: degrees of visual angle an image spans
IMAGE_DEGREES = 8.0


def sine_grating(size: int, orientation: float, spatial_frequency: float, phase: float = 0.0, color: str = "bw") -> torch.Tensor:
    """One grating, ``(3, size, size)`` float32 in ``[0, 1]``.

    Args:
        size: image side, px.
        orientation: stripe angle in degrees, counter-clockwise from horizontal.
        spatial_frequency: cycles per image; below the Nyquist limit ``size / 2``.
        phase: radians.
        color: ``"bw"`` (black/white) or ``"rc"`` (red/cyan).

    Raises:
        ValueError: an unknown colour, or a frequency at or above ``size / 2``.

    >>> sine_grating(32, 90.0, 4.0).shape
    torch.Size([3, 32, 32])
    """
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    _check_frequencies(size, [spatial_frequency])
    centres = (np.arange(size) + 0.5) / size - 0.5  # image widths, centred
    x = centres[None, :]
    y = -centres[:, None]  # rows go down, y goes up
    theta = np.deg2rad(orientation)
    across = -x * np.sin(theta) + y * np.cos(theta)
    luminance = 0.5 + 0.5 * np.sin(2 * np.pi * spatial_frequency * across + phase)
    channels = [luminance] * 3 if color == "bw" else [luminance, 1 - luminance, 1 - luminance]
    return torch.from_numpy(np.stack(channels).astype(np.float32))


def _check_frequencies(size: int, spatial_frequencies: Sequence[float]) -> None:
    too_fine = [float(sf) for sf in spatial_frequencies if not 0 < sf < size / 2]
    if too_fine:
        raise ValueError(
            f"spatial frequencies {too_fine} cycles/image are outside (0, {size / 2:g}) for {size} px images "
            "(the Nyquist limit); use larger images or lower frequencies"
        )


class SineGratings(Dataset[tuple[torch.Tensor, int]]):
    """Every combination of orientation, spatial frequency, phase and colour, as a Dataset.

    Item ``i`` is ``(image (3, size, size), i)``; the parameters of image ``i`` are
    ``orientation[i]``, ``spatial_frequency[i]``, ``phase[i]`` and ``color[i]`` (numpy arrays
    of length ``len(dataset)``), in the order of ``itertools.product`` over the four lists.

    Args:
        size: image side, px (224 for the standard models).
        orientations, spatial_frequencies, phases, colors: the grid (defaults: the standard
            640-image set).

    Raises:
        ValueError: an empty list, an unknown colour or a frequency above the Nyquist limit.

    >>> gratings = SineGratings(size=64, spatial_frequencies=[4.0, 8.0])
    >>> len(gratings), gratings[0][0].shape, float(gratings.orientation[-1])
    (160, torch.Size([3, 64, 64]), 157.5)
    """

    def __init__(
        self,
        size: int = 224,
        orientations: Sequence[float] = ORIENTATIONS,
        spatial_frequencies: Sequence[float] = SPATIAL_FREQUENCIES,
        phases: Sequence[float] = PHASES,
        colors: Sequence[str] = COLORS,
    ) -> None:
        grid: dict[str, Sequence[float | str]] = {
            "orientations": orientations,
            "spatial_frequencies": spatial_frequencies,
            "phases": phases,
            "colors": colors,
        }
        for name, values in grid.items():
            if len(values) == 0:
                raise ValueError(f"{name} must not be empty")
        if size < 4:
            raise ValueError(f"size must be at least 4 px, got {size}")
        self.size = size
        combos = list(itertools.product(orientations, spatial_frequencies, phases, colors))
        self.orientation = np.array([c[0] for c in combos], dtype=np.float64)
        self.spatial_frequency = np.array([c[1] for c in combos], dtype=np.float64)
        self.phase = np.array([c[2] for c in combos], dtype=np.float64)
        self.color = np.array([c[3] for c in combos])
        bad_colors = sorted(set(colors) - set(COLORS))
        if bad_colors:
            raise ValueError(f"colors must be among {COLORS}, got {bad_colors}")
        _check_frequencies(size, spatial_frequencies)

    def __len__(self) -> int:
        return len(self.orientation)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"grating index {index} out of range for {len(self)} gratings")
        index = index % len(self)
        image = sine_grating(
            self.size,
            float(self.orientation[index]),
            float(self.spatial_frequency[index]),
            float(self.phase[index]),
            str(self.color[index]),
        )
        return image, index

    def images(self) -> torch.Tensor:
        """All gratings as one ``(len, 3, size, size)`` tensor."""
        return torch.stack([self[i][0] for i in range(len(self))])
