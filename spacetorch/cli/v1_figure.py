"""The standard V1 figure of a trained model: orientation map, smoothness, pinwheels."""

from __future__ import annotations

import argparse
from pathlib import Path

from spacetorch._files import Output
from spacetorch.cli._arguments import (
    HelpFormatter,
    add_border_argument,
    add_checkpoint_arguments,
    add_grating_arguments,
    command,
    device_of,
    examples,
    fail,
    gratings_of,
    open_output,
    png_file,
    program,
)
from spacetorch.cli._signals import exit_on_interrupt
from spacetorch.maps import measure_orientation_map
from spacetorch.models.checkpoints import CheckpointError
from spacetorch.models.positions import PositionsError
from spacetorch.models.topographic import TopographicModel
from spacetorch.plots import save_figure, v1_figure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch v1-figure"),
        description=(
            "Show a checkpoint's V1-like layer the standard sine gratings (8 orientations x 8 spatial "
            "frequencies x 5 phases x 2 colours), and draw its orientation map on the cortical sheet, "
            "the smoothness curve and the pinwheels into one PNG."
        ),
        epilog=examples(
            'spacetorch v1-figure --checkpoint checkpoints/demo_cpu_supervised_spatial_resnet18/model_final_checkpoint_phase16.torch \\',
            '    --positions positions/resnet18_112px_swapopt --image-size 112 --out figures/v1_demo.png',
            'spacetorch v1-figure --checkpoint model_final_checkpoint_phase199.torch --positions positions/resnet18 --layer layer2.0',
        ),
        formatter_class=HelpFormatter,
    )
    add_checkpoint_arguments(
        parser, checkpoint_help="VISSL checkpoint (.torch)", positions_help="the positions directory the model was trained with"
    )
    parser.add_argument("--layer", default="layer2.0", help="the layer to analyse (the V1-like layer of a ResNet-18)")
    parser.add_argument("--out", type=png_file, default=None, help="PNG to write [default: figures/<checkpoint>_<layer>_v1.png]")
    add_grating_arguments(parser)
    add_border_argument(parser)
    parser.add_argument("--title", default=None, help="figure title [default: the checkpoint's path and the layer]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    device = device_of(args)
    out = args.out or Path("figures") / f"{args.checkpoint.parent.name}_{args.checkpoint.stem}_{args.layer}_v1.png"
    output = open_output(parser.prog, Output(out, file=True, inputs={"--positions": args.positions}))  # a file inside a set breaks it
    with exit_on_interrupt(parser.prog, f"no figure was written ({out} is as it was)"):
        return _figure(parser.prog, args, device, output)


def _figure(prog: str, args: argparse.Namespace, device: str, output: Output) -> int:
    try:
        model = TopographicModel.from_checkpoint(args.checkpoint, args.positions, args.arch, trusted=args.trust_checkpoint)
        measured = measure_orientation_map(
            model, args.layer, gratings_of(args), exclude_border=args.exclude_border,
            batch_size=args.batch_size, device=device, progress=not args.quiet,
        )
    except (CheckpointError, PositionsError, FileNotFoundError, ValueError) as err:
        fail(prog, str(err))
    except KeyError as err:
        fail(prog, f"--layer: {err.args[0]}")
    print(measured.summary())
    if measured.map is None:
        fail(prog, measured.note)
    title = (args.title or f"{args.checkpoint} - {args.layer}") + f"\n({measured.units})"
    save_figure(v1_figure(measured.map, title=title), output.path())
    print(f"wrote {output.target}")
    return 0
