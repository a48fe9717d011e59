#!/usr/bin/env python
"""Training-step cost of the spatial loss: TDANN step vs the same step with alpha = 0.

One step = forward of the spatial ResNet trunk and the SimCLR projection head on both views,
the registered ``spatial_correlation_simclr_info_nce_loss``, backward and an SGD update.
With alpha = 0 the loss skips every layer's spatial term, so the ratio of the two median
step times is what the spatial loss adds.  The two variants alternate step by step, so
drifts in clock speed hit both alike.

    python bench/bench_train_step.py                       # CPU: batch 16, 224 px
    python bench/bench_train_step.py --device cuda --batch 128 --amp --channels-last

Prints the settings, each variant's median step time and their ratio (target on a GPU,
batch 128, 224 px: at most 1.05).
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

import torch  # noqa: E402
from torch import nn  # noqa: E402

import spacetorch.vissl  # noqa: E402,F401  (registers the loss; applies the VISSL fixes)
from spacetorch.models.layers import vissl_key  # noqa: E402
from spacetorch.models.positions import NetworkPositions, retinotopic_positions  # noqa: E402
from spacetorch.models.trunks import spatial_resnet  # noqa: E402
from spacetorch.vissl.registry import SpatialCorrelationSimclrInfoNCELoss  # noqa: E402


def build_step(args: argparse.Namespace, positions: NetworkPositions, alpha: float) -> Callable[[torch.Tensor], None]:
    from vissl.config import AttrDict

    device = torch.device(args.device)
    trunk = spatial_resnet("resnet18", positions)
    head = nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, 128))
    model = nn.ModuleDict({"trunk": trunk, "head": head}).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    loss_fn = SpatialCorrelationSimclrInfoNCELoss(
        AttrDict(
            {
                "temperature": 0.1,
                "buffer_params": {"world_size": 1, "embedding_dim": 128, "effective_batch_size": 2 * args.batch},
                "layer_weights": {vissl_key(name): alpha for name in positions},
                "neighborhoods_per_batch": 1,
            }
        )
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp)

    def step(images: torch.Tensor) -> None:
        with torch.autocast(device.type, enabled=args.amp):
            flat, spatial = model["trunk"](images)
            loss = loss_fn([model["head"](flat), spatial], torch.zeros(len(images)))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="images per view (default 128 on GPU, 16 on CPU)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 50 GPU, 8 CPU)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="autocast to float16/bfloat16")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--positions", type=Path, help="positions directory (default: generated, 5,000 windows)")
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
        else retinotopic_positions("resnet18", n_neighborhoods=5000, input_size=args.image_size)
    )
    torch.manual_seed(0)
    steps: dict[str, Callable[[torch.Tensor], None]] = {
        "alpha=0.25": build_step(args, positions, 0.25),
        "alpha=0": build_step(args, positions, 0.0),
    }
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
    print(f"device: {device_name}; torch {torch.__version__}")
    print(
        f"ResNet-18 TDANN step, SimCLR 2 views x {args.batch} images, {args.image_size} px, amp={args.amp}, "
        f"channels_last={args.channels_last}, {args.steps} timed steps per variant"
    )
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"  {name:<11} median {median * 1000:9.1f} ms/step  (min {min(times[name]) * 1000:.1f})")
    print(f"  ratio spatial / alpha=0: {medians['alpha=0.25'] / medians['alpha=0']:.3f}")


if __name__ == "__main__":
    main()
