"""Find the images of a folder that cannot be decoded (truncated downloads, corrupt files)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spacetorch._workers import process_pool

__all__ = ["IMAGE_SUFFIXES", "UnreadableImageError", "find_unreadable_images", "image_files", "open_image", "one_line"]

#: the suffixes torchvision's ImageFolder (VISSL's ``disk_folder``) loads
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def image_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every image file under ``root`` (by suffix, case-insensitive), sorted."""
    return sorted(
        Path(folder) / name
        for folder, _, names in os.walk(root, followlinks=True)
        for name in names
        if name.lower().endswith(IMAGE_SUFFIXES)
    )


class UnreadableImageError(OSError):
    """An image cannot be decoded; the message names it and how to list every such image."""


def _decode(path: str | os.PathLike[str], mode: str) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert(mode)  # decodes every pixel, as the training loader does


def open_image(path: str | os.PathLike[str], mode: str = "RGB") -> Any:
    """The image at ``path``, decoded whole and converted to ``mode`` (a PIL image): the one
    reader of every evaluation, stimulus and source folder (``ImageFolder(loader=open_image)``).

    Raises:
        UnreadableImageError: the file cannot be decoded (truncated, corrupt, not an image),
            naming it and ``spacetorch check-images``.
    """
    try:
        return _decode(path, mode)
    except (OSError, ValueError, SyntaxError) as err:  # what PIL raises for damaged files
        folder = Path(path).parent.parent
        raise UnreadableImageError(
            f"{path}: cannot read this image ({type(err).__name__}: {err}); list every unreadable image "
            f"of the folder with `spacetorch check-images {folder}` (--move-to DIR sets them aside)"
        ) from None


def one_line(err: BaseException) -> str:
    """The message of an :class:`UnreadableImageError`, also when a DataLoader worker raised it
    (the main process then gets the worker's whole traceback as the message)."""
    text = str(err).strip()
    last = text.splitlines()[-1] if text else text
    name = f"{UnreadableImageError.__module__}.{UnreadableImageError.__name__}: "
    return last[len(name):] if last.startswith(name) else last


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be decoded as an RGB image, or None when it can."""
    try:
        _decode(path, "RGB")
    except Exception as err:  # PIL raises OSError, ValueError, SyntaxError... for damaged files
        return f"{type(err).__name__}: {err}"
    return None


def _check_chunk(paths: list[Path]) -> list[str | None]:
    return [_problem(path) for path in paths]


def _chunks(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start:start + size]


def find_unreadable_images(
    root: str | os.PathLike[str], *, workers: int | None = None, progress: Callable[[int, int], None] | None = None
) -> list[tuple[Path, str]]:
    """Decode every image under ``root``; return ``(path, what is wrong)`` for those that fail.

    Args:
        workers: processes decoding in parallel (default: the CPU count; 1 for none).
        progress: called with the number of images checked and the number found, after each
            chunk (and once before the first).

    Raises:
        FileNotFoundError: ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory")
    paths = image_files(root)
    workers = workers or os.cpu_count() or 1
    chunks = list(_chunks(paths, max(1, min(64, len(paths) // (4 * workers)))))
    bad: list[tuple[Path, str]] = []
    done = 0
    if progress is not None:
        progress(0, len(paths))

    def collect(chunk: list[Path], problems: list[str | None]) -> None:
        nonlocal done
        bad.extend((path, problem) for path, problem in zip(chunk, problems, strict=True) if problem)
        done += len(chunk)
        if progress is not None:
            progress(done, len(paths))

    if workers == 1 or len(chunks) <= 1:
        for chunk in chunks:
            collect(chunk, _check_chunk(chunk))
    else:
        with process_pool(workers) as pool:
            for chunk, problems in zip(chunks, pool.map(_check_chunk, chunks), strict=True):
                collect(chunk, problems)
    return sorted(bad)
