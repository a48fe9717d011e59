"""Dead-leaves images: seeded, natural-like statistics, and an ImageFolder written whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.data.dead_leaves import dead_leaves_image, make_dead_leaves_folder

from model_helpers import exit_code

SIZE = 128


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [dead_leaves_image(SIZE, np.random.default_rng(seed)).astype(np.float64).mean(-1) for seed in range(12)]


def test_the_same_seed_gives_the_same_image() -> None:
    a, b = (dead_leaves_image(64, np.random.default_rng(7)) for _ in range(2))
    c = dead_leaves_image(64, np.random.default_rng(8))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_power_spectrum_falls_as_about_one_over_f_squared(images: list[np.ndarray]) -> None:
    fy, fx = np.meshgrid(np.fft.fftfreq(SIZE), np.fft.fftfreq(SIZE), indexing="ij")
    ring = np.rint(np.hypot(fx, fy) * SIZE).astype(int).ravel()
    spectrum = np.zeros(ring.max() + 1)
    for image in images:
        power = np.abs(np.fft.fft2(image - image.mean())) ** 2
        spectrum += np.bincount(ring, power.ravel()) / np.bincount(ring)
    k = np.arange(4, SIZE // 4)
    slope = np.polyfit(np.log(k), np.log(spectrum[k]), 1)[0]
    assert -2.6 < slope < -1.6, f"power spectrum slope {slope:.2f}, natural images have about -2"


def test_edges_come_at_every_orientation(images: list[np.ndarray]) -> None:
    """Spectral energy between 4 and SIZE/4 cycles per image, in 8 orientation bins centred on
    0, 22.5, ... 157.5 deg (Fourier orientation, free of the pixel grid's gradient bias)."""
    fy, fx = np.meshgrid(np.fft.fftfreq(SIZE), np.fft.fftfreq(SIZE), indexing="ij")
    radius = np.hypot(fx, fy) * SIZE
    band = (radius >= 4) & (radius < SIZE // 4)
    bins = (np.rint(np.degrees(np.arctan2(fy, fx)) % 180 / 22.5).astype(int) % 8)[band]
    energy = np.zeros(8)
    for image in images:
        power = np.abs(np.fft.fft2(image - image.mean())) ** 2
        energy += np.bincount(bins, weights=power[band], minlength=8) / np.bincount(bins, minlength=8)
    share = energy / energy.mean()
    assert share.min() > 0.7 and share.max() < 1.3, f"orientation energy per 22.5 deg bin / mean: {np.round(share, 2)}"


def test_the_folder_is_an_image_folder_written_whole(tmp_path: Path) -> None:
    out = make_dead_leaves_folder(tmp_path / "leaves", n_train=3, n_val=2, size=32, seed=1)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "train/dead_leaves/00000.png", "train/dead_leaves/00001.png", "train/dead_leaves/00002.png",
        "val/dead_leaves/00000.png", "val/dead_leaves/00001.png",
    ]
    assert Image.open(out / "train" / "dead_leaves" / "00000.png").size == (32, 32)
    with pytest.raises(FileExistsError, match="leaves exists"):
        make_dead_leaves_folder(out, n_train=1, n_val=0, size=32)
    assert [p.name for p in tmp_path.iterdir()] == ["leaves"], "no temporary left behind"


def test_the_set_is_the_same_for_any_number_of_workers(tmp_path: Path) -> None:
    one = make_dead_leaves_folder(tmp_path / "one", n_train=5, n_val=2, size=24, seed=3)
    two = make_dead_leaves_folder(tmp_path / "two", n_train=5, n_val=2, size=24, seed=3, workers=2)
    names = sorted(p.relative_to(one).as_posix() for p in one.rglob("*.png"))
    assert names == sorted(p.relative_to(two).as_posix() for p in two.rglob("*.png"))
    for name in names:
        assert np.array_equal(np.asarray(Image.open(one / name)), np.asarray(Image.open(two / name))), name
    first_val = np.asarray(Image.open(one / "val" / "dead_leaves" / "00000.png"))
    assert np.array_equal(first_val, dead_leaves_image(24, np.random.default_rng([3, 5]))), "val continues train's seeds"
    with pytest.raises(ValueError, match="workers >= 1"):
        make_dead_leaves_folder(tmp_path / "none", n_train=1, n_val=0, size=24, workers=0)


@pytest.mark.parametrize("source, classes", [("dead-leaves", ["dead_leaves"]), ("photos", None)])
def test_make_demo_dataset_makes_either_source(tmp_path: Path, source: str, classes: list[str] | None, capsys) -> None:
    from spacetorch.cli.make_demo_dataset import main
    from spacetorch.data import DEMO_PHOTOS

    out = tmp_path / source
    assert main(["--source", source, "--out", str(out), "--n-train", "16", "--n-val", "2", "--size", "48", "--quiet"]) == 0
    assert "wrote 18 images" in capsys.readouterr().out
    expected = classes or sorted(Path(name).stem for name in DEMO_PHOTOS)
    assert sorted(p.name for p in (out / "train").iterdir()) == expected
    assert exit_code(main, ["--source", source, "--out", str(out), "--quiet"]) == 2, "an existing folder is refused"


def test_whole_photographs_for_on_the_fly_crops(tmp_path: Path) -> None:
    """--whole: every training image is a whole photograph (shorter side = size, aspect kept),
    the photographs in turn; the validation images stay square crops."""
    from spacetorch.cli.make_demo_dataset import main
    from spacetorch.data import DEMO_PHOTOS
    from spacetorch.data.demo_images import photo_path

    out = tmp_path / "whole"
    n_train = 2 * len(DEMO_PHOTOS) + 1
    assert main(["--whole", "--out", str(out), "--n-train", str(n_train), "--n-val", "3", "--size", "40", "--quiet"]) == 0
    train = sorted((out / "train").rglob("*.jpg"))
    assert len(train) == n_train
    for photo in DEMO_PHOTOS:
        copies = sorted((out / "train" / Path(photo).stem).glob("*.jpg"))
        assert len(copies) in (2, 3)
        width, height = Image.open(photo_path(photo)).size
        image = Image.open(copies[0])
        assert min(image.size) == 40
        assert image.size[0] / image.size[1] == pytest.approx(width / height, rel=0.05), photo
        # the whole photograph, not a crop: its mean colour is the photograph's
        original = np.asarray(Image.open(photo_path(photo)).convert("RGB").resize(image.size), dtype=float)
        assert np.abs(np.asarray(image, dtype=float).mean((0, 1)) - original.mean((0, 1))).max() < 4, photo
    assert all(Image.open(p).size == (40, 40) for p in (out / "val").rglob("*.jpg"))
    assert exit_code(main, ["--whole", "--source", "dead-leaves", "--out", str(tmp_path / "dl")]) == 2
