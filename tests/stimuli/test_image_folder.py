"""ImageFolderStimuli: user images with category labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.stimuli import ImageFolderStimuli


def test_categories_labels_and_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for category, n in [("faces", 3), ("bodies", 2)]:
        (tmp_path / category).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(tmp_path / category / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (50, 50), dtype=np.uint8)).save(tmp_path / "faces" / "grey.jpg")
    stimuli = ImageFolderStimuli(tmp_path, size=32)
    assert stimuli.categories == ["bodies", "faces"]
    assert stimuli.labels.tolist() == [0, 0, 1, 1, 1, 1]
    image, label = stimuli[5]
    assert image.shape == (3, 32, 32) and label == 1 and 0 <= float(image.min()) <= float(image.max()) <= 1


def test_missing_or_empty_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist"):
        ImageFolderStimuli(tmp_path / "nowhere")
    (tmp_path / "empty" / "faces").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="expected one sub-folder per category holding images"):
        ImageFolderStimuli(tmp_path / "empty")
