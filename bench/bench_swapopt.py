#!/usr/bin/env python
"""Benchmark: swapopt's fast path against the plain reference, on the same windows and pairs.

The layer is layer2.0 of a ResNet-18 at 224 px (100,352 units, retinotopic positions); the
responses are those of a seeded, untrained ResNet-18 to the 640 standard sine gratings (no
download needed).  Both implementations run the same plan (windows, subsets, candidate
pairs) drawn from one seed, and both include computing each window's correlations.

Printed, in one run:
* attempts per second of the reference (NumPy, one pair at a time, both rows' loss computed
  before and after each swap) and of the fast path on the same plan, the ratio, and whether
  the two took the same decisions (the fast path in float64 for that check);
* the fast path's steady rate on a longer run, per layer of the whole ResNet-18, and the wall
  time of a full swapopt at 5e7 attempts per layer, extrapolated from those measured rates.

    python bench/bench_swapopt.py --reference-windows 40 --fast-windows 2000
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from spacetorch.models import create_model, retinotopic_positions
from spacetorch.models.positions import swapopt as S
from spacetorch.models.positions._swapopt_reference import reference_swaps
from spacetorch.models.topographic import TopographicModel
from spacetorch.stimuli import SineGratings

PUBLISHED_ATTEMPTS = 50_000_000


def _fast(z: np.ndarray, xy: np.ndarray, plan: S.WindowPlan) -> tuple[float, int, np.ndarray]:
    units = np.arange(len(xy))
    start = time.perf_counter()
    accepted = S._run_plan(z, units, xy, plan)
    return time.perf_counter() - start, accepted, units


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-windows", type=int, default=40, help="windows (x 500 attempts) both run")
    parser.add_argument("--fast-windows", type=int, default=2000, help="windows of the fast path's steady-rate run, per layer")
    parser.add_argument("--layer", default="layer2.0")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"python {platform.python_version()}, numba threads {S.numba.get_num_threads()}")

    torch.manual_seed(args.seed)
    positions = retinotopic_positions("resnet18", 2_000, args.seed)
    model = TopographicModel(create_model("resnet18"), positions)
    start = time.perf_counter()
    recorded = model.responses(SineGratings(224), list(positions.layer_positions), batch_size=64, device="cpu")
    print(f"responses of every layer to 640 gratings: {time.perf_counter() - start:.1f} s")

    layer = positions[args.layer]
    responses = recorded[args.layer][0].numpy()
    xy = np.ascontiguousarray(np.asarray(layer.coordinates, dtype=np.float64))
    windows = S.SheetWindows(xy, layer.neighborhood_width)
    plan = S.plan_windows(windows, args.reference_windows, np.random.default_rng(args.seed))
    attempts = len(plan) * S.ATTEMPTS_PER_WINDOW
    sizes = np.diff(plan.offsets)
    print(f"\n{args.layer}: {layer.num_units:,} units, window {layer.neighborhood_width} mm, "
          f"{sizes.mean():.0f} units per window on average (max {sizes.max()})")

    start = time.perf_counter()
    reference_xy, decisions = reference_swaps(responses, xy, plan)
    reference_seconds = time.perf_counter() - start

    z32, z64 = S.standardize(responses, np.float32), S.standardize(responses, np.float64)
    _fast(z32, xy, S.plan_windows(windows, 4, np.random.default_rng(99)))  # compile / load the kernel
    seconds = sorted(_fast(z32, xy, plan)[0] for _ in range(5))
    fast_seconds = seconds[2]
    _, accepted64, units = _fast(z64, xy, plan)
    found = np.empty_like(xy)
    found[units] = xy
    same = accepted64 == sum(decisions) and np.array_equal(found, reference_xy)
    print(f"same plan, {attempts:,} attempts ({sum(decisions):,} swaps kept by the reference):")
    print(f"  reference (NumPy, pair by pair)  {attempts / reference_seconds:>12,.0f} attempts/s")
    print(f"  fast path (float32, median of 5) {attempts / fast_seconds:>12,.0f} attempts/s")
    print(f"  ratio                            {reference_seconds / fast_seconds:>12,.0f} x")
    print(f"  same decisions as the reference (fast path in float64): {'yes' if same else 'NO'}")

    print(f"\nfast path, steady rate ({args.fast_windows} windows x 500 attempts per layer) and a full "
          f"ResNet-18 swapopt at {PUBLISHED_ATTEMPTS:.0e} attempts per layer (extrapolated from the rate):")
    total = 0.0
    for name, (r, _) in recorded.items():
        lp = positions[name]
        lxy = np.ascontiguousarray(np.asarray(lp.coordinates, dtype=np.float64))
        lwin = S.SheetWindows(lxy, lp.neighborhood_width)
        lplan = S.plan_windows(lwin, args.fast_windows, np.random.default_rng(args.seed))
        z = S.standardize(r.numpy())
        seconds, accepted, _ = _fast(z, lxy, lplan)
        rate = len(lplan) * S.ATTEMPTS_PER_WINDOW / seconds
        full = PUBLISHED_ATTEMPTS / rate
        total += full
        print(f"  {name:9s} {lp.num_units:>8,} units, {np.diff(lplan.offsets).mean():>4.0f} per window: "
              f"{rate:>10,.0f} attempts/s -> {full / 60:>6.1f} min for {PUBLISHED_ATTEMPTS:.0e}")
    print(f"  whole ResNet-18 (8 layers): {total / 60:.0f} min (extrapolated)")


if __name__ == "__main__":
    main()
