"""spacetorch corruptions: make a complete 15 x 5 set from a tiny clean ImageFolder, evaluate a
V1 ResNet on it, and compare every number with the model run directly."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spacetorch.cli.corruptions import main
from spacetorch.data.corruptions import CORRUPTIONS
from spacetorch.models import create_model, model_info

ARCH = "v1_resnet50_e"
CLASSES = ["ant", "bee", "cat"]


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("corruptions")
    rng = np.random.default_rng(0)
    for i, label in enumerate(CLASSES):
        (root / "clean" / label).mkdir(parents=True)
        for j in range(2):  # one colour per class, plus noise: something a model can get right or wrong
            image = np.full((64, 64, 3), 60 + 70 * i, np.uint8) + rng.integers(0, 40, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(image).save(root / "clean" / label / f"{label}{j}.png")
    torch.manual_seed(0)
    torch.save(create_model(ARCH, num_classes=len(CLASSES)).state_dict(), root / "model.pth")
    assert main(["make", "--images", str(root / "clean"), "--out", str(root / "set"), "--workers", "0", "--quiet"]) == 0
    return root / "model.pth", root / "set", root / "clean"


def _evaluate(setting: tuple[Path, Path, Path], out: Path, *extra: str) -> int:
    checkpoint, data, _ = setting
    return main(["evaluate", "--checkpoint", str(checkpoint), "--arch", ARCH, "--data", str(data), "--out", str(out),
                 "--batch-size", "16", "--workers", "0", "--device", "cpu", "--quiet", *extra])  # fmt: skip


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_the_evaluation_writes_a_complete_table_equal_to_the_model_run_directly(
    setting: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    checkpoint, data, clean = setting
    assert _evaluate(setting, tmp_path / "out", "--clean", str(clean)) == 0
    with open(tmp_path / "out" / "corruption_accuracy.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(r["corruption"], int(r["severity"])) for r in rows] == [(c, s) for c in CORRUPTIONS for s in range(1, 6)]

    model = create_model(ARCH, num_classes=len(CLASSES))
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    info = model_info(ARCH)
    mean, std = torch.tensor(info.mean)[:, None, None], torch.tensor(info.std)[:, None, None]

    def accuracy(folder: Path) -> float:
        paths = sorted(folder.glob("*/*.png"))
        x = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) / 255.0 for p in paths])
        labels = torch.tensor([CLASSES.index(p.parent.name) for p in paths])
        with torch.no_grad():
            return float((model((x - mean) / std).argmax(1) == labels).float().mean())

    for row in rows:
        assert int(row["images"]) == 6
        assert float(row["accuracy"]) == pytest.approx(accuracy(data / row["corruption"] / row["severity"])), row
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["mean_corruption_accuracy"] == pytest.approx(np.mean([float(r["accuracy"]) for r in rows]))
    assert summary["per_corruption"]["fog"] == pytest.approx(np.mean([float(r["accuracy"]) for r in rows if r["corruption"] == "fog"]))
    assert summary["clean_accuracy"] == pytest.approx(accuracy(clean))
    assert summary["missing_benchmark_corruptions"] == []
    assert Image.open(tmp_path / "out" / "corruption_heatmap.png").size[1] > 300


def test_a_missing_severity_or_a_class_mismatch_exits_2_naming_the_path(
    setting: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, data, _ = setting
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    shutil.rmtree(broken / "fog" / "4")
    checkpoint = str(setting[0])
    args = ["evaluate", "--checkpoint", checkpoint, "--arch", ARCH, "--data", str(broken), "--out", str(tmp_path / "out"), "--quiet"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    assert f"--data: {broken / 'fog' / '4'}: missing severity folder 4 (found: 1, 2, 3, 5)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    with pytest.raises(SystemExit) as stop:
        main([*args[:-4], str(data), "--corruptions", "fog", "rain", "--out", str(tmp_path / "out"), "--quiet"])
    assert stop.value.code == 2 and f"{data / 'rain'} does not exist" in capsys.readouterr().err

    two_classes = tmp_path / "two"
    for severity in range(1, 6):
        shutil.copytree(data / "snow" / str(severity), two_classes / "snow" / str(severity), ignore=shutil.ignore_patterns("cat"))
    with pytest.raises(SystemExit) as stop:
        main([*args[:-4], str(two_classes), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "has 2 class folders, but the model in" in err and "has 3 outputs" in err


def test_make_refuses_an_existing_output_and_bad_names(setting: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, data, clean = setting
    with pytest.raises(SystemExit) as stop:
        main(["make", "--images", str(clean), "--out", str(data), "--quiet"])
    assert stop.value.code == 2 and f"--out {data} exists; choose another folder or pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["make", "--images", str(clean), "--out", str(tmp_path / "x"), "--corruptions", "rain", "--quiet"])
    assert stop.value.code == 2 and "unknown corruption(s) rain" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["make", "--images", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--quiet"])
    assert stop.value.code == 2 and "nowhere is not a directory" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_the_v1_validation_chain_resizes_the_crop_last(setting: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """--resize 96 --crop 80 --then-resize 64 (the paper's 256 / 224 / 64 at this size): the clean
    accuracy is the model's on the images put through that chain, step by step with PIL."""
    checkpoint, _, clean = setting
    assert _evaluate(setting, tmp_path / "out", "--clean", str(clean), "--corruptions", "fog", "--severities", "1",
                     "--resize", "96", "--crop", "80", "--then-resize", "64") == 0  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    model = create_model(ARCH, num_classes=len(CLASSES))
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    info = model_info(ARCH)
    paths = sorted(clean.glob("*/*.png"))
    images = []
    for path in paths:
        image = Image.open(path).convert("RGB").resize((96, 96), Image.Resampling.BILINEAR)  # square images: the shorter side
        image = image.crop((8, 8, 88, 88)).resize((64, 64), Image.Resampling.BILINEAR)
        images.append((torch.from_numpy(np.array(image)).permute(2, 0, 1) / 255.0 - torch.tensor(info.mean)[:, None, None])
                      / torch.tensor(info.std)[:, None, None])  # fmt: skip
    labels = torch.tensor([CLASSES.index(p.parent.name) for p in paths])
    with torch.no_grad():
        logits = model(torch.stack(images).float())
    assert summary["clean_accuracy"] == pytest.approx(float((logits.argmax(1) == labels).float().mean()))
