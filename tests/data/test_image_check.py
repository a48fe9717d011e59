"""Finding the images of a folder that cannot be decoded, and setting them aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.cli.check_images import main
from spacetorch.data.image_check import find_unreadable_images


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[Path]]:
    """An ImageFolder with 5 good images and 3 damaged ones; returns (root, damaged)."""
    root = tmp_path / "train"
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / label / f"{i}.jpg")
    cut = root / "cat" / "0.jpg"
    cut.write_bytes(cut.read_bytes()[:300])
    empty = root / "dog" / "empty.png"
    empty.write_bytes(b"")
    text = root / "dog" / "notes.JPEG"
    text.write_text("not an image")
    (root / "dog" / "README.txt").write_text("not an image file name: ignored")
    return root, sorted([cut, empty, text])


@pytest.mark.parametrize("workers", [1, 2])
def test_exactly_the_damaged_images_are_found(folder: tuple[Path, list[Path]], workers: int) -> None:
    root, damaged = folder
    found = find_unreadable_images(root, workers=workers)
    assert [path for path, _ in found] == damaged
    assert all(reason.split(":")[0] in ("OSError", "UnidentifiedImageError") for _, reason in found)


def test_the_command_lists_them_and_moves_them_aside(folder: tuple[Path, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, damaged = folder
    assert main([str(root), "--quiet"]) == 1
    out = capsys.readouterr()
    assert [line.split(": ")[0] for line in out.out.splitlines()] == [str(p) for p in damaged]
    assert "3 of 8 images under" in out.err
    aside = tmp_path / "bad"
    assert main([str(root), "--quiet", "--move-to", str(aside)]) == 1
    assert sorted(p.relative_to(aside) for p in aside.rglob("*") if p.is_file()) == [p.relative_to(root) for p in damaged]
    assert main([str(root), "--quiet"]) == 0
    assert "0 of 5 images" in capsys.readouterr().err


def test_a_missing_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "nowhere")])
    assert stop.value.code == 2
    assert "nowhere is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 1])
def test_a_damaged_image_in_an_evaluation_folder_is_named_in_one_line(tmp_path: Path, workers: int) -> None:
    """The one reader of evaluation and stimulus folders names the file, also from a DataLoader worker."""
    import torch
    from torchvision import datasets, transforms

    from spacetorch.data.image_check import UnreadableImageError, one_line, open_image

    (tmp_path / "cat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cat" / "fine.png")
    bad = tmp_path / "cat" / "truncated.jpg"
    Image.new("RGB", (64, 64), "red").save(bad)
    bad.write_bytes(bad.read_bytes()[:200])
    assert open_image(tmp_path / "cat" / "fine.png", "L").mode == "L"
    folder = datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor(), loader=open_image)
    with pytest.raises(UnreadableImageError) as raised:
        for _ in torch.utils.data.DataLoader(folder, batch_size=1, num_workers=workers):
            pass
    message = one_line(raised.value)
    assert message.startswith(f"{bad}: cannot read this image (OSError: ") and "\n" not in message
    assert message.endswith(f"`spacetorch check-images {tmp_path}` (--move-to DIR sets them aside)")


def test_moving_aside_never_replaces_a_file_already_there(folder: tuple[Path, list[Path]], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root, damaged = folder
    aside = tmp_path / "bad"
    taken = aside / damaged[-1].relative_to(root)
    taken.parent.mkdir(parents=True)
    taken.write_text("the user's own file")
    with pytest.raises(SystemExit) as stop:
        main([str(root), "--quiet", "--move-to", str(aside)])
    assert stop.value.code == 2
    assert f"1 place(s) are taken already, e.g. {taken}; nothing was moved" in capsys.readouterr().err
    assert taken.read_text() == "the user's own file"
    assert all(path.exists() for path in damaged), "nothing moved"
    (tmp_path / "a file").write_text("x")
    with pytest.raises(SystemExit) as stop:
        main([str(root), "--quiet", "--move-to", str(tmp_path / "a file")])
    assert stop.value.code == 2 and "is a file" in capsys.readouterr().err
