"""A user's labelled images: one sub-folder per category (e.g. the fLoc category set)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ImageFolderStimuli"]


class ImageFolderStimuli(Dataset[tuple[torch.Tensor, int]]):
    """Images under ``root/<category>/*``, resized and centre-cropped to ``size``, in ``[0, 1]``.

    Item ``i`` is ``(image (3, size, size) float32, label)``; ``categories[label]`` names the
    category and ``labels`` holds every image's label (numpy, in item order).  Any format
    Pillow reads is accepted; greyscale images are converted to RGB.

    Raises:
        FileNotFoundError: ``root`` does not exist, or holds no category folder with images.
    """

    def __init__(self, root: str | os.PathLike[str], size: int = 224) -> None:
        from torchvision import transforms

        from spacetorch.data.folders import ClassFolder
        from spacetorch.data.image_check import open_image

        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        if not 8 <= size <= 4096:
            raise ValueError(f"size must be 8 to 4096 px, got {size}")
        transform = transforms.Compose(
            [
                transforms.Lambda(lambda image: image.convert("RGB")),
                transforms.Resize(size),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
            ]
        )
        try:
            self._folder = ClassFolder(root, transform=transform, loader=open_image, allow_empty=False)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"image folder {root}: expected one sub-folder per category holding images ({err})"
            ) from None
        self.root = root
        self.size = size
        self.categories: list[str] = list(self._folder.classes)
        self.labels = np.asarray(self._folder.targets, dtype=np.int64)
        self.paths: list[str] = [path for path, _ in self._folder.samples]

    def __len__(self) -> int:
        return len(self._folder)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self._folder[index]
        return image, int(label)
