"""spacetorch evaluate-coarse-to-fine on a coarse-to-fine model and its bottom-up twin and a small
ImageFolder of planted squares with boxes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spacetorch.cli.evaluate_topdown import main
from spacetorch.models import create_model

TD, BU = "topdown_resnet20_mnist", "bottomup_resnet20_mnist"


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("topdown_eval")
    rng = np.random.default_rng(0)
    (root / "boxes").mkdir()
    for label in ("hollow", "filled"):
        (root / "data" / label).mkdir(parents=True)
        for i in range(4):
            image = rng.integers(0, 128, (28, 28), dtype=np.uint8)
            r, c = rng.integers(0, 20, 2)
            image[r : r + 8, c : c + 8] = 255
            if label == "hollow":
                image[r + 2 : r + 6, c + 2 : c + 6] = 0
            Image.fromarray(image).convert("RGB").save(root / "data" / label / f"{label}{i}.png")  # colour files
            (root / "boxes" / f"{label}{i}.xml").write_text(
                f"<annotation><size><width>28</width><height>28</height></size><object><bndbox><xmin>{c}</xmin>"
                f"<ymin>{r}</ymin><xmax>{c + 8}</xmax><ymax>{r + 8}</ymax></bndbox></object></annotation>"
            )
    torch.manual_seed(0)
    for arch in (TD, BU):
        torch.save(create_model(arch, num_classes=2).state_dict(), root / f"{arch}.pth")
    return {"root": root, "data": root / "data", "td": root / f"{TD}.pth", "bu": root / f"{BU}.pth", "boxes": root / "boxes"}


def _models(s: dict[str, Path]) -> list[str]:
    return ["--model", f"{TD}={s['td']}", "--model", f"{BU}={s['bu']}"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as file:
        return list(csv.DictReader(file))


def _direct_accuracy(arch: str, checkpoint: Path, data: Path) -> float:
    model = create_model(arch, num_classes=2)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    paths = sorted(data.glob("*/*.png"))
    x = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("L"), dtype=np.float32) / 255)[None] for p in paths])
    labels = torch.tensor([["filled", "hollow"].index(p.parent.name) for p in paths])
    with torch.no_grad():
        return float((model((x - 0.1307) / 0.3081).argmax(1) == labels).float().mean())


def test_accuracy_and_attack_curves(setting: dict[str, Path], tmp_path: Path) -> None:
    common = ["--data", str(setting["data"]), "--workers", "0", "--device", "cpu", "--quiet", "--batch-size", "3"]
    assert main(["accuracy", *_models(setting), *common, "--out", str(tmp_path / "acc")]) == 0
    rows = _rows(tmp_path / "acc" / "accuracy.csv")
    assert [r["model"] for r in rows] == [TD, BU]
    for row, key in zip(rows, ("td", "bu"), strict=True):
        assert float(row["top1"]) == pytest.approx(_direct_accuracy(row["arch"], setting[key], setting["data"]))

    out = tmp_path / "attack"
    assert main(["attack", *_models(setting), *common, "--eps", "0", "2/255", "0.1", "--pgd-steps", "2", "--out", str(out)]) == 0
    rows = _rows(out / "robustness.csv")
    assert len(rows) == 2 * (1 + 2 * 3)  # per model: clean, and fgsm / pgd at three budgets
    for model in (TD, BU):
        clean = next(float(r["accuracy"]) for r in rows if r["model"] == model and r["attack"] == "clean")
        assert clean == pytest.approx(_direct_accuracy(model, setting["td" if model == TD else "bu"], setting["data"]))
        assert {float(r["eps"]) for r in rows if r["model"] == model and r["attack"] == "pgd"} == {0.0, 2 / 255, 0.1}
    assert Image.open(out / "robustness.png").size[0] > 500


def test_the_scale_ablation_removes_each_pyramid_level_of_the_coarse_to_fine_model(setting: dict[str, Path], tmp_path: Path, capsys) -> None:
    common = ["--data", str(setting["data"]), "--workers", "0", "--device", "cpu", "--quiet", "--batch-size", "4"]
    assert main(["ablation", *_models(setting), *common, "--out", str(tmp_path / "a")]) == 0
    rows = _rows(tmp_path / "a" / "ablation.csv")
    assert [r["removed"] for r in rows] == ["none", "level 0 (1/1)", "level 1 (1/2)", "level 2 (1/4)"]
    assert {r["model"] for r in rows} == {TD} and "no image pyramid (a bottom-up model), left out" in capsys.readouterr().out
    assert float(rows[0]["accuracy"]) == pytest.approx(_direct_accuracy(TD, setting["td"], setting["data"]))
    with pytest.raises(SystemExit) as exited:
        main(["ablation", "--model", f"{BU}={setting['bu']}", *common, "--out", str(tmp_path / "b")])
    assert exited.value.code == 2 and "nothing to ablate" in capsys.readouterr().err


@pytest.mark.slow  # DeepFool runs image by image: half a minute here
def test_minimal_perturbations_are_written_per_image_and_flip_the_prediction(setting: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "minimal"
    assert main(["minimal", *_models(setting), "--data", str(setting["data"]), "--workers", "0", "--device", "cpu", "--quiet",
                 "--batch-size", "4", "--steps", "20", "--out", str(out)]) == 0  # fmt: skip
    rows = _rows(out / "minimal.csv")
    assert len(rows) == 2 * 8 and {r["model"] for r in rows} == {TD, BU}
    norms = [float(r["l2"]) for r in rows]
    assert all(n >= 0 for n in norms) and any(0 < n < float("inf") for n in norms)
    assert Image.open(out / "minimal.png").size[0] > 400


def test_gradcam_writes_maps_and_a_localisation_score(setting: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cam"
    args = ["gradcam", *_models(setting), "--data", str(setting["data"]), "--images", "filled/filled0.png",
            str(setting["data"] / "hollow" / "hollow1.png"), "--boxes", str(setting["boxes"]), "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    rows = _rows(out / "gradcam.csv")
    assert [(r["image"], r["model"]) for r in rows] == [
        ("filled/filled0.png", TD), ("filled/filled0.png", BU), ("hollow/hollow1.png", TD), ("hollow/hollow1.png", BU)
    ]  # fmt: skip
    for row in rows:
        assert 0 <= float(row["iou"]) <= 1 and 0 <= float(row["cam_mass_in_boxes"]) <= 1
    assert sorted(p.name for p in (out / "gradcam").iterdir()) == ["filled_filled0.png", "hollow_hollow1.png"]


def test_bad_input_exits_2_naming_it(setting: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(setting["data"]), "--out", str(tmp_path / "x"), "--quiet"]
    cases = [
        (["attack", *_models(setting), *data, "--eps", "-0.1"], "an L-infinity budget in [0, 1] image units (e.g. 8/255), got '-0.1'"),
        (["attack", *_models(setting), *data, "--eps"], "expected at least one argument"),
        (["accuracy", "--model", f"{TD}={setting['bu']}", *data], f"--model {TD}={setting['bu']}: checkpoint {setting['bu']}"),
        (["accuracy", "--model", f"{TD}", *data], "expected ARCH=CHECKPOINT"),
        (["gradcam", *_models(setting), *data, "--images", "cat.png"], "--images: cat.png is not an image of --data"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "x").exists()
