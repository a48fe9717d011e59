"""Class folders named by numbers (ImageNet-V2) are taken in numeric order, everywhere a folder is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.data.folders import ClassFolder, class_names, numeric_order_note


def _folder(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), int(name) % 256 if name.isdigit() else 0, np.uint8)).save(root / name / "x.png")
    (root / ".hidden").mkdir()
    return root


def test_numbered_class_folders_are_labelled_by_their_number(tmp_path: Path) -> None:
    root = _folder(tmp_path / "v2", [str(i) for i in range(12)])
    assert class_names(root) == [str(i) for i in range(12)]  # as text: 0, 1, 10, 11, 2, ...
    dataset = ClassFolder(root)
    assert all(dataset.classes[label] == Path(path).parent.name == str(label) for path, label in dataset.samples)
    assert "numeric order" in numeric_order_note(dataset.classes, "--data")


def test_named_class_folders_keep_their_text_order(tmp_path: Path) -> None:
    root = _folder(tmp_path / "named", ["b10", "a", "b2"])
    assert class_names(root) == ["a", "b10", "b2"]
    assert numeric_order_note(class_names(root), "--data") == ""
    assert numeric_order_note(["0", "1", "2"], "--data") == ""  # the same in both orders: nothing to say
    with pytest.raises(FileNotFoundError, match="couldn't find any class folder"):
        class_names(tmp_path / "named" / "a")


def test_the_commands_read_numbered_folders_in_numeric_order(tmp_path: Path) -> None:
    from spacetorch.data.corruptions import class_folders
    from spacetorch.stimuli import ImageFolderStimuli

    root = _folder(tmp_path / "v2", [str(i) for i in range(11)])
    assert [p.name for p in class_folders(root)] == [str(i) for i in range(11)]
    stimuli = ImageFolderStimuli(root, size=8)
    assert stimuli.categories == [str(i) for i in range(11)]
    assert [stimuli.categories[label] for label in stimuli.labels] == [Path(p).parent.name for p in stimuli.paths]
