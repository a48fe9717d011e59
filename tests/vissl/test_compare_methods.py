"""spacetorch compare-methods on a tiny setting: every method trains the same way and is
measured on its sheet, the baseline on both; a complete table and figure come out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from spacetorch.cli.compare_methods import main

from train_helpers import IMAGE_SIZE, SHORT_RUN


def _args(small_positions: Path, small_images: Path, out: Path) -> list[str]:
    overrides = [
        f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.0.size={IMAGE_SIZE}",
        *SHORT_RUN, "config.OPTIMIZER.num_epochs=1",
    ]
    args = ["--out", str(out), "--image-size", str(IMAGE_SIZE), "--spatial-frequencies", "2", "4", "8", "16",
            "--neighborhoods", "100", "--device", "cpu", "--quiet", "--exclude-border", "1"]
    for override in overrides:
        args += ["--override", override]
    return args


@pytest.mark.slow
def test_every_method_trains_and_is_measured_on_its_sheet(small_positions: Path, small_images: Path, tmp_path: Path, capsys) -> None:
    import torch

    from spacetorch.methods.published import add_blurpool
    from spacetorch.models import create_model

    torch.save(add_blurpool(create_model("resnet18", num_classes=10)).state_dict(), tmp_path / "resnet18_tau_1.0.pt")
    out = tmp_path / "comparison"
    args = [*_args(small_positions, small_images, out), "--methods", "none", "tdann=5", "topoloss=1",
            "--layers", "layer2.0,layer2.1", "--param", "topoloss.factor=2", "--seeds", "0", "--som", "--som-edge", "16",
            "--som-iterations", "2000", "--given", f"topo1=toponets:{tmp_path / 'resnet18_tau_1.0.pt'}",
            "--categories", str(small_images / "train"), "--category-layer", "layer3.0"]
    assert main(args) == 0, capsys.readouterr().err
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [(r["method"], r["sheet"]) for r in runs] == [
        ("none", "retinotopic"), ("none", "tiled"), ("tdann=5", "retinotopic"), ("topoloss=1", "tiled"),
        ("topo1", "tiled"), ("V1 SOM", "som"),
    ]  # (local and lateral connections train and load on the bench in test_methods_training.py)
    assert runs[4]["seed"] is None and runs[4]["train_seconds"] != runs[4]["train_seconds"]  # given: NaN
    for run in runs[:-1]:
        assert len(run["sl"]) == 8 and all(0 < v < 1 for v in run["sl"].values())
        assert 0 <= run["category_selective_fraction"] <= 1 and run["category_patches"] >= 0
        assert 0 <= run["selective_fraction"] <= 1 and run["units_analysed"] == 128 * 6 * 6
    assert runs[3]["spec"] == {"method": "topoloss", "layers": ["layer2.0", "layer2.1"], "weight": 1.0, "factor": 2.0}
    assert runs[-1]["units_analysed"] == 16 * 16
    logs = {p.parent.name: p.read_text() for p in (out / "runs").glob("*/train.out")}
    assert "topography penalty (topoloss)" in logs["topoloss1_seed0"]
    assert "layer weights: layer1_0 0, layer1_1 0, layer2_0 5, layer2_1 5" in logs["tdann5_seed0"]
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and "sl_layer4.1" in table[0] and "train_seconds" in table[0]
    assert Image.open(out / "comparison.png").size[0] >= 1000
    assert capsys.readouterr().out.count("layer2.0 SL") == 6

    # a command of the same runs measures them again without training them again, here with the wiring length
    stamps = {p: p.stat().st_mtime for p in (out / "runs").glob("*/model_final_checkpoint_phase0.torch")}
    again = [*_args(small_positions, small_images, out), "--methods", "none", "--seeds", "0", "--wiring", "layer2.0,layer2.1",
             "--wiring-stimuli", "1"]
    assert main(again) == 0
    assert all(p.stat().st_mtime == t for p, t in stamps.items())
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["method"] for r in runs] == ["none", "none"]
    assert all(r["wiring_mm"] > 0 and r["wiring_shuffled_mm"] > 0 and r["wiring_ratio_shuffled"] > 0 for r in runs)


@pytest.mark.parametrize(("extra", "message"), [
    (["--methods", "none", "magic"], "--methods: no method 'magic'; known: none, lateral, local, tdann, topoloss"),
    (["--methods", "none=2"], "the baseline 'none' takes no weight"),
    (["--methods", "topoloss", "--param", "lateral.sigma=2"], "--param names method(s) ['lateral'] that --methods does not run"),
    (["--methods", "topoloss", "--param", "topoloss.radius=2"], "--methods topoloss: topography method 'topoloss' has no parameter(s) ['radius']"),
    (["--methods", "lateral=2"], "--methods lateral=2: topography method 'lateral': weight (the lateral share) must be in [0, 1]"),
    (["--methods", "topoloss", "--layers", "layer9.9"], "--methods topoloss: topography method 'topoloss': ResNet has no layer 'layer9.9'"),
    (["--methods", "none", "--given", "none=torchvision:{file}"], "the labels ['none'] name two things"),
    (["--methods", "--given", "x=torchvision:/no/such.pt"], "--given x: /no/such.pt is not a file"),
    (["--methods", "none", "--given", "x=torchvision:{file}"], "--given x: checkpoint"),
    (["--methods"], "nothing to compare: give --methods, --given or --som"),
    (["--methods", "none", "--wiring", "layer2.0"], "--wiring: expected SOURCE,TARGET (two layers)"),
    (["--methods", "none", "--wiring", "layer2.0,layer9.9"], "--wiring: ['layer9.9'] have no positions"),
])
def test_bad_methods_are_refused_before_any_run(small_positions: Path, small_images: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    out = tmp_path / "comparison"
    (tmp_path / "weights.pt").write_bytes(b"")
    extra = [e.replace("{file}", str(tmp_path / "weights.pt")) for e in extra]
    with pytest.raises(SystemExit) as stop:
        main([*_args(small_positions, small_images, out), *extra])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (out / "runs").exists()


def test_malformed_method_options_are_named(capsys) -> None:
    for extra, message in ((["--methods", "topoloss=x"], "the weight 'x' is not a number"),
                           (["--param", "factor=2"], "expected METHOD.KEY=VALUE"),
                           (["--given", "x=keras:a.h5"], "unknown layout 'keras'; known: torchvision, toponets")):
        with pytest.raises(SystemExit):
            main(extra)
        assert message in capsys.readouterr().err


def test_a_run_train_py_would_refuse_is_refused_before_any_run(small_positions: Path, small_images: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "comparison"
    args = [*_args(small_positions, small_images, out), "--methods", "topoloss=1", "none", "--seeds", "0",
            "--override", "config.DATA.TRAIN.DATA_PATHS=[/nowhere/train]"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("spacetorch compare-methods (topoloss=1): error: config.DATA.TRAIN") and "/nowhere/train" in err, err
    assert not (out / "runs").exists()


@pytest.mark.slow
def test_toponets_vit_b_32_is_measured_in_the_shipped_vit_b_32_setting(tmp_path: Path, capsys) -> None:
    """TopoNets' ViT-B/32 (torchvision's layout under 'model') on the tiled sheet of every block,
    with the shipped ViT-B/32 config naming the model; nothing is trained."""
    import torch
    import torchvision

    from spacetorch.models import retinotopic_positions

    positions = tmp_path / "vit_b_32_positions"
    retinotopic_positions("vit_base_patch32_224", n_neighborhoods=20, input_size=64).save(positions)
    published = tmp_path / "vit_b_32_tau_10.0.pt"
    torch.save({"model": torchvision.models.vit_b_32(weights=None).state_dict(), "epoch": 89}, published)
    out = tmp_path / "comparison"
    args = ["--config", "simclr_spatial_vit_base_patch32", "--methods", "--given", f"topo10=toponets:{published}",
            "--override", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
            "--override", "config.DATA.TRAIN.TRANSFORMS.1.size=64", "--layer", "blocks.4", "--image-size", "64",
            "--spatial-frequencies", "2", "4", "8", "16", "--neighborhoods", "100", "--device", "cpu", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    assert (run["method"], run["sheet"], run["seed"]) == ("topo10", "tiled", None)
    assert list(run["sl"]) == [f"blocks.{i}" for i in range(12)] and all(0 < v < 1 for v in run["sl"].values())
    assert run["units_analysed"] == 768 * 2 * 2  # 64 px: 2 x 2 patch tokens of 768 channels
    assert 0 <= run["selective_fraction"] <= 1
    assert (out / "comparison.png").is_file()
