"""spacetorch paper-panels on a small model and hand-made image sets: every panel, its numbers and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.cli.main import main


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("panels")
    rng = np.random.default_rng(0)
    for kind, classes, per_class in (("natural", ["a", "b"], 8), ("categories", ["faces", "places", "words"], 4)):
        for k, name in enumerate(classes):
            (root / kind / name).mkdir(parents=True)
            for i in range(per_class):
                image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
                image[:, :, k % 3] //= 3  # a colour cast per category
                Image.fromarray(image).save(root / kind / name / f"{i}.png")
    (root / "one" / "only").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(root / "one" / "only" / f"{i}.png")
    return root


def _argv(small_model_files: tuple[Path, Path], folders: Path, out: Path, *extra: str) -> list[str]:
    checkpoint, positions = small_model_files
    return ["paper-panels", "--checkpoint", str(checkpoint), "--positions", str(positions), "--image-size", "64",
            "--spatial-frequencies", "2", "4", "--exclude-border", "0", "--images", str(folders / "natural"),
            "--categories", str(folders / "categories"), "--wiring-stimuli", "3", "--active-percentile", "95",
            "--dimensionality-layers", "layer2.0", "layer4.1", "--out", str(out), "--quiet", *extra]  # fmt: skip


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_every_panel_is_drawn_with_its_numbers(small_model_files, folders: Path, tmp_path: Path) -> None:
    out = tmp_path / "panels"
    assert main(_argv(small_model_files, folders, out)) == 0
    record = json.loads((out / "panels.json").read_text())
    titles = [p["title"] for p in record["panels"]]
    assert titles == ["V1: layer2.0", "Categories: layer4.1", "Wiring length: layer4.0 \u2192 layer4.1", "Dimensionality"]
    v1, categories, wiring, dimensionality = record["panels"]
    assert v1["units_analysed"] == 128 * 8 * 8 and 0 <= v1["median_circular_variance"] <= 1
    assert set(categories["patches"]) == set(categories["overlap"]) == {"faces", "places", "words"}
    assert all(p["count"] >= 0 and p["total_area_mm2"] >= 0 for p in categories["patches"].values())
    assert wiring["stimuli"] == 3 and len(wiring["per_stimulus"]) == 6
    assert set(dimensionality["layers"]) == {"layer2.0", "layer4.1"}
    assert dimensionality["layers"]["layer2.0"]["components"] == 15  # 16 images - 1
    index = (out / "index.md").read_text()
    for panel in record["panels"]:
        for figure in panel["figures"]:
            assert (out / figure).stat().st_size > 1000 and f"]({figure})" in index


@pytest.mark.parametrize(("extra", "message"), [
    (["--panels", "categories", "--categories", "{one}"], "category maps need at least 2 categories of at least 2 images each; it has {'only': 3}"),
    (["--wiring-layers", "layer4.0", "layer9"], "--wiring-layers: ['layer9'] have no positions"),
    (["--active-percentile", "100"], "expected a percentile in (0, 100), got 100"),
    (["--distance-threshold", "0"], "expected a distance > 0 mm, got 0"),
    (["--out", "{natural}/inside"], "lies inside --images"),
])
def test_bad_input_is_named_and_nothing_is_written(small_model_files, folders: Path, tmp_path: Path, capsys,
                                                   extra: list[str], message: str) -> None:  # fmt: skip
    out = tmp_path / "panels"
    extra = [e.format(one=folders / "one", natural=folders / "natural") for e in extra]
    with pytest.raises(SystemExit) as exited:
        main(_argv(small_model_files, folders, out, *extra))
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err.strip().splitlines()[-1], err
    assert not out.exists() and not (folders / "natural" / "inside").exists()


def test_a_panels_folder_is_replaced_only_when_it_is_one(small_model_files, folders: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "panels"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    for extra in ([], ["--overwrite"]):
        with pytest.raises(SystemExit):
            main(_argv(small_model_files, folders, out, "--panels", "v1", *extra))
        assert str(out) in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "the user's"


def test_a_features_file_gives_the_same_panels_as_its_folder(small_model_files, folders: Path, tmp_path: Path, capsys) -> None:
    checkpoint, positions = small_model_files
    features = tmp_path / "categories.h5"
    assert main(["features", "--checkpoint", str(checkpoint), "--positions", str(positions), "--image-size", "64",
                 "--images", str(folders / "categories"), "--layers", "layer4.1", "--out", str(features), "--quiet"]) == 0  # fmt: skip
    results = []
    for source, out in ((folders / "categories", tmp_path / "from_folder"), (features, tmp_path / "from_file")):
        assert main(_argv(small_model_files, folders, out, "--panels", "categories", "--categories", str(source))) == 0
        results.append(json.loads((out / "panels.json").read_text())["panels"][0])
    assert results[0]["patches"] == results[1]["patches"]
    with pytest.raises(SystemExit) as exited:  # the file lacks a layer the panel needs
        main(_argv(small_model_files, folders, tmp_path / "x", "--panels", "categories", "--categories", str(features),
                   "--vtc-layer", "layer4.0"))  # fmt: skip
    assert exited.value.code == 2 and "has no layer 'layer4.0'" in capsys.readouterr().err


def test_the_wiring_panel_keeps_going_past_a_stimulus_no_unit_answers(tmp_path: Path) -> None:
    from spacetorch.panels import wiring_panel

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 10, (200, 2))
    responses = rng.random((3, 200))
    responses[0] = 0.0  # no unit answers stimulus 0
    panel = wiring_panel((responses, xy), (responses, xy), tmp_path, layers=("a", "b"), active_percentile=90)
    totals = [r["total"] for r in panel["per_stimulus"] if r["positions"] == "model"]
    assert totals[0] is None and all(t > 0 for t in totals[1:])
    assert panel["median_model_mm"] > 0 and (tmp_path / "wiring.png").exists()
