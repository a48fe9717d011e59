"""spacetorch installed from a wheel, used outside the checkout: ``python -m spacetorch train``
finds the shipped configs and the dataset catalog in the package and trains, with two gloo
ranks (which must get VISSL's registrations too)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from train_helpers import REPO, SHORT_RUN, small_run_overrides


@pytest.mark.slow
def test_an_installed_wheel_trains_outside_the_checkout(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    wheel_dir, site, work, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "work", tmp_path / "source"
    work.mkdir()
    # a copy of what the wheel is built from (setuptools writes build/ beside setup.py)
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("spacetorch", "configs"):
        shutil.copytree(REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheel_dir), str(source)], check=True,
                   cwd=tmp_path, capture_output=True)
    (wheel,) = wheel_dir.glob("spacetorch-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONUNBUFFERED="1")
    where = subprocess.run([sys.executable, "-c", "import spacetorch; print(spacetorch.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(site)), f"spacetorch was imported from {where}, not the installed wheel"

    overrides = small_run_overrides(small_positions, small_images, work / "run")
    overrides = [o for o in overrides if o not in SHORT_RUN] + [*SHORT_RUN, "config.DISTRIBUTED.NUM_PROC_PER_NODE=2",
                                                               "config.DATA.TRAIN.DATA_LIMIT=32"]
    result = subprocess.run([sys.executable, "-m", "spacetorch", "train", *overrides], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "spacetorch train: starting VISSL training" in result.stdout
    assert (work / "run" / "model_final_checkpoint_phase0.torch").is_file()
    assert "world_size: 2" in (work / "run" / "train_config.yaml").read_text()
