"""The position script: its --help run as a user would (``python scripts/save_retinotopic_positions.py``),
the rest through its ``main`` in this process (the same code, without a new interpreter per test)."""

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch

from spacetorch.models import create_model, model_info
from spacetorch.models.capture import output_dims
from spacetorch.models.positions import NetworkPositions

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "save_retinotopic_positions.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    from spacetorch.cli.save_retinotopic_positions import main

    out, err, before = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args)) or 0
            except SystemExit as exited:
                code = int(exited.code or 0)
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.mark.slow  # a new interpreter importing torch: seconds
def test_help_lists_the_options(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0
    for option in ("--arch", "--out", "--n-neighborhoods", "--seed", "--format"):
        assert option in result.stdout


@pytest.mark.parametrize("fmt", ["pkl", "npz"])
def test_writes_a_set_the_model_accepts(tmp_path, fmt):
    out = tmp_path / "set"
    result = _run("--out", str(out), "--n-neighborhoods", "200", "--format", fmt, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote 8 layers" in result.stdout
    assert sorted(p.suffix for p in out.iterdir()) == [".json"] + [f".{fmt}"] * 8 + [".txt"]
    with torch.device("meta"):
        model = create_model("resnet18")
    positions = NetworkPositions.load_from_dir(out)
    positions.check_layers(output_dims(model, model_info("resnet18").layer_names(model)))
    assert positions.version == 1
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_default_output_goes_under_positions(tmp_path):
    result = _run("--n-neighborhoods", "100", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "positions" / "resnet18_retinotopic_init" / "layer4.1.pkl").is_file()


def test_unknown_arch_is_named(tmp_path):
    result = _run("--arch", "vgg16", cwd=tmp_path)
    assert result.returncode == 2
    assert "--arch" in result.stderr and "resnet18" in result.stderr


def test_existing_directory_with_other_files_is_left_alone(tmp_path):
    out = tmp_path / "set"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = _run("--out", str(out), "--n-neighborhoods", "100", cwd=tmp_path)
    assert result.returncode == 2
    assert f"--out {out}: directory exists and is not empty" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
