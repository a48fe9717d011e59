"""spacetorch evaluate-tdam on a tiny TD ResNet-18 and a hand-made ImageFolder with boxes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from spacetorch.cli.evaluate_td import main
from spacetorch.models import create_model, model_info

CLASSES = ["ant", "bee", "cat"]
TD = {"time_steps": 3, "mdist": 1}


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    boxes = root / "boxes"
    boxes.mkdir()
    for c in CLASSES:
        (root / "data" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / "data" / c / f"{c}{i}.png")
            (boxes / f"{c}{i}.xml").write_text(
                "<annotation><size><width>48</width><height>40</height></size><object><bndbox>"
                "<xmin>4</xmin><ymin>4</ymin><xmax>40</xmax><ymax>36</ymax></bndbox></object></annotation>"
            )
    torch.manual_seed(0)
    model = create_model("tdresnet18", num_classes=len(CLASSES), **TD)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}, root / "td.pth")
    return root / "td.pth", root / "data", boxes


def _args(setting: tuple[Path, Path, Path], out: Path, *extra: str) -> list[str]:
    checkpoint, data, boxes = setting
    return ["--checkpoint", str(checkpoint), "--arch", "tdresnet18", "--model-kwargs", json.dumps(TD), "--data", str(data),
            "--boxes", str(boxes), "--resize", "36", "--crop", "32", "--batch-size", "4", "--workers", "0",
            "--device", "cpu", "--quiet", "--out", str(out), *extra]


def test_evaluation_writes_every_number_and_the_cam_figures(setting: tuple[Path, Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(_args(setting, out, "--cam-images", "bee/bee1.png")) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["images"] == 9 and results["time_steps"] == 3 and len(results["top1_per_step"]) == 3
    for key in ("top1", "top5", "multistep_iou_merged_top1", "localization_top1"):
        assert 0.0 <= results[key] <= 1.0, key
    assert results["top1"] == results["top1_per_step"][-1]
    assert (out / "results.csv").read_text().startswith("checkpoint,arch,model_kwargs")
    assert Image.open(out / "cams" / "bee_bee1.png").size[0] > 400

    # top-1 and top-5 against the model run directly on the same crops
    checkpoint, data, _ = setting
    model = create_model("tdresnet18", num_classes=3, **TD).eval()
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    info = model_info("tdresnet18")
    prep = transforms.Compose([transforms.Resize(36), transforms.CenterCrop(32), transforms.ToTensor(), transforms.Normalize(info.mean, info.std)])
    images = sorted((data).glob("*/*.png"))
    x = torch.stack([prep(Image.open(p).convert("RGB")) for p in images])
    labels = torch.tensor([CLASSES.index(p.parent.name) for p in images])
    with torch.no_grad():
        steps = model(x, output_over_t=True)
    assert results["top1_per_step"] == pytest.approx([float((s.argmax(1) == labels).float().mean()) for s in steps])
    assert results["top5"] == 1.0  # 3 classes


def test_bad_input_exits_2_naming_it(setting: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint, data, boxes = setting
    mismatched = tmp_path / "two_classes"
    for c in CLASSES[:2]:
        (mismatched / c).mkdir(parents=True)
        (mismatched / c / "a.png").write_bytes((data / c / f"{c}0.png").read_bytes())
    cases = [
        (["--data", str(mismatched)], r"has 2 class folders, but the model in .*td.pth has 3 outputs"),
        (["--model-kwargs", '{"mdist": 2, "time_steps": 3}'], r"the weights are not a tdresnet18 with \{'mdist': 2"),
        (["--model-kwargs", "[1]"], r"--model-kwargs: expected a JSON object"),
        (["--cam-images", "cat/none.png"], r"--cam-images: cat/none.png is not an image of --data"),
        (["--arch", "tdresnet19"], r"unknown model 'tdresnet19'; did you mean tdresnet18"),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit) as exit_:
            main(_args(setting, tmp_path / "out", *extra))
        assert exit_.value.code == 2
        assert re.search(message, capsys.readouterr().err), message
    assert not (tmp_path / "out").exists()
