"""``spacetorch swapopt`` as a user runs it: checkpoint + positions in, a swapped set out."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from spacetorch.cli.swapopt import main
from spacetorch.models.positions import NetworkPositions

from model_helpers import exit_code

# at 64 px every layer2.0 unit's receptive field touches the border: the figure keeps the inner 6 x 6
SMALL = ["--image-size", "64", "--spatial-frequencies", "2", "4", "8", "16", "--device", "cpu", "--quiet",
         "--exclude-border", "1"]


def test_writes_the_swapped_set_its_record_and_the_figure(small_model_files, tmp_path, capsys) -> None:
    checkpoint, positions = small_model_files
    out, figure = tmp_path / "swapped", tmp_path / "before_after.png"
    code = exit_code(main, ["--checkpoint", str(checkpoint), "--positions", str(positions), "--layers", "layer2.0", "layer3.0",
                 "--attempts", "2e4", "--out", str(out), "--figure", str(figure), "--n-neighborhoods", "200", *SMALL])
    assert code == 0, capsys.readouterr().err
    old, new = NetworkPositions.load_from_dir(positions), NetworkPositions.load_from_dir(out)
    assert list(new.layer_positions) == list(old.layer_positions)
    for name in old.layer_positions:
        same = np.array_equal(new[name].coordinates, old[name].coordinates)
        assert same == (name not in ("layer2.0", "layer3.0")), name
        assert sorted(map(tuple, new[name].coordinates)) == sorted(map(tuple, np.asarray(old[name].coordinates)))
    record = json.loads((out / "swapopt.json").read_text())
    assert [r["layer"] for r in record["layers"]] == ["layer2.0", "layer3.0"]
    for r in record["layers"]:
        assert r["attempts"] == 20_000 and 0 < r["accepted"] < 20_000 and r["loss_after"] < r["loss_before"]
        assert (r["engine"], r["device"]) == ("numba", "cpu")  # --device cpu: the CPU's engine
    assert Image.open(figure).size[0] > 1000
    assert not (tmp_path / "swapped.resume").exists()
    printed = capsys.readouterr().out
    assert "layer2.0 after:" in printed and "layer2.0: 4608 of 8192 units analysed" in printed


@pytest.mark.parametrize(("without_triton", "message"), [
    (True, "--engine triton: swapopt engine 'triton': Triton is not installed"),
    (False, "--engine triton runs on a CUDA --device; on cpu Triton only interprets it"),
], ids=["Triton not installed", "a CPU device"])
def test_the_triton_engine_where_it_cannot_run_is_refused_before_any_work(
    small_model_files, tmp_path, capsys, monkeypatch, without_triton: bool, message: str
) -> None:
    from spacetorch.models.positions import _swapopt_device

    if without_triton:
        monkeypatch.setattr(_swapopt_device, "triton", None)
    checkpoint, positions = small_model_files
    out = tmp_path / "swapped"
    code = exit_code(main, ["--checkpoint", str(checkpoint), "--positions", str(positions), "--layers", "layer2.0",
                 "--attempts", "2e4", "--out", str(out), "--engine", "triton", *SMALL])
    assert code == 2 and not out.exists()
    assert message in capsys.readouterr().err


def test_a_figure_layer_the_border_leaves_empty_is_refused_before_the_swaps(small_model_files, tmp_path, capsys) -> None:
    checkpoint, positions = small_model_files
    out = tmp_path / "swapped"
    code = exit_code(main, ["--checkpoint", str(checkpoint), "--positions", str(positions), "--layers", "layer2.0",
                 "--attempts", "2e4", "--out", str(out), *SMALL[:-2]])
    assert code == 2 and not out.exists() and not (tmp_path / "swapped.resume").exists()
    assert "--exclude-border rf leaves no unit of layer2.0" in capsys.readouterr().err


def test_an_existing_output_is_refused_before_any_work(small_model_files, tmp_path, capsys) -> None:
    checkpoint, positions = small_model_files
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = exit_code(main, ["--checkpoint", str(checkpoint), "--positions", str(positions), "--out", str(out), *SMALL])
    assert code == 2
    assert f"--out {out}: directory exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]



def test_a_folder_of_the_users_named_like_the_resume_folder_is_left_alone(small_model_files, tmp_path, capsys) -> None:
    checkpoint, positions = small_model_files
    out = tmp_path / "swapped"
    mine = tmp_path / "swapped.resume"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    code = exit_code(main, ["--checkpoint", str(checkpoint), "--positions", str(positions), "--out", str(out), *SMALL])
    assert code == 2
    assert f"{mine} exists and is not a swapopt resume folder spacetorch made" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not out.exists()

def test_unknown_layers_and_bad_attempts_are_named(small_model_files, tmp_path, capsys) -> None:
    checkpoint, positions = small_model_files
    code = exit_code(main, ["--checkpoint", str(checkpoint), "--positions", str(positions), "--layers", "layer9.0",
                 "--out", str(tmp_path / "x"), *SMALL])
    assert code == 2
    assert "--layers: ['layer9.0'] have no positions in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoint", "c", "--positions", "p", "--attempts", "lots"])
    assert "--attempts: expected a whole number like 1000000 or 5e7, got 'lots'" in capsys.readouterr().err


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_an_interrupted_run_continues_where_it_stopped(small_model_files, tmp_path, capsys, monkeypatch) -> None:
    import os
    import signal

    from spacetorch.models.positions import swapopt as S

    checkpoint, positions = small_model_files
    monkeypatch.setattr(S, "_CHUNK", 8)  # the state is saved every 8 windows
    args = ["--checkpoint", str(checkpoint), "--positions", str(positions), "--layers", "layer2.0", "layer3.0",
            "--attempts", "2e4", "--n-neighborhoods", "200", "--figure", str(tmp_path / "f.png"), *SMALL]
    original = S._run_plan
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 9:  # layer2.0 took 5 blocks of 8 windows; this is layer3.0's fourth
            os.kill(os.getpid(), signal.SIGINT)
        return original(*a, **k)

    monkeypatch.setattr(S, "_run_plan", interrupted)
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path / "set")])
    assert stop.value.code == 130
    resume = tmp_path / "set.resume"
    assert f"set was not written; run the same command again to continue from {resume}" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()
    assert sorted(p.name for p in resume.iterdir()) == [".spacetorch_own", "layer2.0.done.npz", "layer3.0.state.npz"]

    monkeypatch.setattr(S, "_run_plan", original)
    other = [*args, "--out", str(tmp_path / "set"), "--seed", "7"]  # other settings: the finished layer is not taken
    assert exit_code(main, other) == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        f"{resume / 'layer2.0.done.npz'}: this finished layer is of a run with other settings (seed differ); run again "
        "with the same checkpoint, positions and options to continue it, or delete it to start over")
    assert sorted(p.name for p in resume.iterdir()) == [".spacetorch_own", "layer2.0.done.npz", "layer3.0.state.npz"]
    assert main([*args, "--out", str(tmp_path / "set")]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    resumed, whole = NetworkPositions.load_from_dir(tmp_path / "set"), NetworkPositions.load_from_dir(tmp_path / "whole")
    for name in ("layer2.0", "layer3.0"):
        np.testing.assert_array_equal(resumed[name].coordinates, whole[name].coordinates)
    assert not resume.exists()
