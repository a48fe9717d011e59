#!/usr/bin/env python
"""Training-step cost of the spatial loss: the TDANN step against the same step with alpha = 0
and against the original design's step.

One step = forward of the spatial ResNet-18 trunk and the SimCLR projection head on both views,
the loss, backward and an SGD update.  Three variants, alternating step by step so that drifts
in clock speed hit all alike:

* ``alpha=0``: the registered ``spatial_correlation_simclr_info_nce_loss`` with every weight 0
  (SimCLR, plus each layer's spatial loss measured without gradient for the log);
* ``ours``: the same loss with alpha 0.25 on every layer (tables on the device, cached);
* ``original``: the original design's per-step work: every layer's neighborhood table (int64)
  and coordinates copied from the host to the device on every step, the spatial loss computed
  with them, and computed a second time after the update for logging (with a host sync per
  layer), as the original train step did.

    python bench/bench_train_step.py                       # CPU: batch 16, 224 px
    python bench/bench_train_step.py --device cuda --batch 128 --amp bf16 --channels-last
    python bench/bench_train_step.py --device cuda --amp fp16 --neighborhoods 20000 --compile

Prints the settings, each variant's median ms/step and images/s (an image is a pair of views, as
VISSL counts), and the ratios ours / alpha=0
(target on a GPU, batch 128, 224 px: at most 1.05) and original / ours (target: at least 2).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import spacetorch.vissl  # noqa: E402,F401  (registers the loss; applies the VISSL fixes)
from spacetorch.losses import spatial_loss  # noqa: E402
from spacetorch.models import retinotopic_positions  # noqa: E402
from spacetorch.models.layers import vissl_key  # noqa: E402
from spacetorch.models.positions import NetworkPositions
from spacetorch.models.trunks import spatial_resnet  # noqa: E402
from spacetorch.vissl.registry import SpatialCorrelationSimclrInfoNCELoss  # noqa: E402


def _model(args: argparse.Namespace, positions: NetworkPositions) -> nn.ModuleDict:
    trunk = spatial_resnet("resnet18", positions)
    head = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, 128))
    model = nn.ModuleDict({"trunk": trunk, "head": head}).to(args.device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model["trunk"] = torch.compile(model["trunk"])
    return model


def _loss(args: argparse.Namespace, positions: NetworkPositions, alpha: float) -> SpatialCorrelationSimclrInfoNCELoss:
    from vissl.config import AttrDict

    return SpatialCorrelationSimclrInfoNCELoss(
        AttrDict(
            {
                "temperature": 0.1,
                "buffer_params": {"world_size": 1, "embedding_dim": 128, "effective_batch_size": 2 * args.batch},
                "layer_weights": {vissl_key(name): alpha for name in positions},
                "neighborhoods_per_batch": 1,
            }
        )
    )


AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_step(args: argparse.Namespace, positions: NetworkPositions, alpha: float) -> Callable[[torch.Tensor], None]:
    device = torch.device(args.device)
    model = _model(args, positions)
    loss_fn = _loss(args, positions, alpha)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dtype = AMP_DTYPES[args.amp]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)

    def step(images: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            flat, spatial = model["trunk"](images)
            loss = loss_fn([model["head"](flat), spatial], torch.zeros(len(images)))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def build_original_step(args: argparse.Namespace, positions: NetworkPositions, alpha: float) -> Callable[[torch.Tensor], None]:
    """The original design's step: host tables copied to the device per layer and step, the
    spatial loss computed with them, and again after the update for the log."""
    device = torch.device(args.device)
    model = _model(args, positions)
    simclr = _loss(args, positions, 0.0)  # its SimCLR term only (task_loss)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    dtype = AMP_DTYPES[args.amp]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    host = {
        vissl_key(name): (np.asarray(layer.coordinates, dtype=np.float32), np.asarray(layer.neighborhood_indices).astype(np.int64))
        for name, layer in positions.layer_positions.items()
    }
    rng = np.random.default_rng(0)

    def spatial_terms(spatial: dict) -> dict[str, torch.Tensor]:
        losses = {}
        for key, (coordinates, table) in host.items():
            coords = torch.from_numpy(coordinates).to(device)  # every step, as the original
            hoods = torch.from_numpy(table).to(device)  # the whole int64 table, every step
            row = hoods[int(rng.integers(len(table)))]
            losses[key] = spatial_loss(spatial[key][0], coords, row)
        return losses

    def step(images: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            flat, spatial = model["trunk"](images)
            task = simclr.task_loss(model["head"](flat), torch.zeros(len(images)))
            terms = spatial_terms(spatial)
            loss = task + alpha * sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        with torch.no_grad():  # the second computation, for the log, with a sync per layer
            for value in spatial_terms({k: (v[0].detach(), v[1]) for k, v in spatial.items()}).values():
                value.item()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="images per view (default 128 on GPU, 16 on CPU)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 50 GPU, 8 CPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--amp", choices=sorted(AMP_DTYPES), default="off", help="autocast dtype (fp16 with a gradient scaler)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the trunk (its hooks included)")
    parser.add_argument("--neighborhoods", type=int, default=5000, help="windows per layer of the generated positions (the original: up to 20,000)")
    parser.add_argument("--variants", nargs="+", default=["alpha=0", "ours", "original"], choices=["alpha=0", "ours", "original"])
    parser.add_argument("--positions", type=Path, help="positions directory (default: generated, --neighborhoods windows)")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    args.batch = args.batch or (128 if gpu else 16)
    args.steps = args.steps or (50 if gpu else 8)

    from classy_vision.generic.distributed_util import set_cpu_device, set_cuda_device_index

    if gpu:  # where VISSL's SimCLR criterion puts its masks
        set_cuda_device_index(torch.device(args.device).index or 0)
    else:
        set_cpu_device()
    positions = (
        NetworkPositions.load_from_dir(args.positions)
        if args.positions
        else retinotopic_positions("resnet18", n_neighborhoods=args.neighborhoods, input_size=args.image_size)
    )
    torch.manual_seed(0)
    builders = {
        "alpha=0": lambda: build_step(args, positions, 0.0),
        "ours": lambda: build_step(args, positions, 0.25),
        "original": lambda: build_original_step(args, positions, 0.25),
    }
    steps: dict[str, Callable[[torch.Tensor], None]] = {name: builders[name]() for name in args.variants}
    images = torch.randn(2 * args.batch, 3, args.image_size, args.image_size, device=args.device)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)

    def timed(fn: Callable[[torch.Tensor], None]) -> float:
        if gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(images)
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    times: dict[str, list] = {name: [] for name in steps}
    for i in range(args.warmup + args.steps):
        for name, fn in steps.items():
            elapsed = timed(fn)
            if i >= args.warmup:
                times[name].append(elapsed)

    if gpu:
        device_name = torch.cuda.get_device_name(torch.device(args.device))
    else:
        device_name = f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    windows = max(len(layer.neighborhood_indices) for layer in positions.layer_positions.values())
    print(f"device: {device_name}; torch {torch.__version__}")
    print(
        f"ResNet-18 TDANN step, SimCLR 2 views x {args.batch} images, {args.image_size} px, amp={args.amp}, "
        f"channels_last={args.channels_last}, compile={args.compile}, {windows} windows per layer, "
        f"{args.steps} timed steps per variant"
    )
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"  {name:<9} median {median * 1000:9.1f} ms/step  {args.batch / median:8.1f} images/s  (min {min(times[name]) * 1000:.1f})")
    if "ours" in medians and "alpha=0" in medians:
        print(f"  ratio ours / alpha=0: {medians['ours'] / medians['alpha=0']:.3f}  (target <= 1.05)")
    if "ours" in medians and "original" in medians:
        print(f"  ratio original / ours: {medians['original'] / medians['ours']:.3f}  (target >= 2)")


if __name__ == "__main__":
    main()
