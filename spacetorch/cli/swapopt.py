"""Swap-optimise a position set against a model's responses to sine gratings."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from spacetorch._files import Output, check_own_folder, remove_own_folder
from spacetorch.cli._arguments import (
    HelpFormatter,
    add_border_argument,
    add_checkpoint_arguments,
    add_grating_arguments,
    bounded,
    command,
    device_of,
    examples,
    fail,
    gratings_of,
    open_output,
    output_folder,
    png_file,
    program,
    seed_value,
)
from spacetorch.cli._signals import exit_on_interrupt, raise_if_interrupted

DEFAULT_ATTEMPTS = 50_000_000  # per layer, as for the published models


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch swapopt"),
        description=(
            "Record a trained model's responses to the 640 standard sine gratings, then swap the "
            "positions of pairs of units inside small windows of the cortical sheet whenever that "
            "lowers the local spatial loss (the original TDANN 'swapopt'), and write the new position "
            "set (the same units, permuted coordinates, neighborhoods drawn again) with swapopt.json "
            "(settings, seed, attempts, swaps kept, loss before and after) and a before/after figure. "
            "Train on the result with train.py config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=OUT."
        ),
        epilog=examples(
            'spacetorch swapopt --checkpoint checkpoints/run/model_final_checkpoint_phase16.torch \\',
            '    --positions positions/resnet18_112px_retinotopic_init --layers layer2.0 layer2.1 --attempts 5e6 \\',
            '    --image-size 112 --out positions/resnet18_112px_swapopt --figure figures/swapopt_layer2.0.png',
        ),
        formatter_class=HelpFormatter,
    )
    add_checkpoint_arguments(
        parser, checkpoint_help="VISSL checkpoint of the model (e.g. trained with alpha = 0)",
        positions_help="the position set to optimise (the model's)",
    )
    parser.add_argument("--layers", nargs="+", default=None, help="layers to optimise [default: every layer of the set]")
    parser.add_argument("--attempts", type=bounded(1, 10**12, "attempts", scientific=True), default=DEFAULT_ATTEMPTS, help="swap attempts per layer (5e7 is accepted)")
    parser.add_argument("--seed", type=seed_value, default=0, help="random seed (same seed, same result)")
    parser.add_argument("--out", type=output_folder, default=None, help="output directory [default: <positions>_swapopt]")
    parser.add_argument("--overwrite", action="store_true", help="replace the position set in --out")
    add_grating_arguments(parser)
    parser.add_argument("--figure", type=png_file, default=None, help="before/after PNG [default: figures/<out>_<layer>_swapopt.png]")
    parser.add_argument("--figure-layer", default=None, help="layer shown in the figure, one of --layers [default: layer2.0, if optimised]")
    add_border_argument(parser)
    parser.add_argument(
        "--engine", choices=("auto", "numba", "triton"), default="auto",
        help="what makes the swap attempts: triton (a GPU kernel, on --device) or numba (this machine's CPU cores); "
             "both take the same decisions [default: triton when --device is a CUDA device, else numba]",
    )
    parser.add_argument("--n-neighborhoods", type=bounded(1, 1_000_000, "neighborhoods"), default=20_000, help="neighborhoods drawn per layer for the new positions")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = args.out or args.positions.with_name(f"{args.positions.name}_swapopt")
    resume = out.with_name(f"{out.name}.resume")
    open_output(parser.prog, Output(out, inputs={"--positions": args.positions}))
    try:  # the resume folder beside --out is spacetorch's own, or the user's and left alone
        check_own_folder(resume, "swapopt resume folder")
    except FileExistsError as err:
        fail(parser.prog, f"--out {out}: {err}")
    if args.figure is not None:  # a file inside a position set is not part of it, and it then fails to load
        open_output(parser.prog, Output(args.figure, "--figure", file=True, inputs={"--positions": args.positions, "--out": out}))
    with exit_on_interrupt(parser.prog, f"{out} was not written; run the same command again to continue from {resume}"):
        return _run(parser, args, out, resume)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, out: Path, resume: Path) -> int:
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from spacetorch.maps import MapMeasurement, kept_units, measure_orientation_map
    from spacetorch.models.checkpoints import CheckpointError
    from spacetorch.models.positions import NetworkPositions, PositionsError, check_output_dir
    from spacetorch.models.positions.swapopt import resolve_engine, swap_optimize
    from spacetorch.models.topographic import TopographicModel
    from spacetorch.plots import save_figure, swapopt_figure

    try:
        check_output_dir(out, overwrite=args.overwrite)
    except FileExistsError as err:
        fail(parser.prog, f"--out {err}")
    device = device_of(args)
    try:
        engine, swap_device = resolve_engine(args.engine, device)
    except ValueError as err:
        fail(parser.prog, f"--engine {args.engine}: {err}")
    if engine == "triton" and not swap_device.startswith("cuda"):
        fail(parser.prog, f"--engine triton runs on a CUDA --device; on {swap_device} Triton only interprets it "
                          "(a test mode, thousands of times slower). Use --engine numba, or a CUDA --device")
    start = time.perf_counter()
    try:
        model = TopographicModel.from_checkpoint(args.checkpoint, args.positions, args.arch, trusted=args.trust_checkpoint)
        layers = args.layers or list(model.positions.layer_positions)
        unknown = [name for name in layers if name not in model.positions.layer_positions]
        if unknown:
            fail(parser.prog, f"--layers: {unknown} have no positions in {args.positions}; it has {list(model.positions.layer_positions)}")
        if args.figure_layer is not None and args.figure_layer not in layers:
            fail(parser.prog, f"--figure-layer {args.figure_layer} is not one of the optimised layers {layers}")
        figure_layer = args.figure_layer or "layer2.0"
        gratings = gratings_of(args)
        if figure_layer in layers:  # the figure's border policy fits these gratings: known before the swaps
            kept_units(model, figure_layer, gratings.size, args.exclude_border)
        recorded = model.responses(gratings, layers, batch_size=args.batch_size, device=device, progress=not args.quiet)
    except (CheckpointError, PositionsError, FileNotFoundError, ValueError) as err:
        fail(parser.prog, str(err))
    responses = {name: r.numpy() for name, (r, _) in recorded.items()}
    del recorded

    def bar_for(name: str):  # type: ignore[no-untyped-def]
        bar = tqdm(total=args.attempts, desc=name, unit="attempt", unit_scale=True, disable=args.quiet, leave=False)

        def update(done: int, total: int, kept: int, loss: float) -> None:
            raise_if_interrupted()  # a signal whose exception numba's compiler swallowed still stops the run
            bar.total = total
            bar.set_postfix(loss=f"{loss:.4f}", kept=kept, refresh=False)
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
        return update

    try:
        swapped, records = swap_optimize(
            model.positions, responses, attempts=args.attempts, seed=args.seed, layers=layers, resume_dir=resume,
            on_layer=bar_for, n_neighborhoods=args.n_neighborhoods, engine=engine, device=swap_device,
        )
    except ValueError as err:
        fail(parser.prog, str(err))
    record = {
        "checkpoint": str(args.checkpoint), "arch": args.arch, "positions": str(args.positions),
        "stimuli": f"{len(gratings)} sine gratings, {args.image_size} px", "seed": args.seed,
        "attempts_per_layer": args.attempts, "layers": [r.to_dict() for r in records],
    }
    swapped.save(out, overwrite=args.overwrite, extra_files={"swapopt.json": json.dumps(record, indent=1).encode()})
    remove_own_folder(resume)
    for r in records:
        print(f"{r.layer:10s} {r.accepted:>10,} of {r.attempts:,} swaps kept; loss {r.loss_before:.4f} -> {r.loss_after:.4f} "
              f"({r.seconds:.0f} s, {r.engine} on {r.device})")
    print(f"wrote {out} ({len(swapped)} layers, {len(records)} optimised) in {time.perf_counter() - start:.0f} s")
    if figure_layer in responses:
        layer = figure_layer
        values = torch.from_numpy(responses[layer])

        def measured(positions: NetworkPositions) -> MapMeasurement:
            coordinates = torch.as_tensor(np.asarray(positions[layer].coordinates))
            return measure_orientation_map(model, layer, gratings, exclude_border=args.exclude_border,
                                           responses=(values, coordinates))

        before, after = measured(model.positions), measured(swapped)
        figure = args.figure or Path("figures") / f"{out.name}_{layer}_swapopt.png"
        if before.map is None or after.map is None:
            print(f"no figure: {before.note or after.note}")
        else:
            save_figure(swapopt_figure(before.map, after.map, title=f"{layer}: swapopt of {args.positions} ({args.checkpoint})"), figure)
            print(f"{layer}: {before.units}\n{layer} before: {before.map.summary()}\n"
                  f"{layer} after:  {after.map.summary()}\nwrote {figure}")
    return 0
