"""Datasets in other layouts become ImageFolders whose class order is the label order; tested on
files made here in those formats."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.cli.main import main
from spacetorch.data.convert import ConversionError, convert, read_idx
from spacetorch.data.folders import ClassFolder


def _idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def test_idx_files_are_read_plain_and_gzipped(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 255, (5, 28, 28), dtype=np.uint8)
    _idx(tmp_path / "a", images)
    _idx(tmp_path / "a.gz", images, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), images)
    (tmp_path / "b").write_bytes(b"\x89PNG....")
    with pytest.raises(ConversionError, match="not an IDX file"):
        read_idx(tmp_path / "b")


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
def test_mnist_files_become_an_imagefolder_labelled_as_the_files(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(1)
    raw = tmp_path / "torchvision" / ("MNIST" if kind == "mnist" else "FashionMNIST") / "raw"
    raw.mkdir(parents=True)
    labels = np.array([3, 0, 9, 3, 1, 7, 2, 8, 4, 6, 5, 0])
    images = rng.integers(0, 255, (len(labels), 28, 28), dtype=np.uint8)
    _idx(raw / "t10k-images-idx3-ubyte.gz", images, gz=True)
    _idx(raw / "t10k-labels-idx1-ubyte.gz", labels, gz=True)
    out = convert(kind, tmp_path / "torchvision", tmp_path / "out", split="test")
    folder = ClassFolder(out)
    assert len(folder) == len(labels) and len(folder.classes) == 10
    for path, label in folder.samples:
        index = int(Path(path).stem.split("_")[-1])
        assert label == labels[index]
        np.testing.assert_array_equal(np.asarray(Image.open(path)), images[index])
    if kind == "fashion-mnist":
        assert folder.classes[0] == "0_t-shirt_top" and folder.classes[9] == "9_ankle_boot"
    with pytest.raises(ConversionError, match="no train images"):
        convert(kind, tmp_path / "torchvision", tmp_path / "out2", split="train")
    assert not (tmp_path / "out2").exists()


def test_cifar10_batches_become_an_imagefolder_and_a_foreign_pickle_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    data = rng.integers(0, 255, (6, 3072), dtype=np.uint8)
    labels = [5, 1, 9, 0, 5, 2]
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data, b"filenames": [b"x"] * 6}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [n.encode() for n in names], b"num_cases_per_batch": 6}, f)
    out = convert("cifar10", tmp_path, tmp_path / "out", split="test")
    dataset = ClassFolder(out, allow_empty=True)  # six images: some classes have none
    assert dataset.classes == names
    for path, label in dataset.samples:
        index = int(Path(path).stem.split("_")[-1])
        assert label == labels[index]
        np.testing.assert_array_equal(np.asarray(Image.open(path)), data[index].reshape(3, 32, 32).transpose(1, 2, 0))

    class Payload:
        def __reduce__(self):  # a pickle that would run code when loaded
            return (print, ("ran",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Payload()}, f)
    with pytest.raises(ConversionError, match="names builtins.print"):
        convert("cifar10", tmp_path, tmp_path / "out3", split="test")


def test_tiny_imagenet_val_is_sorted_into_class_folders_by_the_command(tmp_path: Path, capsys) -> None:
    val = tmp_path / "tiny-imagenet-200" / "val"
    (val / "images").mkdir(parents=True)
    rows = [("val_0.JPEG", "n01443537"), ("val_1.JPEG", "n01629819"), ("val_2.JPEG", "n01443537")]
    for name, _ in rows:
        Image.new("RGB", (64, 64)).save(val / "images" / name, format="JPEG")
    (val / "val_annotations.txt").write_text("".join(f"{n}\t{w}\t0\t0\t63\t63\n" for n, w in rows))
    assert main(["convert-data", "tiny-imagenet-val", str(tmp_path / "tiny-imagenet-200"), "--out", str(tmp_path / "val_by_class"),
                 "--link", "--quiet"]) == 0  # fmt: skip
    assert sorted(str(p.relative_to(tmp_path / "val_by_class")) for p in (tmp_path / "val_by_class").rglob("*.JPEG")) == [
        "n01443537/val_0.JPEG", "n01443537/val_2.JPEG", "n01629819/val_1.JPEG"]
    (val / "images" / "val_2.JPEG").unlink()
    with pytest.raises(SystemExit) as exited:
        main(["convert-data", "tiny-imagenet-val", str(tmp_path / "tiny-imagenet-200"), "--out", str(tmp_path / "new" / "again")])
    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"lists 1 image(s) not in {val / 'images'}, e.g. val_2.JPEG\n"), "one line, no bar"
    assert not (tmp_path / "new").exists(), "the source is checked before the output's parent is made"


@pytest.mark.parametrize("name, wnid", [("val_0.JPEG", "../escaped"), ("val_0.JPEG", "/tmp/abs"), ("../../x.JPEG", "n0"),
                                        ("val_0.JPEG", ".."), ("val_0.JPEG", "a\\..\\b")])
def test_tiny_imagenet_names_that_leave_the_output_are_refused_naming_the_line(tmp_path: Path, name: str, wnid: str, capsys) -> None:
    """A class id or file name from val_annotations.txt never writes outside --out (or reads outside images/)."""
    val = tmp_path / "tiny" / "val"
    (val / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(val / "images" / "val_0.JPEG", format="JPEG")
    (val / "val_annotations.txt").write_text(f"val_0.JPEG\tn0\t0\t0\t7\t7\n{name}\t{wnid}\t0\t0\t7\t7\n")
    (tmp_path / "out").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exited:
        main(["convert-data", "tiny-imagenet-val", str(tmp_path / "tiny"), "--out", str(tmp_path / "out" / "val"), "--quiet"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{val / 'val_annotations.txt'}, line 2:" in err and err.count("\n") == 1
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "nothing written anywhere"


def test_contained_keeps_paths_under_their_root(tmp_path: Path) -> None:
    from spacetorch._files import contained

    assert contained(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"
    (tmp_path / "link").symlink_to(tmp_path.parent)
    for bad in ["", "../x", "/etc/passwd", "a/../../x", "link/x", "a\\b"]:
        with pytest.raises(ValueError):
            contained(tmp_path, bad)
