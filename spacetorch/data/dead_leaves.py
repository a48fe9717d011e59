"""Procedural natural-like images ("dead leaves"), made on any machine without downloads.

A dead-leaves image is a stack of opaque shapes that occlude each other, drawn front to back
until the canvas is covered.  Shape sizes follow a power law (radius density ``r^-3`` between
``r_min`` and ``r_max``), which makes the image statistically scale-invariant: its power
spectrum falls as about ``1 / f^2``, as natural images' do.  Shapes are ellipses and rectangles
at random orientations (edges at every orientation), each filled with a colour and, for half of
them, an oriented sinusoidal texture of random orientation, period and contrast.

Each image is drawn from its own seed (``seed``, image number), so a set is the same whatever
the order or number of workers it is made with.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from spacetorch._workers import process_pool
from spacetorch.data.demo_images import write_image_folder

__all__ = ["dead_leaves_image", "make_dead_leaves_folder"]


def _radius(rng: np.random.Generator, r_min: float, r_max: float) -> float:
    """A radius with density proportional to ``r^-3`` on ``[r_min, r_max]`` (inverse CDF)."""
    u = rng.random()
    return float(1.0 / math.sqrt((1 - u) / r_min**2 + u / r_max**2))


def dead_leaves_image(
    size: int,
    rng: np.random.Generator,
    *,
    r_min: float = 4.0,
    r_max: float | None = None,
    texture_fraction: float = 0.5,
    max_shapes: int = 200_000,
) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 dead-leaves image.

    Args:
        r_min, r_max: smallest and largest shape radius, px (``r_max`` default: ``size``).
        texture_fraction: share of shapes that carry an oriented sinusoidal texture.
        max_shapes: stop after this many shapes even if a few pixels are still uncovered
            (those keep the mean grey).
    """
    r_max = float(size) if r_max is None else r_max
    canvas = np.full((size, size, 3), 0.5, dtype=np.float32)
    free = np.ones((size, size), dtype=bool)
    remaining = size * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    for _ in range(max_shapes):
        if remaining == 0:
            break
        r = _radius(rng, r_min, r_max)
        cx, cy = rng.uniform(-r, size + r, 2)
        aspect = rng.uniform(0.3, 1.0)
        angle = rng.uniform(0, math.pi)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, size)
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, size)
        if x0 >= x1 or y0 >= y1:
            continue
        dx, dy = xs[y0:y1, x0:x1] - cx, ys[y0:y1, x0:x1] - cy
        u = dx * math.cos(angle) + dy * math.sin(angle)
        v = -dx * math.sin(angle) + dy * math.cos(angle)
        if rng.random() < 0.5:
            inside = (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1.0  # ellipse
        else:
            inside = (np.abs(u) <= r) & (np.abs(v) <= r * aspect)  # rectangle
        paint = inside & free[y0:y1, x0:x1]
        count = int(paint.sum())
        if count == 0:
            continue
        # natural colours: luminance varies most, chroma a little (channels correlate)
        colour = np.clip(rng.uniform(0.05, 0.95) + rng.normal(0.0, 0.08, 3), 0.0, 1.0).astype(np.float32)
        patch = np.broadcast_to(colour, (y1 - y0, x1 - x0, 3))
        if rng.random() < texture_fraction:
            theta = rng.uniform(0, math.pi)
            period = rng.uniform(4.0, max(5.0, r))
            contrast = rng.uniform(0.1, 0.4)
            wave = np.sin(2 * math.pi * (dx * math.cos(theta) + dy * math.sin(theta)) / period + rng.uniform(0, 2 * math.pi))
            patch = np.clip(patch * (1 + contrast * wave[..., None]), 0.0, 1.0)
        region = canvas[y0:y1, x0:x1]
        region[paint] = patch[paint]
        free[y0:y1, x0:x1] &= ~paint
        remaining -= count
    return (canvas * 255 + 0.5).astype(np.uint8)


def _seeded_image(size: int, seed: int, index: int) -> np.ndarray:
    return dead_leaves_image(size, np.random.default_rng([seed, index]))


def make_dead_leaves_folder(
    out_dir: str | os.PathLike[str],
    n_train: int = 384,
    n_val: int = 48,
    size: int = 256,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> Path:
    """Write ``out_dir/{train,val}/dead_leaves/<i>.png``, all or nothing (an ImageFolder /
    VISSL ``disk_folder`` with one class).

    Args:
        workers: processes drawing images (an image takes about 0.1 s at 256 px); the set is
            the same for any number.

    Raises:
        FileExistsError: ``out_dir`` exists.
        ValueError: a count below 1 (train) or 0 (val), ``size`` below 16 or ``workers`` below 1.
    """
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; delete it to make a new image set")
    if n_train < 1 or n_val < 0 or size < 16:
        raise ValueError(f"need n_train >= 1, n_val >= 0 and size >= 16, got {n_train}, {n_val}, {size}")
    if workers < 1:
        raise ValueError(f"need workers >= 1, got {workers}")
    names = [f"train/dead_leaves/{i:05d}.png" for i in range(n_train)]
    names += [f"val/dead_leaves/{i:05d}.png" for i in range(n_val)]
    indices = range(len(names))  # validation images continue the training images' seeds

    def images(arrays: Iterator[np.ndarray]) -> Iterator[tuple[str, Image.Image]]:
        for name, array in zip(names, arrays, strict=True):
            yield name, Image.fromarray(array)

    if workers == 1:
        return write_image_folder(out, images(_seeded_image(size, seed, i) for i in indices), progress)
    with process_pool(workers) as pool:
        arrays = pool.map(_seeded_image, [size] * len(names), [seed] * len(names), indices, chunksize=4)
        return write_image_folder(out, images(arrays), progress)
