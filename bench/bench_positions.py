#!/usr/bin/env python
"""Benchmark: retinotopic positions + neighborhoods for every block of a ResNet.

Prints the wall time and the peak memory of generating the whole position set (imports
excluded), once per repeat, in a fresh process so the peak is this work's own.

    python bench/bench_positions.py --arch resnet18 --n-neighborhoods 20000 --repeats 3
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
from spacetorch.models.positions import retinotopic_layer_specs, retinotopic_positions
arch, n = sys.argv[1], int(sys.argv[2])
specs = retinotopic_layer_specs(arch)          # builds the model on the meta device (warm-up)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
positions = retinotopic_positions(arch, n, layers=specs)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
table_mb = sum(p.neighborhood_indices.nbytes for p in positions.layer_positions.values()) / 2**20
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "peak_over_import_mb": (peak - base) / 1024,
                  "tables_mb": table_mb, "threads": torch.get_num_threads()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--n-neighborhoods", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{args.arch}, {args.n_neighborhoods} neighborhoods per layer")
    runs = []
    for i in range(args.repeats):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, args.arch, str(args.n_neighborhoods)],
            check=True, capture_output=True, text=True,
        ).stdout
        run = json.loads(out.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"run {i}: {run['seconds']:.2f} s, peak RSS {run['peak_mb']:.0f} MB "
            f"({run['peak_over_import_mb']:.0f} MB above the imports), "
            f"neighborhood tables {run['tables_mb']:.0f} MB, {run['threads']} torch threads"
        )
    best = min(r["seconds"] for r in runs)
    print(f"best: {best:.2f} s  (original pipeline: about 53 s and 3 GB on a 2-core machine)")


if __name__ == "__main__":
    main()
