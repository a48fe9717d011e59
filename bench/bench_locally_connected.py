#!/usr/bin/env python
"""Benchmark: the locally connected layer's forward + backward, against the unfold-and-broadcast
formulation (the weight times the unfolded input, broadcast over output channels, then summed).

Each formulation runs in a fresh process; it prints the time per forward + backward (median of
the repeats, after one warm-up) and the peak memory (CPU: the process's maximum resident set
size, which includes about 0.4 GiB of imported libraries; CUDA: ``torch.cuda.max_memory_allocated``
above what was allocated before), then the ratios of one run.  The
layer is the V1 ResNets' layer1[2] conv2: 64 -> 64 channels, 16 x 16, 3 x 3.

    python bench/bench_locally_connected.py --batch 128 --repeats 3 [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys

_CHILD = r"""
import json, resource, sys, time
import torch
from torch.nn import functional as F
from spacetorch.models.families.v1 import LocallyConnected2d
method, batch, repeats, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
layer = LocallyConnected2d(64, 64, 16, kernel_size=3, padding=1).to(device)
x = torch.randn(batch, 64, 16, 16, device=device, requires_grad=True)

def broadcast(layer, x):
    columns = F.unfold(x, 3, padding=1).reshape(x.shape[0], 1, 64, 9, 256).permute(0, 1, 2, 4, 3)
    weight = layer.weight.reshape(64, 64, 256, 9)
    return (columns * weight[None]).sum(dim=(2, 4)).reshape(x.shape[0], 64, 16, 16)

run = layer if method == "bmm" else (lambda t: broadcast(layer, t))
def step():
    run(x).square().mean().backward()
    if device == "cuda":
        torch.cuda.synchronize()
step()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
    base_cuda = torch.cuda.memory_allocated()
times = []
for _ in range(repeats):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
if device == "cuda":
    peak = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the whole process, MiB
print(json.dumps({"seconds": sorted(times)[len(times) // 2], "peak_mib": peak}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.device}, batch {args.batch}")
    results = {}
    for method in ("bmm", "broadcast"):
        out = subprocess.run([sys.executable, "-c", _CHILD, method, str(args.batch), str(args.repeats), args.device],
                             capture_output=True, text=True, check=True)
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[method]
        name = "batched matmul (spacetorch)" if method == "bmm" else "unfold x broadcast weight"
        print(f"{name:30s} forward+backward {r['seconds'] * 1e3:9.1f} ms   peak {r['peak_mib']:9.0f} MiB")
    fast, slow = results["bmm"], results["broadcast"]
    print(f"ratio (broadcast / batched matmul): time {slow['seconds'] / fast['seconds']:.1f}x, "
          f"peak memory {slow['peak_mib'] / fast['peak_mib']:.1f}x")


if __name__ == "__main__":
    main()
