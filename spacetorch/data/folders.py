"""Class folders in the order of their labels.

An ImageFolder's classes are its sub-folders sorted by name, as text.  ImageNet-V2 names its
1,000 class folders ``0`` .. ``999`` after the label, so text order (``0, 1, 10, 100, ...``)
gives wrong labels to 990 of them.  Here, when every class folder's name is a whole number, the
folders are taken in numeric order instead; :func:`numeric_order_note` says so in one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torchvision import datasets

__all__ = ["ClassFolder", "class_names", "numeric_order_note"]


def _numeric(names: list[str]) -> bool:
    return bool(names) and all(name.isdigit() for name in names)


def class_names(root: str | os.PathLike[str]) -> list[str]:
    """The class sub-folders of ``root`` (hidden ones left out), in label order.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds no class folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a directory")
    names = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not names:
        raise FileNotFoundError(f"couldn't find any class folder in {root}")
    return sorted(names, key=int) if _numeric(names) else names


def numeric_order_note(names: list[str], flag: str) -> str:
    """One line saying that ``names`` were taken in numeric order; empty when they are not numbers."""
    if not _numeric(names) or names == sorted(names):
        return ""
    return (f"note: the class folders of {flag} are numbers ({names[0]} .. {names[-1]}); they are taken in numeric "
            "order (as ImageNet-V2's labels), not as text")  # fmt: skip


class ClassFolder(datasets.ImageFolder):  # type: ignore[misc]  # torchvision has no type information
    """``torchvision.datasets.ImageFolder`` with the classes of :func:`class_names`."""

    def find_classes(self, directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
        classes = class_names(directory)
        return classes, {name: index for index, name in enumerate(classes)}

    def __init__(self, root: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(str(root), **kwargs)
