"""Training curves of one or more runs (an alpha sweep, seeds), overlaid in one PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spacetorch._files import Output
from spacetorch.cli._arguments import (
    HelpFormatter,
    command,
    examples,
    fail,
    json_file,
    open_output,
    png_file,
    program,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch training-curves"),
        description=(
            "Draw the task loss and every layer's spatial loss over training for one or more run folders "
            "(VISSL's CHECKPOINT.DIR), overlaid, from their TensorBoard events (tb_logs/) or, without them, "
            "the total loss in stdout.json. A run still training shows its curves so far."
        ),
        epilog=examples(
            "spacetorch training-curves checkpoints/simclr_spatial_resnet18_lw* --out figures/alpha_sweep_curves.png",
            "spacetorch training-curves runs/a runs/b --labels 'alpha 0' 'alpha 2.5' --out curves.png --json curves.json",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folders")
    parser.add_argument("--labels", nargs="+", default=None, help="a name per run in the legend [default: the folders' names]")
    parser.add_argument("--out", type=png_file, required=True, help="the PNG to write")
    parser.add_argument("--json", type=json_file, default=None, help="also write each run's last values here")
    parser.add_argument("--title", default="training curves", help="figure title")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    from spacetorch.plots import save_figure, training_curves_figure
    from spacetorch.runs import read_curves

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.runs):
        fail(parser.prog, f"--labels: {len(args.labels)} labels for {len(args.runs)} runs; give one per run")
    outputs = {"--out": args.out, **({"--json": args.json} if args.json is not None else {})}
    if args.json is not None and args.json.resolve() == args.out.resolve():
        fail(parser.prog, f"--json {args.json} is --out; choose two files")
    files: dict[str, Output] = {}
    for flag, path in outputs.items():
        for run in args.runs:  # a run's own file (metrics.json, stdout.json) is the run's record
            if path.exists() and path.resolve().is_relative_to(run.resolve()):
                fail(parser.prog, f"{flag} {path} is a file of the run {run}; it is left as it is: choose another file")
        files[flag] = open_output(parser.prog, Output(path, flag, file=True))  # locked: a second command on it is refused
    labels = args.labels or [None] * len(args.runs)
    try:
        runs = [read_curves(run, label) for run, label in zip(args.runs, labels, strict=True)]
    except ValueError as err:
        fail(parser.prog, str(err))
    save_figure(training_curves_figure(runs, title=args.title), files["--out"].path())
    if args.json is not None:
        files["--json"].write_text("", json.dumps({run.run: run.last() for run in runs}, indent=1) + "\n")
    for run in runs:
        last = run.last()
        print(f"{run.run}: " + ", ".join(f"{tag} {value:.4g}" for tag, value in last.items()))
    print(f"wrote {args.out}")
    return 0
