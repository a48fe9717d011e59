"""scripts/compare_alpha.py on a tiny setting: trains alpha 0 and 25 for two seeds, measures each."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from spacetorch.cli.compare_alpha import main

from train_helpers import IMAGE_SIZE, small_run_overrides


@pytest.mark.slow
def test_writes_a_complete_table_and_figure(small_positions: Path, small_images: Path, tmp_path: Path, capsys) -> None:
    overrides = [o for o in small_run_overrides(small_positions, small_images, tmp_path / "unused")
                 if not o.startswith(("config=", "config.CHECKPOINT.DIR"))]
    out = tmp_path / "comparison"
    args = ["--alphas", "25", "--seeds", "0", "1", "--out", str(out), "--image-size", str(IMAGE_SIZE),
            "--spatial-frequencies", "2", "4", "8", "16", "--neighborhoods", "100", "--device", "cpu", "--quiet",
            "--exclude-border", "1"]  # at 64 px every layer2.0 unit's receptive field touches the border
    for override in overrides:
        args += ["--override", override]
    assert main(args) == 0, capsys.readouterr().err
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [(r["alpha"], r["seed"]) for r in runs] == [(0.0, 0), (0.0, 1), (25.0, 0), (25.0, 1)]
    for run in runs:
        assert len(run["sl"]) == 8 and all(0 < v < 1 for v in run["sl"].values())
        assert 0 <= run["selective_fraction"] <= 1 and run["units_analysed"] == 128 * 6 * 6
        assert Path(run["checkpoint"]).name == "model_final_checkpoint_phase0.torch"
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4 and "sl_layer4.1" in table[0] and "pinwheel_density" in table[0]
    assert Image.open(out / "comparison.png").size[0] >= 1000
    printed = capsys.readouterr().out
    assert printed.count("layer2.0 SL") == 4


def test_bad_alphas_are_refused(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--alphas", "nan"])
    assert stop.value.code == 2
    assert "--alphas must be finite numbers >= 0" in capsys.readouterr().err


def test_alpha_layers_name_the_runs_and_unknown_keys_are_refused(capsys) -> None:
    from spacetorch.cli.compare_alpha import _run_name

    assert _run_name(25, 0) == "alpha25_seed0"
    assert _run_name(25, 1, ["layer2_0", "layer2_1"]) == "alpha25_layer2_0-layer2_1_seed1"
    assert _run_name(0, 1, ["layer2_0"]) == "alpha0_seed1"  # alpha 0 is the same run whatever the layers
    with pytest.raises(SystemExit) as stop:
        main(["--alphas", "25", "--alpha-layers", "layer2_0,layer9_9"])
    assert stop.value.code == 2
    assert "--alpha-layers: ['layer9_9']; the keys of config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights" in capsys.readouterr().err
