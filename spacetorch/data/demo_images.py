"""A natural-image training set made from the photographs that ship inside scikit-image.

Topography needs natural image statistics; noise does not do.  With no dataset at hand
(no machine here may download one), random crops of the dozen photographs bundled in the
``skimage/data`` folder give a small set for the CPU demo and the tests.  Nothing is
downloaded: only the files inside the installed wheel are read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image

from spacetorch._files import atomic_directory

__all__ = ["DEMO_PHOTOS", "make_demo_image_folder", "photo_path"]

#: photographs bundled with scikit-image used as sources (class = photograph)
DEMO_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "rocket.jpg",
)


def photo_path(name: str) -> Path:
    """Path of a photograph bundled in the installed scikit-image wheel."""
    path = Path(str(files("skimage").joinpath("data").joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: scikit-image's bundled photograph {name!r} is missing")
    return path


def make_demo_image_folder(
    out_dir: str | os.PathLike[str],
    n_train: int = 384,
    n_val: int = 48,
    size: int = 256,
    seed: int = 0,
    photos: Sequence[str] = DEMO_PHOTOS,
    progress: Callable[[int], None] | None = None,
    whole: bool = False,
) -> Path:
    """Write ``out_dir/{train,val}/<photo>/<i>.jpg``: random square crops resized to ``size``.

    Crops take 25-100% of the photograph's shorter side at a uniform random place and are
    mirrored half the time; each split draws about as many crops from every photograph.
    With ``whole``, each training image is instead a whole photograph, its shorter side
    resized to ``size``, the photographs taken in turn: a training transform that crops at
    random (SimCLR's random resized crops) then draws new views of every photograph in
    every epoch instead of re-cropping a few hundred fixed crops, and ``n_train`` only sets
    how many samples an epoch holds.  The validation crops are drawn as without ``whole``.
    The folder layout is torchvision's ``ImageFolder`` (VISSL ``disk_folder``), labelled by
    source photograph.  The set is written to a temporary folder and renamed, so an
    interrupted run leaves no partial set behind.

    Args:
        progress: called with the number of images written so far.

    Raises:
        FileExistsError: ``out_dir`` exists (delete it to make a new set).
    """
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; delete it to make a new demo image set")
    if n_train < len(photos) or n_val < 0 or size < 8:
        raise ValueError(f"need n_train >= {len(photos)} (one per photograph), n_val >= 0 and size >= 8")
    rng = np.random.default_rng(seed)
    sources = [Image.open(photo_path(name)).convert("RGB") for name in photos]

    resized = [_shorter_side(source, size) for source in sources] if whole else []

    def crops() -> Iterator[tuple[str, Image.Image]]:
        for split, count in (("train", n_train), ("val", n_val)):
            for i in range(count):
                k = i % len(sources)
                image = resized[k] if whole and split == "train" else _random_crop(sources[k], size, rng)
                yield f"{split}/{Path(photos[k]).stem}/{i:05d}.jpg", image

    return write_image_folder(out, crops(), progress)


def write_image_folder(
    out: Path, images: Iterable[tuple[str, Image.Image]], progress: Callable[[int], None] | None = None
) -> Path:
    """Save ``(relative path, image)`` pairs under ``out``, all or nothing (JPEGs at quality 92).

    Args:
        progress: called with the number of images written so far.
    """
    with atomic_directory(out) as tmp:
        for written, (name, image) in enumerate(images, start=1):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".jpg":
                image.save(path, quality=92)
            else:
                image.save(path)
            if progress is not None:
                progress(written)
    return out


def _shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    scale = size / min(width, height)
    return image.resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BICUBIC)


def _random_crop(image: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    width, height = image.size
    side = int(round(min(width, height) * rng.uniform(0.25, 1.0)))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    crop = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop
