"""Orientation maps on a regular grid, their pinwheels and their column spacing.

Units' preferred orientations are averaged on a grid (circular mean of ``e^{2 i theta}`` over
the units in a square window around each grid point; 1.5 mm windows every 0.45 mm for a
V1-like layer).  A pinwheel is a point around which the preferred orientation turns through
180 deg: going around each grid cell (2 x 2 grid points), the doubled angle winds by
``+-2 pi`` around a pinwheel and by 0 elsewhere.  Pinwheel density is the count per
(column spacing)^2, where the column spacing is the wavelength of the map's strongest
spatial frequency; the value measured in many species is about pi (Kaschube et al. 2010).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "OrientationGrid",
    "Pinwheels",
    "SpacingEstimate",
    "column_spacing",
    "estimate_column_spacing",
    "find_pinwheels",
    "orientation_grid",
]


@dataclass
class OrientationGrid:
    """A layer's orientation map resampled on a grid.

    Attributes:
        x: ``(W,)`` grid columns, mm.  y: ``(H,)`` grid rows, mm.
        angle: ``(H, W)`` mean preferred orientation in ``[0, 180)`` degrees; NaN where the
            window holds no unit.
        strength: ``(H, W)`` length of the mean vector in ``[0, 1]`` (1: all units agree).
    """

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    strength: np.ndarray

    @property
    def stride(self) -> float:
        return float(self.x[1] - self.x[0]) if len(self.x) > 1 else float("nan")

    @property
    def area(self) -> float:
        """mm^2 covered by grid points with a value."""
        return float(np.isfinite(self.angle).sum()) * self.stride**2


@dataclass
class Pinwheels:
    """Pinwheel centres (mm) and their sign (+1: orientation turns counter-clockwise)."""

    x: np.ndarray
    y: np.ndarray
    sign: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def orientation_grid(
    coordinates: np.ndarray, preferred: np.ndarray, *, window: float = 1.5, stride: float = 0.45
) -> OrientationGrid:
    """Circular mean of the units' preferred orientations in square windows on a grid.

    Args:
        coordinates: ``(N, 2)`` mm.
        preferred: ``(N,)`` degrees (period 180); NaN units are left out (e.g. pass only
            orientation-selective units).
        window: side of the square window, mm.
        stride: grid spacing, mm.

    Raises:
        ValueError: shapes that disagree, non-positive sizes, or no unit with a value.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(coordinates, dtype=np.float64)
    theta = np.asarray(preferred, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or theta.shape != (xy.shape[0],):
        raise ValueError(f"coordinates must be (N, 2) and preferred (N,), got {xy.shape} and {theta.shape}")
    if not (window > 0 and stride > 0):
        raise ValueError(f"window and stride must be > 0 mm, got {window} and {stride}")
    keep = np.isfinite(theta)
    if not keep.any():
        raise ValueError("no unit has a preferred orientation")
    xy, theta = xy[keep], theta[keep]
    low, high = xy.min(0), xy.max(0)
    gx = np.arange(low[0], high[0] + stride / 2, stride)
    gy = np.arange(low[1], high[1] + stride / 2, stride)
    points = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    members = cKDTree(xy).query_ball_point(points, r=window / 2, p=np.inf, return_sorted=False)
    owner = np.repeat(np.arange(len(points)), [len(m) for m in members])
    units = np.concatenate([np.asarray(m, dtype=np.int64) for m in members]) if len(owner) else np.zeros(0, np.int64)
    phasor = np.exp(2j * np.deg2rad(theta[units]))
    total = np.bincount(owner, weights=phasor.real, minlength=len(points)) + 1j * np.bincount(
        owner, weights=phasor.imag, minlength=len(points)
    )
    count = np.bincount(owner, minlength=len(points))
    angle = np.full(len(points), np.nan)
    strength = np.zeros(len(points))
    has = count > 0
    angle[has] = np.rad2deg(np.angle(total[has])) / 2 % 180.0
    strength[has] = np.abs(total[has]) / count[has]
    shape = (len(gy), len(gx))
    return OrientationGrid(gx, gy, angle.reshape(shape), strength.reshape(shape))


def find_pinwheels(grid: OrientationGrid) -> Pinwheels:
    """Grid cells around which the orientation winds by +-180 deg; centres at the cell middles.

    Cells with a corner without a value are skipped.
    """
    doubled = np.deg2rad(2 * grid.angle)
    corners = [doubled[:-1, :-1], doubled[:-1, 1:], doubled[1:, 1:], doubled[1:, :-1]]
    winding = np.zeros(corners[0].shape)
    for a, b in zip(corners, corners[1:] + corners[:1], strict=False):
        winding += np.angle(np.exp(1j * (b - a)))  # the step wrapped into (-pi, pi]
    with np.errstate(invalid="ignore"):
        turns = np.rint(winding / (2 * np.pi))
    found = np.isfinite(turns) & (turns != 0)
    rows, cols = np.nonzero(found)
    # corners go (x, y) -> (x+, y) -> (x+, y+) -> (x, y+): counter-clockwise when y points up
    return Pinwheels(
        x=(grid.x[cols] + grid.x[cols + 1]) / 2,
        y=(grid.y[rows] + grid.y[rows + 1]) / 2,
        sign=turns[found].astype(np.int64),
    )


#: a spacing is dominant when its ring holds this many times the median ring power
MIN_SPACING_CONTRAST = 3.0


@dataclass
class SpacingEstimate:
    """The column spacing of a map, or why it has none.

    Attributes:
        spacing: wavelength (mm) of the strongest ring of the spectrum; NaN when no ring
            dominates.
        contrast: that ring's power over the median ring power (about 1 to 1.5 for a map
            without structure).
        reason: empty when ``spacing`` is a number, else what was found instead.
    """

    spacing: float
    contrast: float
    reason: str = ""


def estimate_column_spacing(grid: OrientationGrid, min_contrast: float = MIN_SPACING_CONTRAST) -> SpacingEstimate:
    """The dominant wavelength of ``e^{2 i theta}`` on the grid, if there is one.

    The radially averaged power spectrum is searched between two periods across the grid
    and the grid's Nyquist ring.  There is no dominant spacing when the strongest ring holds
    less than ``min_contrast`` times the median ring power (a map without structure), or
    when it is the longest wavelength searched (power still rising towards longer
    wavelengths: a smooth map whose scale the sheet does not contain).

    Raises:
        ValueError: the grid is too small to hold two periods of any wavelength.
    """
    finite = np.isfinite(grid.angle)
    z = np.where(finite, np.exp(2j * np.deg2rad(np.nan_to_num(grid.angle))), 0)
    z = np.where(finite, z - z[finite].mean(), 0)
    h, w = z.shape
    if min(h, w) < 8:
        raise ValueError(f"the grid ({h} x {w} points) is too small to estimate a column spacing")
    power = np.abs(np.fft.fft2(z)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(h, grid.stride), np.fft.fftfreq(w, grid.stride), indexing="ij")
    step = 1.0 / (grid.stride * max(h, w))  # the finer of the two frequency resolutions
    ring = np.rint(np.hypot(fx, fy) / step).astype(np.int64)
    spectrum = np.bincount(ring.ravel(), weights=power.ravel()) / np.maximum(np.bincount(ring.ravel()), 1)
    # ring 0 is the mean and ring 1 one period across the grid: a spacing needs two periods
    searched = spectrum[2:min(h, w) // 2]
    peak = int(np.argmax(searched))
    median = float(np.median(searched))
    contrast = float(searched[peak] / median) if median > 0 else float("inf")
    spacing = float(1.0 / ((peak + 2) * step))
    if contrast < min_contrast:
        return SpacingEstimate(float("nan"), contrast, f"no ring stands out (peak {contrast:.1f}x the median power)")
    if peak == 0:
        return SpacingEstimate(
            float("nan"), contrast, f"power keeps rising up to the longest wavelength searched ({spacing:.1f} mm)"
        )
    return SpacingEstimate(spacing, contrast)


def column_spacing(grid: OrientationGrid, min_contrast: float = MIN_SPACING_CONTRAST) -> float:
    """Wavelength (mm) of the dominant spatial frequency of ``e^{2 i theta}`` on the grid, or
    NaN when there is none (see :func:`estimate_column_spacing`, which also says why).

    Raises:
        ValueError: the grid is too small to hold two periods of any wavelength.
    """
    return estimate_column_spacing(grid, min_contrast).spacing
