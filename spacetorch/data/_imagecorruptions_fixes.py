"""imagecorruptions 1.1.2 (the ImageNet-C corruptions as a package) on NumPy 2 and scikit-image >= 0.21.

The library's last release predates both, and three of its corruptions fail on them; importing
this module mends them, once:

* ``glass_blur`` (one of the fifteen benchmark corruptions) and the extra ``gaussian_blur`` call
  ``skimage.filters.gaussian(..., multichannel=True)``; scikit-image renamed the argument
  ``channel_axis`` in 0.19 and removed the old name in 0.21.  The library's ``gaussian`` becomes
  a wrapper that passes ``channel_axis=-1`` instead.
* ``fog`` takes its haze from ``plasma_fractal``, which allocates with ``np.float_`` (removed in
  NumPy 2.0).  It is replaced by :func:`plasma_fractal` below: the same diamond-square
  generator, drawing the same random numbers in the same order (the tests compare the two).

Each fix is applied only where the installed versions need it, so a mended release of
imagecorruptions is used as it is.  The library also imports ``pkg_resources`` and
``scipy.ndimage.interpolation``, whose deprecation warnings are silenced at import.

All its corruptions draw from NumPy's global random state but one: ``impulse_noise`` calls
``skimage.util.random_noise``, which makes a fresh, unseeded generator.  :func:`corrupt` (this
module's) lends ``random_noise`` a generator seeded from the global state for the call, so that
seeding NumPy makes every corruption reproducible.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["corrupt", "plasma_fractal"]  # spacetorch.data.corruptions.corrupt is the checked entry point


def plasma_fractal(mapsize: int = 256, wibbledecay: float = 3.0) -> np.ndarray:
    """A periodic ``(mapsize, mapsize)`` fractal height map in ``[0, 1]`` (diamond-square).

    The grid starts as zeros.  At each halving of the step, the centre of every square of
    grid points and then the midpoint of every edge gets the mean of its four neighbours
    (wrapping around the borders) plus noise uniform in ``[-s**2, s**2]``; ``s`` starts at 100
    and is divided by ``wibbledecay`` at each halving.  The noise comes from NumPy's global
    random state, as everywhere in imagecorruptions.

    Raises:
        ValueError: ``mapsize`` is not a power of two.
    """
    if mapsize < 1 or mapsize & (mapsize - 1):
        raise ValueError(f"plasma_fractal: mapsize must be a power of two, got {mapsize}")
    height = np.zeros((mapsize, mapsize))
    scale = 100.0

    def noisy_mean(four_sum: np.ndarray) -> np.ndarray:
        noise: np.ndarray = np.random.uniform(-scale, scale, four_sum.shape)
        return four_sum / 4 + scale * noise

    step = mapsize
    while step >= 2:
        half = step // 2
        corners = height[::step, ::step]
        square = corners + np.roll(corners, -1, axis=0)
        height[half::step, half::step] = noisy_mean(square + np.roll(square, -1, axis=1))
        centres = height[half::step, half::step]
        # midpoints on the grid's rows: left and right corners, centres above and below
        row_sum = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        height[::step, half::step] = noisy_mean(row_sum)
        # midpoints on the grid's columns: corners above and below, centres left and right
        column_sum = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        height[half::step, ::step] = noisy_mean(column_sum)
        step = half
        scale /= wibbledecay
    height -= height.min()
    normalised: np.ndarray = height / height.max()
    return normalised


def _gaussian_with_multichannel(gaussian: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def blur(image: np.ndarray, sigma: Any = 1, multichannel: bool = False, **kwargs: Any) -> np.ndarray:
        return gaussian(image, sigma=sigma, channel_axis=-1 if multichannel else None, **kwargs)

    return blur


@contextlib.contextmanager
def _random_noise_from_global_state() -> Iterator[None]:
    import skimage.util

    released: Any = skimage.util.random_noise

    def seeded(image: np.ndarray, mode: str = "gaussian", rng: Any = None, **kwargs: Any) -> np.ndarray:
        if rng is None:
            rng = np.random.default_rng(np.random.randint(0, 2**32, dtype=np.uint64))
        result: np.ndarray = released(image, mode=mode, rng=rng, **kwargs)
        return result

    setattr(skimage.util, "random_noise", seeded)  # noqa: B010  # for the call only
    try:
        yield
    finally:
        setattr(skimage.util, "random_noise", released)  # noqa: B010


def corrupt(image: np.ndarray, *, severity: int, corruption_name: str) -> np.ndarray:
    """imagecorruptions' ``corrupt``, with every corruption drawing from NumPy's global random state."""
    with _random_noise_from_global_state():
        result: np.ndarray = _library_corrupt(image, severity=severity, corruption_name=corruption_name)
    return result


def _import() -> Callable[..., np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
        import imagecorruptions
        import imagecorruptions.corruptions as library
        from skimage.filters import gaussian

    if "multichannel" not in inspect.signature(gaussian).parameters:
        library.gaussian = _gaussian_with_multichannel(gaussian)
    if not hasattr(np, "float_"):
        library.plasma_fractal = plasma_fractal
    function: Callable[..., np.ndarray] = imagecorruptions.corrupt
    return function


_library_corrupt = _import()
