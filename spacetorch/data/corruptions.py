"""Corrupted image sets laid out like Tiny-ImageNet-C, made and read.

The layout is ``ROOT/<corruption>/<severity>/<class>/<image>``: one folder per corruption, in
it one folder per severity (``1`` .. ``5``), in each an ImageFolder of the same classes.
Tiny-ImageNet-C and ImageNet-C are distributed that way; :func:`make_corrupted_folder` makes
such a set from any clean ImageFolder with imagecorruptions (the reference implementation of
the ImageNet-C corruptions, mended for current NumPy and scikit-image in
:mod:`spacetorch.data._imagecorruptions_fixes`), and :func:`corruption_folders` checks a set
and lists its folders.

The published Tiny-ImageNet-C used severity parameters adapted to 64 px images, while
imagecorruptions uses ImageNet-C's (224 px) parameters, which it scales for some corruptions
(the blurs' kernels are fixed in pixels, so they are stronger on small images): accuracies on
a made set are comparable between models, not with numbers reported on Tiny-ImageNet-C.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from spacetorch._files import atomic_write, check_apart, check_replaceable, publish, remove_own_folder
from spacetorch.data.image_check import IMAGE_SUFFIXES

__all__ = [
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "SEVERITIES",
    "CorruptedSetError",
    "class_folders",
    "corrupt",
    "corruption_folders",
    "make_corrupted_folder",
]

#: the fifteen benchmark corruptions of ImageNet-C / Tiny-ImageNet-C, in the usual order
#: (noise, blur, weather, digital)
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
#: the four held-out corruptions ImageNet-C provides for validation
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
#: the smallest height and width imagecorruptions accepts
MIN_SIZE = 32
MANIFEST = "corruptions.json"
PARTIAL_SUFFIX = ".partial"


class CorruptedSetError(ValueError):
    """A corrupted set (or the clean set to make one from) is not laid out as expected."""


def corrupt(image: np.ndarray, corruption: str, severity: int, *, seed: int) -> np.ndarray:
    """``image`` (``(H, W, 3)`` uint8, H and W >= 32) corrupted by ``corruption`` at ``severity`` 1-5.

    The same ``seed`` gives the same result.  imagecorruptions draws from NumPy's global random
    state; it is seeded for the call and restored afterwards.

    Raises:
        ValueError: an unknown corruption, a severity outside 1-5, or an image of the wrong
            shape, type or size.
    """
    known = CORRUPTIONS + EXTRA_CORRUPTIONS
    if corruption not in known:
        raise ValueError(f"unknown corruption {corruption!r}; expected one of {', '.join(known)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if min(image.shape[:2]) < MIN_SIZE:
        raise ValueError(f"the corruptions need images of at least {MIN_SIZE}x{MIN_SIZE} px, got {image.shape[1]}x{image.shape[0]}")
    from spacetorch.data._imagecorruptions_fixes import corrupt as library_corrupt

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        result: np.ndarray = library_corrupt(image, severity=severity, corruption_name=corruption)
    finally:
        np.random.set_state(state)
    return result


def _seed(seed: int, relative: str, corruption: str, severity: int) -> int:
    """An image's own seed, whatever the order or the process it is made in."""
    key = [seed, zlib.crc32(relative.encode()), zlib.crc32(corruption.encode()), severity]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


@dataclass(frozen=True)
class _Job:
    source: Path
    relative: str  # <class>/<image file name>, the source's
    target: str  # <class>/<stem>.png, in every severity folder
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    size: int | None
    seed: int
    out: Path


def class_folders(folder: Path) -> list[Path]:
    """The class sub-folders of ``folder`` in label order (:func:`spacetorch.data.folders.class_names`;
    none when it holds none)."""
    from spacetorch.data.folders import class_names

    try:
        return [folder / name for name in class_names(folder)]
    except FileNotFoundError:
        return []


def _clean_images(source: Path) -> list[tuple[Path, str, str]]:
    """``(path, <class>/<file>, <class>/<stem>.png)`` of every image of the ImageFolder ``source``."""
    if not source.is_dir():
        raise CorruptedSetError(f"{source} is not a directory (expected an ImageFolder: <class>/<image>)")
    classes = class_folders(source)
    if not classes:
        raise CorruptedSetError(f"{source} has no class folders (expected an ImageFolder: <class>/<image>)")
    images = []
    for folder in classes:
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not found:
            raise CorruptedSetError(f"{folder} has no images (suffixes {', '.join(IMAGE_SUFFIXES)})")
        targets: dict[str, Path] = {}
        for path in found:
            target = f"{folder.name}/{path.stem}.png"
            if target in targets:
                raise CorruptedSetError(f"{path} and {targets[target]} would both be written as {target}; rename one")
            targets[target] = path
            images.append((path, f"{folder.name}/{path.name}", target))
    return images


def _load(path: Path, size: int | None) -> np.ndarray:
    """Raises :class:`~spacetorch.data.image_check.UnreadableImageError` for a damaged image."""
    from PIL import Image

    from spacetorch.data.image_check import open_image

    image = open_image(path)
    if size is not None:
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        left, top = (width - size) // 2, (height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    if min(image.size) < MIN_SIZE:
        raise CorruptedSetError(
            f"{path} is {image.width}x{image.height} px; the corruptions need at least {MIN_SIZE}x{MIN_SIZE} (resize with size=)"
        )
    return np.asarray(image)


def _make(job: _Job) -> int:
    """Write every corrupted version of one image that is not there yet; return how many were written."""
    from PIL import Image

    image: np.ndarray | None = None
    written = 0
    for corruption in job.corruptions:
        for severity in job.severities:
            path = job.out / corruption / str(severity) / job.target
            if path.exists():
                continue
            if image is None:
                image = _load(job.source, job.size)
            picture = Image.fromarray(corrupt(image, corruption, severity, seed=_seed(job.seed, job.relative, corruption, severity)))
            atomic_write(path, partial(picture.save, format="PNG"))
            written += 1
    return written


def _worker_init() -> None:
    import signal

    import cv2

    cv2.setNumThreads(1)  # one image per process; the processes are the parallelism
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends the pool


def make_corrupted_folder(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    corruptions: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    size: int | None = None,
    seed: int = 0,
    workers: int = 0,
    overwrite: bool = False,
    progress: Callable[[Iterable[int], int], Iterable[int]] | None = None,
) -> Path:
    """Make ``out/<corruption>/<severity>/<class>/<stem>.png`` from the clean ImageFolder ``source``.

    Args:
        corruptions: names from :data:`CORRUPTIONS` (default: all fifteen) or :data:`EXTRA_CORRUPTIONS`.
        severities: a subset of 1-5.
        size: resize the shorter side to ``size`` and centre-crop a square first (``None``:
            keep each image's size; the corruptions need at least 32 px).
        seed: every image gets its own seed derived from this one, its path, the corruption
            and the severity, so the set does not depend on ``workers`` or on interruptions.
        workers: processes (0: this one).
        overwrite: replace an existing ``out`` (and an unfinished ``out.partial``).
        progress: wraps the iterator of finished source images (e.g. a tqdm), given their count.

    The set is made in ``out.partial`` and renamed to ``out`` when complete, with a
    ``corruptions.json`` of its settings.  After an interruption, the same call continues
    where it stopped; different settings are refused (``overwrite`` starts again).

    Raises:
        CorruptedSetError: ``source`` is not an ImageFolder of images of at least 32 px, or
            ``out`` exists (without ``overwrite``), or ``out.partial`` was started with other settings.
        ValueError: unknown corruptions or severities.
    """
    source, out = Path(source), Path(out)
    known = CORRUPTIONS + EXTRA_CORRUPTIONS
    unknown = [c for c in corruptions if c not in known]
    if unknown:
        raise ValueError(f"unknown corruption(s) {', '.join(unknown)}; expected names from {', '.join(known)}")
    if not corruptions or len(set(corruptions)) != len(corruptions):
        raise ValueError(f"corruptions must be distinct names, at least one; got {list(corruptions)}")
    if not severities or any(s not in SEVERITIES for s in severities) or len(set(severities)) != len(severities):
        raise ValueError(f"severities must be distinct values of {SEVERITIES}; got {list(severities)}")
    if size is not None and size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} px (the corruptions' minimum), got {size}")
    if out.exists() and not overwrite:
        raise CorruptedSetError(f"{out} exists; choose another output or overwrite it")
    check_apart(out, "out", {"source": source})
    unfinished = out.with_name(out.name + PARTIAL_SUFFIX)
    for folder in (out, unfinished):  # replaced only if they are corrupted sets, and nothing else
        try:
            check_replaceable(folder, MANIFEST, lambda name: name in known, "corrupted set")
        except FileExistsError as err:
            raise CorruptedSetError(str(err)) from None
    images = _clean_images(source)
    settings: dict[str, Any] = {
        "source": str(source.resolve()),
        "images": len(images),
        "corruptions": list(corruptions),
        "severities": list(severities),
        "size": size,
        "seed": seed,
        "library": "imagecorruptions " + _library_version(),
    }
    if unfinished.exists() and overwrite:
        remove_own_folder(unfinished, MANIFEST)
    if unfinished.exists():
        started = _read_manifest(unfinished)
        differing = sorted(k for k in settings if started.get(k) != settings[k])
        if differing:
            changes = "; ".join(f"{k}: {started.get(k)!r} then, {settings[k]!r} now" for k in differing)
            raise CorruptedSetError(
                f"{unfinished} is an unfinished set made with other settings ({changes}); "
                "run with the same settings to finish it, or overwrite to start again"
            )
    else:
        unfinished.mkdir(parents=True)
        atomic_write(unfinished / MANIFEST, lambda file: file.write(json.dumps(settings, indent=1).encode()))
    jobs = [_Job(path, relative, target, tuple(corruptions), tuple(severities), size, seed, unfinished) for path, relative, target in images]
    finished: Iterable[int]
    if workers > 0:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
        finished = pool.imap_unordered(_make, jobs, chunksize=1)
    else:
        pool = None
        finished = map(_make, jobs)
    try:
        for _ in progress(finished, len(jobs)) if progress is not None else finished:
            pass
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if out.exists():
        remove_own_folder(out, MANIFEST)
    publish(unfinished, out)
    return out


def _library_version() -> str:
    from importlib.metadata import version

    return version("imagecorruptions")


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptedSetError(f"{folder / MANIFEST}: unreadable ({err}); overwrite to start again") from None
    return manifest


def corruption_folders(
    root: str | os.PathLike[str], *, corruptions: Sequence[str] | None = None, severities: Sequence[int] = SEVERITIES
) -> dict[tuple[str, int], Path]:
    """The ImageFolders of the corrupted set ``root``, by ``(corruption, severity)``, checked.

    Args:
        corruptions: the corruption folders to take (default: every folder of ``root``, the
            fifteen benchmark ones first in their usual order, then others by name).
        severities: the severity folders every corruption folder must have.

    Raises:
        CorruptedSetError: naming the path: ``root`` is missing or unfinished, a corruption or
            severity folder is missing, or the folders do not hold the same classes.
    """
    root = Path(root)
    if root.name.endswith(PARTIAL_SUFFIX):
        raise CorruptedSetError(f"{root} is an unfinished corrupted set; run the command that made it again to finish it")
    if not root.is_dir():
        raise CorruptedSetError(f"{root} is not a directory (expected <corruption>/<severity>/<class>/<image>, as Tiny-ImageNet-C)")
    present = [p.name for p in class_folders(root)]
    if corruptions is None:
        corruptions = [c for c in CORRUPTIONS if c in present] + [c for c in present if c not in CORRUPTIONS]
        if not corruptions:
            raise CorruptedSetError(f"{root} holds no corruption folders (expected <corruption>/<severity>/<class>/<image>, as Tiny-ImageNet-C)")
    folders: dict[tuple[str, int], Path] = {}
    classes: tuple[list[str], Path] | None = None
    for corruption in corruptions:
        if corruption not in present:
            raise CorruptedSetError(f"{root / corruption} does not exist; the corruption folders of {root} are: {', '.join(present) or 'none'}")
        for severity in severities:
            folder = root / corruption / str(severity)
            if not folder.is_dir():
                found = sorted(p.name for p in (root / corruption).iterdir() if p.is_dir())
                raise CorruptedSetError(
                    f"{folder}: missing severity folder {severity} (found: {', '.join(found) or 'none'}); "
                    f"every corruption folder needs severities {', '.join(map(str, severities))}"
                )
            names = [p.name for p in class_folders(folder)]
            if classes is None:
                classes = (names, folder)
            elif names != classes[0]:
                extra, missing = sorted(set(names) - set(classes[0])), sorted(set(classes[0]) - set(names))
                raise CorruptedSetError(
                    f"{folder} has other class folders than {classes[1]}"
                    + (f"; not in the latter: {', '.join(extra[:5])}" if extra else "")
                    + (f"; missing: {', '.join(missing[:5])}" if missing else "")
                )
            folders[corruption, severity] = folder
    return folders
