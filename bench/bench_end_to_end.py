#!/usr/bin/env python
"""End-to-end training speed: ``train.py`` (VISSL's data loading with the SimCLR augmentations,
the TDANN trunk, the spatial loss, checkpointing off) against the model-only step of
``bench_train_step.py`` on the same device, batch and image size.

Images/s end to end come from VISSL's own log: the timestamps of its per-iteration lines
(``LOG_FREQUENCY=1``) over ``--iterations`` iterations after the warm-up.  The warm-up must
outlast the batches the data-loader workers queue ahead (two each): timed earlier, a run whose
loading is the bottleneck would look as fast as the model, so by default it is 3 x workers + 3
iterations.  The model-only figure is the ``ours`` step
on random tensors already on the device.  Their ratio is what data loading and the rest of the
trainer cost; ``--workers`` compares data-loader worker counts in one run.

    python bench/bench_end_to_end.py                                   # CPU, the demo config
    python bench/bench_end_to_end.py --gpus 0 --batch 128 --image-size 224 --workers 4 8 16 --amp bf16 --iterations 40

The image set is ``--images`` (an ImageFolder with a ``train`` folder; default the embedded one,
``data/demo_images``, made if missing); every run reads
warm-up + ``--iterations`` batches of it (``DATA_LIMIT``), or whole epochs of it where one is too short.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_LINE = re.compile(r"^INFO (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*\] iter: (\d+);")


def iteration_times(log: str) -> dict[int, dt.datetime]:
    """``{iteration: time of its log line}`` from VISSL's log (``LogLossLrEtaHook`` lines)."""
    times = {}
    for line in log.splitlines():
        match = _LINE.match(line)
        if match:
            times[int(match[2])] = dt.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f")
    return times


def images_per_second(times: dict[int, dt.datetime], batch: int, warmup: int) -> float:
    """Images/s between the line of iteration ``warmup`` and the last one."""
    kept = sorted(i for i in times if i >= warmup)
    if len(kept) < 2:
        raise ValueError(f"too few logged iterations after warm-up {warmup}: {sorted(times)}")
    seconds = (times[kept[-1]] - times[kept[0]]).total_seconds()
    return batch * (kept[-1] - kept[0]) / seconds


def warmup_iterations(args: argparse.Namespace, workers: int) -> int:
    return args.warmup if args.warmup is not None else 3 * workers + 3


def run_train(args: argparse.Namespace, workers: int, positions: Path, images: Path, out: Path) -> float:
    gpu = args.gpus is not None
    warmup = warmup_iterations(args, workers)
    iterations = warmup + args.iterations
    available = sum(1 for path in (images / "train").rglob("*") if path.is_file())
    per_epoch = available // (args.batch * args.processes)
    if per_epoch < 1:
        raise SystemExit(f"{images / 'train'} holds {available} images, fewer than one batch of {args.batch} x {args.processes}")
    epochs = -(-iterations // per_epoch)  # more epochs of the whole set where one is too short
    limit = iterations * args.batch * args.processes if epochs == 1 else -1
    overrides = [
        f"config={args.config}",
        f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{images / 'train'}]",
        f"config.DATA.TRAIN.DATA_LIMIT={limit}",
        f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={args.batch}",
        f"config.DATA.TRAIN.TRANSFORMS.1.size={args.image_size}",
        f"config.DATA.NUM_DATALOADER_WORKERS={workers}",
        f"config.DATA.PIN_MEMORY={'true' if gpu else 'false'}",
        f"config.OPTIMIZER.num_epochs={epochs}",
        "config.LOG_FREQUENCY=1",
        "config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=false",
        f"config.CHECKPOINT.DIR={out}",
        "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1000",
    ]
    if args.amp != "off":
        overrides += ["config.MODEL.AMP_PARAMS.USE_AMP=true", "config.MODEL.AMP_PARAMS.AMP_TYPE=pytorch"]
    command = [sys.executable, str(REPO / "train.py"), *overrides] + (["--gpus", args.gpus] if gpu else [])
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    if result.returncode != 0:
        raise SystemExit(f"train.py failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return images_per_second(iteration_times(result.stdout + result.stderr), args.batch * args.processes, warmup)


def model_only(args: argparse.Namespace, positions_dir: Path) -> float:
    import time

    import torch

    from bench.bench_train_step import build_step
    from spacetorch.models.positions import NetworkPositions

    device = f"cuda:{args.gpus.split(',')[0]}" if args.gpus is not None else "cpu"
    step_args = argparse.Namespace(device=device, batch=args.batch, channels_last=False, compile=False, amp=args.amp)
    from classy_vision.generic.distributed_util import set_cpu_device, set_cuda_device_index

    if device.startswith("cuda"):
        set_cuda_device_index(torch.device(device).index or 0)
    else:
        set_cpu_device()
    step = build_step(step_args, NetworkPositions.load_from_dir(positions_dir), 0.25)
    images = torch.randn(2 * args.batch, 3, args.image_size, args.image_size, device=device)
    times = []
    warmup = warmup_iterations(args, 0)
    for i in range(warmup + args.iterations):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step(images)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return args.batch / statistics.median(times)  # images (pairs of views) per second, as VISSL counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo_cpu_simclr_spatial_resnet18")
    parser.add_argument("--gpus", default=None, help="train.py --gpus (default: CPU)")
    parser.add_argument("--batch", type=int, default=16, help="images per process")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=12, help="timed iterations per run, after the warm-up")
    parser.add_argument("--warmup", type=int, default=None, help="iterations before the timing [default: 3 x workers + 3]")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="data-loader worker counts to compare")
    parser.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off", help="model-only step's autocast; train.py gets AMP on")
    parser.add_argument("--images", type=Path, default=None, help="image folder with a train/ folder (default: data/demo_images)")
    args = parser.parse_args()
    if args.images is not None and not (args.images / "train").is_dir():
        parser.error(f"--images {args.images}: no train/ folder in it (an ImageFolder: train/<class>/<image>)")
    args.processes = len(args.gpus.split(",")) if args.gpus else 1

    from spacetorch.data import make_demo_image_folder
    from spacetorch.models import retinotopic_positions

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = args.images or REPO / "data" / "demo_images"
        if not (images / "train").is_dir():
            images = make_demo_image_folder(root / "images", n_val=0)
        positions = retinotopic_positions("resnet18", n_neighborhoods=5000, input_size=args.image_size).save(root / "positions")
        print(f"train.py {args.config}, {'GPUs ' + args.gpus if args.gpus else 'CPU'}, batch {args.batch} x {args.processes} process(es), "
              f"{args.image_size} px, {args.iterations} timed iterations after "
              f"{'3 x workers + 3' if args.warmup is None else args.warmup} warm-up, AMP {args.amp}")  # fmt: skip
        ours = model_only(args, positions)
        print(f"  model-only step (ours):          {ours:8.1f} images/s per process")
        for workers in args.workers:
            end_to_end = run_train(args, workers, positions, images, root / f"run{workers}") / args.processes
            print(f"  train.py, {workers:2d} data-loader workers:  {end_to_end:8.1f} images/s per process  ({end_to_end / ours:.2f} of model-only)")


if __name__ == "__main__":
    main()
