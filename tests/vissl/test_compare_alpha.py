"""spacetorch compare-alpha on a tiny setting: trains alpha 0 and 25 for two seeds, measures each."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from spacetorch.cli.compare_alpha import main

from model_helpers import exit_code
from train_helpers import IMAGE_SIZE, small_run_overrides


@pytest.mark.slow
def test_writes_a_complete_table_and_figure(small_positions: Path, small_images: Path, tmp_path: Path, capsys) -> None:
    overrides = [o for o in small_run_overrides(small_positions, small_images, tmp_path / "unused")
                 if not o.startswith(("config=", "config.CHECKPOINT.DIR"))]
    out = tmp_path / "comparison"
    args = ["--alphas", "25", "--seeds", "0", "1", "--out", str(out), "--image-size", str(IMAGE_SIZE),
            "--spatial-frequencies", "2", "4", "8", "16", "--neighborhoods", "100", "--device", "cpu", "--quiet",
            "--exclude-border", "1",  # at 64 px every layer2.0 unit's receptive field touches the border
            "--categories", str(small_images / "train"), "--category-layer", "layer4.1"]  # 12 categories of 4 crops
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
    for run in runs:  # the pairs under 1 mm against chance, and layer4.1's category maps
        if run["selective_fraction"] > 0:
            assert run["near_ci_low"] <= run["near_difference"] <= run["near_ci_high"] and 0 <= run["near_shuffled"] <= 90
        assert run["category_layer"] == "layer4.1" and 0 <= run["category_selective_fraction"] <= 1
        assert run["category_patches"] >= 0 and run["category_near_ratio"] > 0
    assert {"near_difference", "near_z", "category_patches", "category_near_ratio"} <= set(table[0])
    assert Image.open(out / "comparison.png").size[0] >= 1000
    assert json.loads((out / ".spacetorch_results.json").read_text())["written"] == ["comparison.png", "results.csv", "results.json", "runs"]
    printed = capsys.readouterr().out
    assert printed.count("layer2.0 SL") == 4


def test_bad_alphas_are_refused(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--alphas", "nan"])
    assert stop.value.code == 2
    assert "--alphas must be a finite number >= 0 (0: no topography), got nan" in capsys.readouterr().err


def test_alpha_layers_name_the_runs_and_unknown_keys_are_refused(capsys) -> None:
    from spacetorch.cli.compare_alpha import _run_name

    assert _run_name(25, 0) == "alpha25_seed0"
    assert _run_name(25, 1, ["layer2_0", "layer2_1"]) == "alpha25_layer2_0-layer2_1_seed1"
    assert _run_name(0, 1, ["layer2_0"]) == "alpha0_seed1"  # alpha 0 is the same run whatever the layers
    with pytest.raises(SystemExit) as stop:
        main(["--alphas", "25", "--alpha-layers", "layer2_0,layer9_9"])
    assert stop.value.code == 2
    assert "--alpha-layers: ['layer9_9']; the keys of config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights" in capsys.readouterr().err


def test_a_category_set_too_small_for_t_values_is_refused_before_training(
    small_positions: Path, small_images: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "comparison"
    code = exit_code(main, ["--alphas", "5", "--positions", str(small_positions), "--image-size", str(IMAGE_SIZE),
                            "--spatial-frequencies", "2", "4", "8", "16",
                            "--exclude-border", "1", "--categories", str(small_images / "val"), "--out", str(out)])
    assert code == 2
    assert "category maps need at least 2 categories of at least 2 images each" in capsys.readouterr().err
    assert not out.exists(), "nothing trained"


@pytest.mark.slow
def test_positions_and_init_reach_every_run(small_model_files, small_positions: Path, small_images: Path, tmp_path: Path, capsys) -> None:
    """--init starts every run from one checkpoint (with a learning rate of 0 the runs keep its
    weights); --positions is the set every run trains with and is measured on."""
    import shutil

    import torch
    from omegaconf import OmegaConf

    from spacetorch.models.checkpoints import load_trunk

    init = small_model_files[0]  # a trunk in the original VISSL layout
    own_positions = tmp_path / "my positions"
    shutil.copytree(small_positions, own_positions)
    frozen = ["config.OPTIMIZER.param_schedulers.lr.auto_lr_scaling.auto_scale=false",
              "config.OPTIMIZER.param_schedulers.lr.start_value=0.0",
              "config.OPTIMIZER.param_schedulers.lr.end_value=0.0"]
    overrides = [o for o in small_run_overrides(Path("/nowhere"), small_images, tmp_path / "unused")
                 if not o.startswith(("config=", "config.CHECKPOINT.DIR"))] + frozen
    out = tmp_path / "comparison"
    args = ["--alphas", "25", "--seeds", "0", "--out", str(out), "--image-size", str(IMAGE_SIZE),
            "--spatial-frequencies", "4", "8", "--neighborhoods", "50", "--device", "cpu", "--quiet",
            "--exclude-border", "1", "--init", str(init), "--positions", str(own_positions)]
    for override in overrides:  # the position_dir override names no set: --positions replaces it
        args += ["--override", override]
    assert main(args) == 0, capsys.readouterr().err
    start = load_trunk(init, "resnet18").state_dict()
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [run["alpha"] for run in runs] == [0.0, 25.0]
    for run in runs:
        trained = load_trunk(run["checkpoint"], "resnet18").state_dict()
        convs = [key for key in start if key.endswith("conv1.weight")]
        assert convs and all(torch.equal(trained[key], start[key]) for key in convs), run["checkpoint"]
        config = OmegaConf.load(Path(run["checkpoint"]).parent / "train_config.yaml")
        assert config.MODEL.TRUNK.TRUNK_PARAMS.position_dir == str(own_positions.resolve())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layer", "layer9.9"], "--layer layer9.9: no positions in"),
        (["--init", "/nowhere/model.torch"], "--init /nowhere/model.torch: no such checkpoint file"),
        (["--positions", "/nowhere"], "--positions /nowhere: no such position set"),
        (["--neighborhoods", "0"], "argument --neighborhoods: expected 1 to 1,000,000 neighborhoods, got 0"),
        (["--image-size", "96", "--spatial-frequencies", "4"], "is --image-size 96 the size"),
        (["--exclude-border", "rf"], "--exclude-border rf leaves no unit of layer2.0"),
    ],
)
def test_arguments_are_checked_before_any_run(small_positions: Path, tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    out = tmp_path / "comparison"
    args = ["--out", str(out), "--image-size", str(IMAGE_SIZE), "--spatial-frequencies", "4", "8",
            "--exclude-border", "1", "--override", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}", *extra]
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1] and "Traceback" not in err, err  # argparse's own errors add usage
    assert not out.exists()


def test_final_task_loss_is_the_mean_of_the_last_logged_values(tmp_path: Path) -> None:
    from spacetorch.runs import final_task_loss

    log = tmp_path / "log.txt"
    lines = [f"INFO 2026 train_step.py: 137: Iteration {i}: task loss {v:.4f}; spatial loss layer1_0 0.5000"
             for i, v in enumerate([9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 5.0])]
    log.write_text("\n".join(lines[:3] + ["INFO other line: loss: 7"] + lines[3:]) + "\n")
    assert final_task_loss(log) == pytest.approx(3.0)
    assert final_task_loss(log, last=2) == pytest.approx(4.5)
    assert final_task_loss(tmp_path / "missing.txt") != final_task_loss(tmp_path / "missing.txt")  # NaN


def _small_training(positions: Path, images: Path) -> list[str]:
    """``--override`` arguments for runs train.py accepts at the positions' size."""
    overrides = [o for o in small_run_overrides(positions, images, Path("unused"))
                 if not o.startswith(("config=", "config.CHECKPOINT.DIR", "config.MODEL.TRUNK.TRUNK_PARAMS.position_dir"))]
    return [arg for override in overrides for arg in ("--override", override)]


def test_a_run_folder_of_another_command_is_refused_not_reused(small_positions: Path, small_images: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "comparison"
    run = out / "runs" / "alpha0_seed0"
    run.mkdir(parents=True)
    (run / "command.json").write_text(json.dumps(["train.py", "config=demo_cpu_simclr_spatial_resnet18", "other"]))
    args = ["--out", str(out), "--seeds", "0", "--alphas", "25", "--image-size", str(IMAGE_SIZE), "--quiet",
            "--spatial-frequencies", "4", "8", "--exclude-border", "1", "--positions", str(small_positions),
            *_small_training(small_positions, small_images)]
    assert exit_code(main, args) == 2
    assert f"{run} holds a run of another command" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == ["command.json"]  # nothing trained, nothing replaced


def test_results_spacetorch_did_not_write_are_not_replaced(small_positions: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "comparison"
    out.mkdir()
    (out / "results.csv").write_text("the user's own table\n")
    args = ["--out", str(out), "--seeds", "0", "--alphas", "25", "--image-size", str(IMAGE_SIZE), "--quiet",
            "--spatial-frequencies", "4", "8", "--exclude-border", "1", "--positions", str(small_positions)]
    assert exit_code(main, args) == 2
    assert f"--out {out} already holds results.csv, which spacetorch did not write there" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]


def test_results_of_an_earlier_version_of_the_command_may_be_replaced(tmp_path: Path) -> None:
    """Earlier versions wrote their results without a record; their results.json (naming a
    comparison's layer and runs) and run folders (each with its command.json) mark them as a
    comparison's, and nothing else does."""
    from spacetorch._files import check_results
    from spacetorch.cli._comparison import ENTRIES, note_earlier_results

    earlier, other = tmp_path / "earlier", tmp_path / "other"
    for folder, record in ((earlier, {"layer": "layer2.0", "alpha_layers": None, "runs": []}), (other, {"runs": []})):
        (folder / "runs" / "alpha0_seed0").mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(record))
        (folder / "comparison.png").write_bytes(b"png")
    (earlier / "runs" / "alpha0_seed0" / "command.json").write_text("[]")
    for folder in (earlier, other):
        note_earlier_results(folder)
    check_results(earlier, ENTRIES)
    with pytest.raises(FileExistsError, match="comparison.png, results.json, runs"):
        check_results(other, ENTRIES)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "spacetorch compare-alpha (alpha 0): error: config.MODEL.TRUNK.TRUNK_PARAMS.position_dir: the positions in"),
        (["--override", "config.DATA.TRAIN.DATA_PATHS=[/nowhere/train]"], "spacetorch compare-alpha (alpha 0): error: config.DATA.TRAIN"),
        (["--alpha-layers", "layer2_0", "--override", "config.LOSS.spatial_correlation_simclr_info_nce_loss.neighborhoods_per_batch=0"],
         "spacetorch compare-alpha (alpha 0): error: config.LOSS.spatial_correlation_simclr_info_nce_loss.neighborhoods_per_batch"),
    ],
)
def test_a_run_train_py_would_refuse_is_refused_before_any_run(
    small_positions: Path, small_images: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    """train.py's own checks run for every alpha before the first run: here the training size,
    which the 64 px positions do not fit without the small runs' overrides, the images, a loss key."""
    out = tmp_path / "comparison"
    training = _small_training(small_positions, small_images) if extra else []
    args = ["--out", str(out), "--seeds", "0", "1", "--alphas", "25", "--image-size", str(IMAGE_SIZE), "--quiet",
            "--spatial-frequencies", "4", "8", "--exclude-border", "1", "--positions", str(small_positions), *training, *extra]
    assert exit_code(main, args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(message), err
    assert not (out / "runs").exists()
