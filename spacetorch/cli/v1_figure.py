"""The standard V1 figure of a trained model: orientation map, smoothness, pinwheels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spacetorch.analyses import analyze_orientation_map
from spacetorch.checkpoints import CheckpointError
from spacetorch.cli._arguments import (
    add_border_argument,
    add_checkpoint_arguments,
    add_grating_arguments,
    device_of,
    gratings_of,
)
from spacetorch.cli._signals import exit_on_interrupt
from spacetorch.models.positions import PositionsError
from spacetorch.models.receptive_field import border_units
from spacetorch.models.topographic import TopographicModel
from spacetorch.plots import save_figure, v1_figure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v1_figure.py",
        description=(
            "Show a checkpoint's V1-like layer the standard sine gratings (8 orientations x 8 spatial "
            "frequencies x 5 phases x 2 colours), and draw its orientation map on the cortical sheet, "
            "the smoothness curve and the pinwheels into one PNG."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_checkpoint_arguments(
        parser, checkpoint_help="VISSL checkpoint (.torch)", positions_help="the positions directory the model was trained with"
    )
    parser.add_argument("--layer", default="layer2.0", help="the layer to analyse (the V1-like layer of a ResNet-18)")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write [default: figures/<checkpoint>_<layer>_v1.png]")
    add_grating_arguments(parser)
    add_border_argument(parser)
    parser.add_argument("--title", default=None, help="figure title [default: the checkpoint's path and the layer]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    device = device_of(args)
    out = args.out or Path("figures") / f"{args.checkpoint.parent.name}_{args.checkpoint.stem}_{args.layer}_v1.png"
    with exit_on_interrupt(parser.prog, f"no figure was written ({out} is as it was)"):
        return _figure(args, device, out)


def _figure(args: argparse.Namespace, device: str, out: Path) -> int:
    try:
        model = TopographicModel.from_checkpoint(args.checkpoint, args.positions, args.arch, trusted=args.trust_checkpoint)
        gratings = gratings_of(args)
        responses, coordinates = model.responses(
            gratings, [args.layer], batch_size=args.batch_size, device=device, progress=not args.quiet
        )[args.layer]
        border, left_out = border_units(
            model.model, args.layer, model.positions[args.layer].dims, gratings.size, args.exclude_border
        )
        keep = ~border
        if not keep.any():
            raise ValueError(
                f"--exclude-border {args.exclude_border} leaves no unit of {args.layer} (every unit's {left_out} at "
                f"{gratings.size} px); use larger images or --exclude-border 0 to keep them"
            )
        result = analyze_orientation_map(responses.numpy()[:, keep], coordinates.numpy()[keep], gratings.orientation)
    except (CheckpointError, PositionsError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    units = f"{int(keep.sum())} of {keep.size} units analysed"
    if border.any():
        units += f"; {int(border.sum())} left out: {left_out}"
    title = (args.title or f"{args.checkpoint} - {args.layer}") + f"\n({units})"
    print(f"{args.layer}: {units}")
    save_figure(v1_figure(result, title=title), out)
    print(f"{args.layer}: {result.summary()}")
    print(f"wrote {out}")
    return 0
