"""bench/gpu_check.py: its CPU dry run, so that the one-call GPU check cannot rot between GPU runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"
CPU_STEPS = ["install", "environment", "pytest-gpu", "train-step", "train-nccl", "end-to-end", "locally-connected"]


def _make_wheels(folder: Path) -> None:
    """What `make gpu-wheels` runs (the registry is reachable wherever the tests install)."""
    makefile = (REPO / "Makefile").read_text()
    packages = re.search(r"GPU_WHEELS := (.*?)\n\n", makefile, re.S).group(1).replace("\\\n", " ").split()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps", "-c",
                    str(REPO / "requirements" / "constraints.txt"), "-w", str(folder), *packages], check=True)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run is for machines without CUDA; a GPU runs the real check")
def test_the_dry_run_installs_the_wheels_and_skips_the_cuda_steps_saying_why(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _make_wheels(wheels)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(SCRIPT), "--wheels", str(wheels), "--out", str(out), "--dry-run",
                             "--steps", *CPU_STEPS], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {s["name"]: s for s in json.loads((out / "summary.json").read_text())}
    assert list(steps) == CPU_STEPS
    assert steps["install"]["status"] == "passed"
    assert any(re.fullmatch(r"(\d+) of \1 requirements of spacetorch met", line) for line in steps["install"]["numbers"])
    assert steps["environment"]["status"] == "passed"
    environment = json.loads(next(line for line in steps["environment"]["numbers"] if line.startswith("{")))
    assert environment["vissl"] == "0.1.6" and environment["cuda_available"] is False
    for name in CPU_STEPS[2:]:
        assert steps[name]["status"] == "skipped" and "no CUDA device" in steps[name]["reason"], name
    log = (out / "gpu_check.log").read_text()
    assert "===== install: passed" in log and "===== locally-connected: skipped" not in log  # skipped steps run nothing


def test_missing_wheels_and_unknown_steps_are_named(tmp_path: Path) -> None:
    (tmp_path / "vissl-0.1.6-py3-none-any.whl").write_bytes(b"")
    result = subprocess.run([sys.executable, str(SCRIPT), "--wheels", str(tmp_path), "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "no wheel of classy-vision, fvcore" in result.stderr
    assert "vissl," not in result.stderr and not (tmp_path / "o").exists()
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "o"), "--steps", "nosuch"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and "--steps: unknown ['nosuch']" in result.stderr and not (tmp_path / "o").exists()


def test_requirements_are_checked_against_what_is_installed() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check-requirements"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and re.search(r"(\d+) of \1 requirements of spacetorch met", result.stdout)
