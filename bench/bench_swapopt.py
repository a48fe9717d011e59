#!/usr/bin/env python
"""Benchmark: swapopt's two engines side by side, against the plain reference and the machine's floor.

The layers are those of a ResNet-18 at 224 px on retinotopic positions; the responses are
those of a seeded, untrained ResNet-18 to the 640 standard sine gratings (no download needed).
Every engine runs the same plan (windows, subsets, candidate pairs) drawn from one seed, and
every time includes computing each window's correlations.

Printed, in one run:
* the machine's measured matrix-product rate, on the CPU (a 640 x 500 block by its transpose,
  the shape of a deep layer's window) and on the GPU if there is one (a batch of them);
* on ``--layer``: the plain reference (NumPy, one pair at a time) against the numba engine on the
  same windows, the ratio, and whether they took the same decisions (numba in float64 for that
  check); with a GPU, whether the Triton engine takes numba's decisions in float64, and in
  float32 how many swaps each keeps and how many units end in the same place;
* each engine's steady rate per layer (``--windows`` windows of 500 attempts), the wall time of a
  full swapopt at 5e7 attempts per layer extrapolated from it, and beside it the **arithmetic
  floor**: the FLOP of a window (its correlation block and its attempts' dot products) at the
  measured matrix-product rate.  The windows of a deep layer overlap, so they run one after
  another; the "chain" column is how many attempts must run one after another per 2,048 windows.

    python bench/bench_swapopt.py --reference-windows 40 --windows 2000

Without CUDA the Triton engine can only be interpreted (a correctness mode, far too slow to
time); it is then left out of the rates.
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


def _cpu_matmul_rate(stimuli: int = 640, units: int = 500, repeats: int = 7) -> float:
    """FLOP/s of ``Z Z^T`` for a ``units x stimuli`` float32 block (the best of ``repeats``)."""
    z = np.random.default_rng(0).standard_normal((units, stimuli)).astype(np.float32)
    best = min(_timed(lambda: z @ z.T) for _ in range(repeats))
    return 2.0 * units * units * stimuli / best


def _gpu_matmul_rate(device: str, stimuli: int = 640, units: int = 500, batch: int = 32) -> float:
    z = torch.randn(batch, units, stimuli, device=device)
    for _ in range(3):
        torch.bmm(z, z.transpose(1, 2))
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(20):
        torch.bmm(z, z.transpose(1, 2))
    torch.cuda.synchronize()
    return 20 * 2.0 * batch * units * units * stimuli / (time.perf_counter() - start)


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def window_flop(m: np.ndarray, stimuli: int, attempts: int = S.ATTEMPTS_PER_WINDOW) -> float:
    """FLOP of the windows of sizes ``m``: each block ``Z_W Z_W^T`` (``2 S m^2``) and, per
    attempt, four dot products of length ``m`` and the two distance rows (``24 m``)."""
    m = m.astype(np.float64)
    return float(np.sum(2.0 * stimuli * m * m + attempts * 24.0 * m))


def _run(engine: str, device: str, z: np.ndarray, xy: np.ndarray, plan: S.WindowPlan) -> tuple[float, int, np.ndarray]:
    """Seconds, swaps kept and the unit at each slot after ``plan`` on ``engine``."""
    units = np.arange(len(xy))
    run = S._plan_runner(engine, device, z, xy)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    kept = run(units, plan)  # the runner copies the units back: the device is done
    return time.perf_counter() - start, kept, units


def _largest_window(plan: S.WindowPlan) -> S.WindowPlan:
    """``plan``'s largest window alone: the device engine compiles one kernel per block width,
    which the plan's largest window sets."""
    i = int(np.argmax(np.diff(plan.offsets)))
    slots = plan.window(i)
    return S.WindowPlan(slots, np.array([0, len(slots)]), plan.pairs[i:i + 1], np.zeros(1, dtype=np.int64), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-windows", type=int, default=40, help="windows (x 500 attempts) the reference and numba both run")
    parser.add_argument("--windows", type=int, default=2000, help="windows of each engine's steady-rate run, per layer")
    parser.add_argument("--agreement-windows", type=int, default=200, help="windows of the GPU's float32 agreement check")
    parser.add_argument("--layer", default="layer2.0")
    parser.add_argument("--layers", nargs="+", default=None, help="layers of the per-layer table [default: all]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where the Triton engine runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    gpu = args.device.startswith("cuda") and torch.cuda.is_available()
    engines = [("numba", "cpu")] + ([("triton", args.device)] if gpu else [])
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"python {platform.python_version()}, numba threads {S.numba.get_num_threads()}"
          + (f", GPU {torch.cuda.get_device_name(args.device)}" if gpu else ", no GPU (Triton engine not timed)"))
    rates = {"cpu": _cpu_matmul_rate()}
    print(f"matrix products (640 x 500 block by its transpose): CPU {rates['cpu'] / 1e9:.0f} GFLOP/s (float32)", end="")
    if gpu:
        rates[args.device] = _gpu_matmul_rate(args.device)
        print(f", GPU {rates[args.device] / 1e12:.1f} TFLOP/s (float32, batches of 32)", end="")
    print()

    torch.manual_seed(args.seed)
    positions = retinotopic_positions("resnet18", 2_000, args.seed)
    model = TopographicModel(create_model("resnet18"), positions)
    start = time.perf_counter()
    recorded = model.responses(SineGratings(224), list(positions.layer_positions), batch_size=64,
                               device=args.device if gpu else "cpu")
    print(f"responses of every layer to 640 gratings: {time.perf_counter() - start:.1f} s")
    responses = {name: r.numpy() for name, (r, _) in recorded.items()}
    del recorded

    def layer_inputs(name: str, windows: int, seed: int) -> tuple[np.ndarray, S.WindowPlan]:
        layer = positions[name]
        xy = np.ascontiguousarray(np.asarray(layer.coordinates, dtype=np.float64))
        return xy, S.plan_windows(S.SheetWindows(xy, layer.neighborhood_width), windows, np.random.default_rng(seed))

    xy, plan = layer_inputs(args.layer, args.reference_windows, args.seed)
    r = responses[args.layer]
    attempts = len(plan) * S.ATTEMPTS_PER_WINDOW
    sizes = np.diff(plan.offsets)
    print(f"\n{args.layer}: {r.shape[1]:,} units, window {positions[args.layer].neighborhood_width} mm, "
          f"{sizes.mean():.0f} units per window on average (max {sizes.max()})")
    ties: list[int] = []
    start = time.perf_counter()
    expected, decisions = reference_swaps(r, xy, plan, ties)
    reference_seconds = time.perf_counter() - start
    z32, z64 = S.standardize(r, np.float32), S.standardize(r, np.float64)
    _run("numba", "cpu", z32, xy, _largest_window(plan))  # compile / load the kernel, untimed
    fast_seconds = sorted(_run("numba", "cpu", z32, xy, plan)[0] for _ in range(5))[2]
    _, kept64, units64 = _run("numba", "cpu", z64, xy, plan)
    found = np.empty_like(xy)
    found[units64] = xy
    same = kept64 == sum(decisions) and np.array_equal(found, expected)
    print(f"same plan, {attempts:,} attempts ({sum(decisions):,} swaps kept by the reference):")
    print(f"  reference (NumPy, pair by pair)  {attempts / reference_seconds:>12,.0f} attempts/s")
    print(f"  numba (float32, median of 5)     {attempts / fast_seconds:>12,.0f} attempts/s")
    print(f"  ratio                            {reference_seconds / fast_seconds:>12,.0f} x")
    print(f"  same decisions as the reference (numba in float64): {'yes' if same else 'NO'} ({len(ties)} ties, "
          "a swap that leaves the loss the same to 1e-9, kept by neither; the original's rounding decides those)")
    if gpu:
        _, tkept64, tunits64 = _run("triton", args.device, z64, xy, plan)
        print(f"  Triton on the GPU in float64 takes numba's decisions: {'yes' if np.array_equal(tunits64, units64) else 'NO'} "
              f"({tkept64:,} swaps kept)")
        xy_a, plan_a = layer_inputs(args.layer, args.agreement_windows, args.seed + 1)
        _, k64, u64 = _run("numba", "cpu", z64, xy_a, plan_a)
        _, k32, u32 = _run("triton", args.device, z32, xy_a, plan_a)
        print(f"  float32 on the GPU against float64 (numba), {len(plan_a) * S.ATTEMPTS_PER_WINDOW:,} attempts: swaps kept "
              f"{k32:,} vs {k64:,}; units in the same place {np.mean(u32 == u64):.4%}")

    print(f"\nsteady rates ({args.windows} windows x 500 attempts per layer, float32) and a full ResNet-18 swapopt at "
          f"{PUBLISHED_ATTEMPTS:.0e} attempts per layer, extrapolated; floor: the same FLOP at the measured matrix-product rate")
    totals = {engine: [0.0, 0.0] for engine, _ in engines}
    for name in args.layers or list(responses):
        z = S.standardize(responses[name], np.float32)
        xy_l, plan_l = layer_inputs(name, args.windows, args.seed)
        sizes = np.diff(plan_l.offsets)
        chain = (plan_l.wave.max() + 1) * S.ATTEMPTS_PER_WINDOW * 2048 / max(len(plan_l), 1)
        flop = window_flop(sizes, z.shape[1])
        for engine, device in engines:
            _run(engine, device, z, xy_l, _largest_window(plan_l))  # compile for this plan's block width, untimed
            seconds, _, _ = _run(engine, device, z, xy_l, plan_l)
            rate = len(plan_l) * S.ATTEMPTS_PER_WINDOW / seconds
            full = PUBLISHED_ATTEMPTS / rate
            floor = flop / rates[device] * PUBLISHED_ATTEMPTS / (len(plan_l) * S.ATTEMPTS_PER_WINDOW)
            totals[engine][0] += full
            totals[engine][1] += floor
            print(f"  {name:9s} {engine:6s} {z.shape[0]:>8,} units, {sizes.mean():>4.0f} per window, chain {chain:>9,.0f}: "
                  f"{rate:>11,.0f} attempts/s -> {full / 60:>6.1f} min for {PUBLISHED_ATTEMPTS:.0e} (floor {floor / 60:.2f} min)")
    for engine, (full, floor) in totals.items():
        print(f"  whole ResNet-18 ({engine}): {full / 60:.1f} min (extrapolated); arithmetic floor {floor / 60:.2f} min")


if __name__ == "__main__":
    main()
