"""Datasets users hold in other layouts, written as the ImageFolders the configs read.

* Tiny-ImageNet's validation split: ``val/images/*.JPEG`` with ``val/val_annotations.txt``
  (file, class id, box) becomes one folder per class id (the training split already is one);
* torchvision's MNIST and Fashion-MNIST files (IDX: ``train-images-idx3-ubyte[.gz]`` ...) and
  CIFAR-10's Python batches (``cifar-10-batches-py/data_batch_1`` ...) become 8-bit PNGs, one
  folder per class, named so that sorting them gives the label order (``0`` ... ``9``;
  ``0_t-shirt_top`` ...; CIFAR-10's names already sort in label order).

Every conversion builds the folder under a temporary name and gives it its name when complete.
CIFAR-10's batches are pickles: they are read by an unpickler that admits only numpy arrays and
builtin values, so a file naming anything else is refused, not run.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from spacetorch._files import contained

__all__ = ["FASHION_MNIST_CLASSES", "KINDS", "ConversionError", "convert", "read_idx"]

FASHION_MNIST_CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
_IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

Progress = Callable[[int, int], None]


class ConversionError(ValueError):
    """A source that is not in the layout it should be in (naming the file and what was expected)."""


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), plain or gzipped.

    Raises:
        ConversionError: not an IDX file, or shorter than its header says.
    """
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (gzip.BadGzipFile, EOFError) as err:
        raise ConversionError(f"{path}: not a gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ConversionError(f"{path}: not an IDX file (it starts with {raw[:4].hex()})")
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    size = int(np.prod(shape)) * dtype.itemsize
    start = 4 + 4 * dims
    if len(raw) < start + size:
        raise ConversionError(f"{path}: {len(raw) - start} bytes of data for shape {shape}, expected {size}")
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)), offset=start).reshape(shape)


def _find(root: Path, names: list[str], what: str) -> Path:
    candidates = [root / name for name in names] + [p for name in names for p in root.glob(f"*/raw/{name}")]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise ConversionError(f"{root}: no {what} ({' or '.join(names)}, here or in */raw/)")
    return found


def _idx_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(root, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz"], f"{split} images"))
    labels = read_idx(_find(root, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels-idx1-ubyte.gz"], f"{split} labels"))
    if images.ndim != 3 or labels.shape != (len(images),):
        raise ConversionError(f"{root}: {split} images {images.shape} and labels {labels.shape} do not pair up")
    return images, labels.astype(np.int64)


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        from spacetorch._pickle import numpy_globals

        allowed = numpy_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]()
        raise pickle.UnpicklingError(f"the file names {module}.{name}; a CIFAR batch holds only numpy arrays and lists")


def _cifar_batch(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            batch = _ArraysOnly(file, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise ConversionError(f"{path}: not a CIFAR-10 batch ({err})") from None
    if not isinstance(batch, dict):
        raise ConversionError(f"{path}: not a CIFAR-10 batch (a {type(batch).__name__}, not a dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _cifar_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing or not (folder / "batches.meta").is_file():
        raise ConversionError(f"{folder}: no CIFAR-10 {split} batches {missing or ['batches.meta']}")
    batches = [_cifar_batch(folder / n) for n in names]
    try:
        data = np.concatenate([np.asarray(b["data"], dtype=np.uint8).reshape(-1, 3, 32, 32) for b in batches])
        labels = np.concatenate([np.asarray(b["labels"], dtype=np.int64) for b in batches])
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in _cifar_batch(folder / "batches.meta")["label_names"]]
    except (KeyError, ValueError) as err:
        raise ConversionError(f"{folder}: a batch lacks CIFAR-10's data, labels or label_names ({err})") from None
    if len(data) != len(labels):
        raise ConversionError(f"{folder}: {len(data)} images and {len(labels)} labels")
    return data.transpose(0, 2, 3, 1), labels, classes


def _write_images(images: np.ndarray, labels: np.ndarray, classes: list[str], out: Path, split: str,
                  progress: Progress | None) -> Iterator[None]:  # fmt: skip
    from PIL import Image

    for name in classes:
        (out / name).mkdir()
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(np.ascontiguousarray(image)).save(out / classes[label] / f"{split}_{index:05d}.png")
        if progress is not None and (index % 500 == 0 or index == len(images) - 1):
            progress(index + 1, len(images))
        yield


def _tiny_imagenet_rows(root: Path, out: Path) -> tuple[Path, list[list[str]]]:
    """Tiny-ImageNet's validation folder and its annotation rows, checked before anything is
    written: every file and class id a plain name that stays inside ``out``, every image there."""
    val = root / "val" if (root / "val" / "val_annotations.txt").is_file() else root
    annotations = val / "val_annotations.txt"
    if not annotations.is_file():
        raise ConversionError(f"{root}: no val_annotations.txt (here or in val/): is it Tiny-ImageNet's validation split?")
    rows = [line.split("\t") for line in annotations.read_text().splitlines() if line.strip()]
    bad = next((i for i, row in enumerate(rows, 1) if len(row) < 2), None)
    if bad is not None:
        raise ConversionError(f"{annotations}, line {bad}: expected 'file<TAB>class id<TAB>box'")
    for line, (name, wnid, *_) in enumerate(rows, 1):  # names from the file stay inside images/ and the output
        if "/" in wnid or "/" in name:
            raise ConversionError(f"{annotations}, line {line}: file {name!r} and class id {wnid!r} must be plain names")
        try:
            contained(val / "images", name)
            contained(out, f"{wnid}/{name}")
        except ValueError as err:
            raise ConversionError(f"{annotations}, line {line}: {err}") from None
    missing = [row[0] for row in rows if not (val / "images" / row[0]).is_file()]
    if missing:
        raise ConversionError(f"{annotations} lists {len(missing)} image(s) not in {val / 'images'}, e.g. {missing[0]}")
    return val, rows


def _copy_tiny_imagenet(val: Path, rows: list[list[str]], out: Path, link: bool, progress: Progress | None) -> Iterator[None]:
    for index, (name, wnid, *_) in enumerate(rows):
        target = contained(out, f"{wnid}/{name}")
        target.parent.mkdir(exist_ok=True)
        (os.link if link else shutil.copyfile)(val / "images" / name, target)
        if progress is not None and (index % 500 == 0 or index == len(rows) - 1):
            progress(index + 1, len(rows))
        yield


#: what :func:`convert` converts, and whether a split applies
KINDS = {"tiny-imagenet-val": False, "mnist": True, "fashion-mnist": True, "cifar10": True}


def convert(kind: str, source: str | os.PathLike[str], out: str | os.PathLike[str], *, split: str = "train",
            link: bool = False, progress: Progress | None = None) -> Path:  # fmt: skip
    """Write ``source`` (a ``kind`` of :data:`KINDS`) as an ImageFolder at ``out``, all or nothing.

    Args:
        split: ``"train"`` or ``"test"`` (MNIST, Fashion-MNIST, CIFAR-10).
        link: hard-link Tiny-ImageNet's images instead of copying them (same file system).

    Raises:
        ConversionError: a source not in the expected layout, naming the file.
        ValueError: an unknown kind or split.
    """
    from spacetorch._files import atomic_directory

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise ConversionError(f"{source} is not a directory")
    # the source is read and checked whole before the output's folder is made
    write: Callable[[Path], Iterator[None]]
    if kind == "tiny-imagenet-val":
        val, rows = _tiny_imagenet_rows(source, out)
        write = lambda folder: _copy_tiny_imagenet(val, rows, folder, link, progress)  # noqa: E731
    else:
        if kind == "cifar10":
            images, labels, classes = _cifar_split(source, split)
        else:
            images, labels = _idx_split(source, split)
            classes = [str(i) for i in range(10)] if kind == "mnist" else [f"{i}_{n}" for i, n in enumerate(FASHION_MNIST_CLASSES)]
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ConversionError(f"labels {labels.min()} .. {labels.max()} outside the {len(classes)} classes")
        write = lambda folder: _write_images(images, labels, classes, folder, split, progress)  # noqa: E731
    with atomic_directory(out) as folder:
        for _ in write(folder):
            pass
    return out
