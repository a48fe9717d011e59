"""Corrupted image sets: the imagecorruptions fixes against the library's own code, every
corruption at every severity, making a set (resumable, independent of the worker count) and
checking a set's layout."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import skimage.data
import skimage.filters
from PIL import Image

from spacetorch.data._imagecorruptions_fixes import plasma_fractal
from spacetorch.data.corruptions import (
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    CorruptedSetError,
    corrupt,
    corruption_folders,
    make_corrupted_folder,
)


def _fresh_library() -> ModuleType:
    """imagecorruptions.corruptions as released, without spacetorch's fixes."""
    spec = importlib.util.find_spec("imagecorruptions.corruptions")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.warns((DeprecationWarning, UserWarning)):  # pkg_resources, scipy.ndimage.interpolation
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize((64, 64), Image.Resampling.BILINEAR))


@pytest.mark.parametrize(("mapsize", "decay"), [(8, 3.0), (64, 2.0), (256, 1.4)])
def test_plasma_fractal_equals_the_released_generator(monkeypatch: pytest.MonkeyPatch, mapsize: int, decay: float) -> None:
    released = _fresh_library()
    monkeypatch.setattr(np, "float_", np.float64, raising=False)  # what the release needs to run
    np.random.seed(7)
    expected = released.plasma_fractal(mapsize=mapsize, wibbledecay=decay)
    np.random.seed(7)
    ours = plasma_fractal(mapsize, decay)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    assert ours.min() == 0.0 and ours.max() == 1.0


def test_plasma_fractal_needs_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two, got 48"):
        plasma_fractal(48)


def test_the_blur_fix_passes_channel_axis() -> None:
    import imagecorruptions.corruptions as library

    image = np.random.default_rng(0).random((20, 24, 3))
    np.testing.assert_array_equal(
        library.gaussian(image, sigma=2, multichannel=True), skimage.filters.gaussian(image, sigma=2, channel_axis=-1)
    )
    np.testing.assert_array_equal(
        library.gaussian(image[..., 0], sigma=1.5), skimage.filters.gaussian(image[..., 0], sigma=1.5, channel_axis=None)
    )


@pytest.mark.parametrize("name", CORRUPTIONS + EXTRA_CORRUPTIONS)
def test_every_corruption_at_every_severity_is_reproducible(photo: np.ndarray, name: str) -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for severity in range(1, 6):
        result = corrupt(photo, name, severity, seed=severity)
        assert result.shape == photo.shape and result.dtype == np.uint8
        assert np.abs(result.astype(int) - photo).mean() > 0.5, (name, severity)
        np.testing.assert_array_equal(corrupt(photo, name, severity, seed=severity), result)
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # the global state is given back


def test_glass_blur_blurs(photo: np.ndarray) -> None:
    def roughness(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image.astype(float), axis=1)).mean())

    assert roughness(corrupt(photo, "glass_blur", 5, seed=0)) < 0.6 * roughness(photo)


@pytest.mark.parametrize(
    ("name", "severity", "shape", "message"),
    [
        ("rain", 1, (64, 64, 3), "unknown corruption 'rain'"),
        ("fog", 6, (64, 64, 3), r"severity must be one of \(1, 2, 3, 4, 5\), got 6"),
        ("fog", 1, (64, 31, 3), "at least 32x32 px, got 31x64"),
        ("fog", 1, (64, 64), r"expected an \(H, W, 3\) uint8 image"),
    ],
)
def test_corrupt_names_what_is_wrong(name: str, severity: int, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corrupt(np.zeros(shape, np.uint8), name, severity, seed=0)


def _clean_folder(root: Path, size: tuple[int, int] = (48, 40)) -> Path:
    rng = np.random.default_rng(0)
    for label in ("ant", "bee"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / label / f"{label}{i}.jpg")
    return root


SETTINGS = {"corruptions": ("fog", "glass_blur"), "severities": (1, 3)}


def _pictures(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_a_made_set_has_the_layout_and_does_not_depend_on_workers(tmp_path: Path) -> None:
    clean = _clean_folder(tmp_path / "clean")
    serial = make_corrupted_folder(clean, tmp_path / "serial", **SETTINGS)  # type: ignore[arg-type]
    parallel = make_corrupted_folder(clean, tmp_path / "parallel", workers=2, **SETTINGS)  # type: ignore[arg-type]
    pictures = _pictures(serial)
    assert sorted(pictures) == sorted(
        f"{c}/{s}/{label}/{label}{i}.png" for c in ("fog", "glass_blur") for s in (1, 3) for label in ("ant", "bee") for i in range(2)
    )
    assert pictures == _pictures(parallel)
    assert Image.open(serial / "fog/3/bee/bee1.png").size == (48, 40)
    manifest = json.loads((serial / "corruptions.json").read_text())
    assert manifest["corruptions"] == ["fog", "glass_blur"] and manifest["severities"] == [1, 3] and manifest["images"] == 4
    assert not (tmp_path / "serial.partial").exists()
    folders = corruption_folders(serial, severities=(1, 3))
    assert list(folders) == [("glass_blur", 1), ("glass_blur", 3), ("fog", 1), ("fog", 3)]  # benchmark order


def test_an_interrupted_set_is_finished_by_the_same_call(tmp_path: Path) -> None:
    clean = _clean_folder(tmp_path / "clean")
    whole = make_corrupted_folder(clean, tmp_path / "whole", **SETTINGS)  # type: ignore[arg-type]

    def stop_after_one(finished, total):  # type: ignore[no-untyped-def]
        for count, item in enumerate(finished):
            yield item
            if count == 0:
                raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        make_corrupted_folder(clean, out, progress=stop_after_one, **SETTINGS)  # type: ignore[arg-type]
    assert not out.exists() and len(list((tmp_path / "resumed.partial").rglob("*.png"))) == 4
    with pytest.raises(CorruptedSetError, match=r"resumed.partial is an unfinished set made with other settings \(seed: 0 then, 1 now\)"):
        make_corrupted_folder(clean, out, seed=1, **SETTINGS)  # type: ignore[arg-type]
    make_corrupted_folder(clean, out, **SETTINGS)  # type: ignore[arg-type]
    assert _pictures(out) == _pictures(whole)
    with pytest.raises(CorruptedSetError, match="resumed exists"):
        make_corrupted_folder(clean, out, **SETTINGS)  # type: ignore[arg-type]
    make_corrupted_folder(clean, out, overwrite=True, corruptions=("pixelate",), severities=(5,))
    assert sorted(p.name for p in out.iterdir()) == ["corruptions.json", "pixelate"]


def test_making_a_set_names_what_is_wrong(tmp_path: Path) -> None:
    small = _clean_folder(tmp_path / "small", size=(31, 40))
    with pytest.raises(CorruptedSetError, match=r"ant0.jpg is 31x40 px; the corruptions need at least 32x32"):
        make_corrupted_folder(small, tmp_path / "out", corruptions=("fog",))
    resized = make_corrupted_folder(small, tmp_path / "resized", corruptions=("fog",), severities=(2,), size=36)
    assert Image.open(resized / "fog/2/ant/ant0.png").size == (36, 36)
    with pytest.raises(CorruptedSetError, match="no class folders"):
        make_corrupted_folder(tmp_path / "resized" / "fog" / "2" / "ant", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown corruption"):
        make_corrupted_folder(small, tmp_path / "x", corruptions=("rain",))
    with pytest.raises(ValueError, match="severities must be distinct values"):
        make_corrupted_folder(small, tmp_path / "x", severities=(0, 1))


def test_the_layout_check_names_the_missing_folder(tmp_path: Path) -> None:
    clean = _clean_folder(tmp_path / "clean")
    made = make_corrupted_folder(clean, tmp_path / "set", corruptions=("fog", "snow"), severities=(1, 2))
    with pytest.raises(CorruptedSetError, match=r"set/snow/3: missing severity folder 3 \(found: 1, 2\)"):
        corruption_folders(made)
    with pytest.raises(CorruptedSetError, match=r"set/frost does not exist; the corruption folders of .* are: fog, snow"):
        corruption_folders(made, corruptions=["frost"], severities=(1,))
    (made / "fog" / "2" / "cat").mkdir()
    with pytest.raises(CorruptedSetError, match=r"fog/2 has other class folders than .*snow/1; not in the latter: cat"):
        corruption_folders(made, severities=(1, 2))
    with pytest.raises(CorruptedSetError, match="unfinished corrupted set"):
        corruption_folders(tmp_path / "other.partial")
    with pytest.raises(CorruptedSetError, match="holds no corruption folders"):
        corruption_folders(clean / "ant")
