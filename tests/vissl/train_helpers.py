"""Helpers for the VISSL tests: small runs of train.py in a fresh process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAIN_PY = REPO / "train.py"
IMAGE_SIZE = 64
N_HOODS = 400  # windows per layer: enough that every 64 px layer keeps some

#: overrides that run a GPU config (4 NCCL processes, SyncBN) as one CPU process with gloo
ONE_CPU_PROCESS = [
    "config.MACHINE.DEVICE=cpu",
    "config.DISTRIBUTED.BACKEND=gloo",
    "config.DISTRIBUTED.NUM_PROC_PER_NODE=1",
    "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=false",
]

#: overrides for a run of a few seconds per epoch that logs every iteration
SHORT_RUN = [
    "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
    "config.DATA.NUM_DATALOADER_WORKERS=0",
    "config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=false",
    "config.LOG_FREQUENCY=1",
]


def small_run_overrides(positions: Path, images: Path, checkpoint_dir: Path) -> list[str]:
    """Overrides of the CPU demo config for a run of a few seconds per epoch."""
    return [
        "config=demo_cpu_simclr_spatial_resnet18",
        f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{images / 'train'}]",
        f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",
        *SHORT_RUN,
        "config.OPTIMIZER.num_epochs=1",
        f"config.CHECKPOINT.DIR={checkpoint_dir}",
    ]


def run_train(args: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python train.py ARGS`` in a fresh process (as users do), from ``cwd``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, str(TRAIN_PY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_train_until(args: Sequence[str], cwd: Path, checkpoint: Path, timeout: float = 240) -> subprocess.Popen:
    """Start ``python train.py ARGS`` in its own process group (as a terminal does) and return
    once it has written ``checkpoint``.  Its output goes to ``cwd/train.stdout`` and
    ``cwd/train.stderr`` (files, not pipes, which a long log would fill and block)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    with open(cwd / "train.stdout", "w") as out, open(cwd / "train.stderr", "w") as err:
        run = subprocess.Popen(
            [sys.executable, str(TRAIN_PY), *args], cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
        )
    deadline = time.monotonic() + timeout
    try:
        while not checkpoint.exists():
            if run.poll() is not None:
                raise AssertionError(f"train.py ended before writing {checkpoint.name}:\n{(cwd / 'train.stderr').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {checkpoint.name} after {timeout} s")
            time.sleep(0.2)
    except BaseException:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        raise
    return run
