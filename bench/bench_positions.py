#!/usr/bin/env python
"""Benchmark: retinotopic positions + neighborhoods for every block of a ResNet.

Prints the wall time and the peak memory of generating the whole position set (imports
excluded), once per repeat, each in a fresh process so the peak is this work's own.  "first"
is the first call in that process, which also loads the compiled neighborhood kernels from
numba's on-disk cache (what a user of the script waits for); "again" is a second call in
the same process.  The kernels are compiled (and cached) once before the repeats.

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
from spacetorch.models import retinotopic_layer_specs, retinotopic_positions
arch, n = sys.argv[1], int(sys.argv[2])
specs = retinotopic_layer_specs(arch)          # builds the model on the meta device (warm-up)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seconds = []
for _ in range(2):
    start = time.perf_counter()
    positions = retinotopic_positions(arch, n, layers=specs)
    seconds.append(time.perf_counter() - start)
    if len(seconds) == 1:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        del positions
table_mb = sum(p.neighborhood_indices.nbytes for p in positions.layer_positions.values()) / 2**20
print(json.dumps({"first": seconds[0], "again": seconds[1], "peak_mb": peak / 1024,
                  "peak_over_import_mb": (peak - base) / 1024, "tables_mb": table_mb,
                  "threads": torch.get_num_threads()}))
"""

_COMPILE = r"""
import numpy as np
from spacetorch.models.positions import build_neighborhoods
build_neighborhoods(np.random.default_rng(0).uniform(0, 10, (5000, 2)), 1.0, 100, np.random.default_rng(0))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--n-neighborhoods", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{args.arch}, {args.n_neighborhoods} neighborhoods per layer")
    subprocess.run([sys.executable, "-c", _COMPILE], check=True)
    runs = []
    for i in range(args.repeats):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, args.arch, str(args.n_neighborhoods)],
            check=True, capture_output=True, text=True,
        ).stdout
        run = json.loads(out.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"run {i}: first {run['first']:.2f} s, again {run['again']:.2f} s, "
            f"peak RSS {run['peak_mb']:.0f} MB ({run['peak_over_import_mb']:.0f} MB above the imports), "
            f"neighborhood tables {run['tables_mb']:.0f} MB, {run['threads']} threads"
        )
    first, again = min(r["first"] for r in runs), min(r["again"] for r in runs)
    print(f"best: first {first:.2f} s, again {again:.2f} s  (original pipeline: about 53 s and 3 GB on a 2-core machine)")


if __name__ == "__main__":
    main()
