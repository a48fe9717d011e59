"""bench/gpu_check.py: its CPU dry run, so that the one-call GPU check cannot rot between GPU runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"
CUDA_STEPS = ["swapopt", "train-step", "train-nccl", "end-to-end", "pytest-gpu", "locally-connected"]
CPU_STEPS = ["install", "environment", "data"]


def _make_wheels(folder: Path) -> None:
    """`make gpu-wheels`, for this machine's Python (the registry is reachable wherever the tests install)."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(["make", "-s", "-C", str(REPO), "gpu-wheels", f"WHEEL_DIR={folder}", f"GPU_PYTHON={python}"],
                   check=True, capture_output=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run is for machines without CUDA; a GPU runs the real check")
def test_the_dry_run_installs_the_wheels_and_skips_the_cuda_steps_saying_why(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _make_wheels(wheels)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(SCRIPT), "--wheels", str(wheels), "--out", str(out), "--dry-run",
                             "--steps", *CPU_STEPS, *CUDA_STEPS], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {s["name"]: s for s in json.loads((out / "summary.json").read_text())}
    assert set(steps) == {*CPU_STEPS, *CUDA_STEPS}
    assert steps["install"]["status"] == "passed"
    assert any(re.fullmatch(r"(\d+) of \1 requirements of spacetorch met", line) for line in steps["install"]["numbers"])
    assert steps["environment"]["status"] == "passed"
    environment = json.loads(next(line for line in steps["environment"]["numbers"] if line.startswith("{")))
    assert environment["vissl"] == "0.1.6" and environment["cuda_available"] is False
    assert environment["classy_vision"] == "0.7.0", "classy-vision's own wheel, not the copy inside VISSL's"
    assert environment["classy_vision_file"].startswith(str(Path(tempfile.gettempdir()))), "imported from the install"
    assert steps["data"]["status"] == "passed"
    for name in CUDA_STEPS:
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


@pytest.mark.slow  # it waits out a step's time limit
def test_a_step_the_budget_cannot_hold_is_skipped_saying_so(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--steps", "environment", "--budget", "5"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    (step,) = json.loads((tmp_path / "summary.json").read_text())
    assert step["status"] == "skipped" and re.fullmatch(r"\d s of the --budget left", step["reason"]), step


def test_requirements_are_checked_against_what_is_installed() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check-requirements"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and re.search(r"(\d+) of \1 requirements of spacetorch met", result.stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is over


SLEEPER = "import os, subprocess, sys, time; p = subprocess.Popen(['sleep', '60']); open(sys.argv[1], 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)"


@pytest.mark.slow  # it waits out a step's time limit
@pytest.mark.parametrize("through_kill_and_resume", [False, True])
def test_a_step_over_its_limit_leaves_no_process_behind(tmp_path: Path, through_kill_and_resume: bool) -> None:
    """Killing a step kills what it started (a train.py's ranks and data-loader workers), also when
    the step's own command runs it in a process group of its own (the kill-and-resume check)."""
    from bench.gpu_check import KILL_AND_RESUME, Step, run_step

    pid_file = tmp_path / "grandchild.pid"
    command = [sys.executable, "-c", SLEEPER, str(pid_file)]
    if through_kill_and_resume:
        command = [sys.executable, str(SCRIPT), KILL_AND_RESUME, str(tmp_path / "run"), "0", *command]
    step = Step("sleeper", 2, [command], needs_cuda=False)
    run_step(step, dict(os.environ), tmp_path / "gpu_check.log", cuda=False, budget_left=float("inf"))
    assert step.status == "failed" and step.reason == "over its limit of 2 s"
    assert "started" in (tmp_path / "gpu_check.log").read_text(), "the output so far is kept"
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def _gpu_check_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_stalled_training_run_is_located_by_the_stages_train_py_prints() -> None:
    from spacetorch.vissl.hooks import STARTUP_STAGES

    check = _gpu_check_module()
    assert check.STARTUP_STAGES == STARTUP_STAGES, "gpu_check.py reads what the hook prints"
    start = "train.py: starting VISSL training\n"
    assert "never reached VISSL's launch" in check.startup_reached("train.py: checking the config\n")
    assert "after 'starting VISSL training', in the rendezvous" in check.startup_reached(start)
    lines = [f"train.py: rank 0: {stage} (1.0 s after the rank started)\n" for stage in STARTUP_STAGES]
    assert "after 'waiting for the first batch', in data loading" in check.startup_reached(start + "".join(lines[:2]))
    assert "after 'first batch read', in the first step" in check.startup_reached(start + "".join(lines[:3]))
    done = start + "".join(lines) + "INFO Rank: 0; [ep: 0] iter: 10; lr: 0.3\nINFO Rank: 0; [ep: 0] iter: 20; lr: 0.3\n"
    assert check.startup_reached(done) == "training had started; last iteration logged: 20"
