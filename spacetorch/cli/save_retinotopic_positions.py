"""Generate a retinotopic position set and write it as a positions directory."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from spacetorch._files import Output
from spacetorch.cli._arguments import (
    HelpFormatter,
    bounded,
    command,
    examples,
    fail,
    open_output,
    output_folder,
    pixels,
    program,
    seed_value,
)
from spacetorch.cli._signals import exit_on_interrupt
from spacetorch.models import list_models, retinotopic_positions
from spacetorch.models.positions import check_output_dir

DEFAULT_OUT = "positions/{arch}_retinotopic_init"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch positions"),
        description=(
            "Place every unit of each layer with positions of a registered model (every residual "
            "block of a ResNet) on a simulated cortical sheet (retinotopic initialisation of the "
            "TDANN) and precompute its neighborhoods. Writes "
            "one <layer>.pkl or <layer>.npz file per layer plus version.txt into --out, all or "
            "nothing."
        ),
        epilog=examples(
            'spacetorch positions --arch resnet18 --out positions/resnet18_retinotopic_init',
            'spacetorch positions --arch resnet18 --input-size 112 --out positions/resnet18_112px_retinotopic_init',
            'python scripts/save_retinotopic_positions.py --arch resnet50 --format pkl --out positions/resnet50',
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--arch", default="resnet18", choices=list_models(), metavar="MODEL", help="registered model: %(choices)s")
    parser.add_argument(
        "--input-size",
        type=pixels,
        default=None,
        help="input image side in px (sets each layer's H, W) [default: the model's, 224 for the ResNets]",
    )
    parser.add_argument("--out", type=output_folder, default=None, help=f"output directory [default: {DEFAULT_OUT}]")
    parser.add_argument("--n-neighborhoods", type=bounded(1, 1_000_000, "neighborhoods"), default=20_000, help="windows drawn per layer")
    parser.add_argument("--seed", type=seed_value, default=424, help="random seed (same seed, same positions)")
    parser.add_argument("--format", choices=("pkl", "npz"), default="pkl", help="file format of each layer")
    parser.add_argument("--jitter", type=_non_negative_float, default=0.3, help="std of the position noise, mm (0: none)")
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace the position set in --out (refused if --out holds anything else)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else Path(DEFAULT_OUT.format(arch=args.arch))
    open_output(parser.prog, Output(out))  # locked: a second command on it is refused
    try:
        check_output_dir(out, overwrite=args.overwrite)
    except FileExistsError as err:
        fail(parser.prog, f"--out {err}")
    start = time.perf_counter()
    with exit_on_interrupt(parser.prog, f"nothing was written ({out} is as it was)"):
        try:
            positions = retinotopic_positions(
                args.arch,
                args.n_neighborhoods,
                args.seed,
                jitter=args.jitter,
                input_size=args.input_size,
                progress=not args.quiet,
            )
        except ValueError as err:  # e.g. an input too small for the model's layers
            size = f" at --input-size {args.input_size}" if args.input_size is not None else ""
            fail(parser.prog, f"--arch {args.arch}{size}: {err}")
        positions.save(out, fmt=args.format, overwrite=args.overwrite)
    print(f"wrote {len(positions)} layers to {out} in {time.perf_counter() - start:.1f} s")
    for name, layer in positions.layer_positions.items():
        p, q = layer.neighborhood_indices.shape
        print(f"  {name:10s} dims={layer.dims}  neighborhoods={p}x{q}  width={layer.neighborhood_width} mm")
    return 0
