"""Train one config at alpha = 0 and at other alphas (same seeds, data and steps), then measure
every checkpoint on the same stimuli: does the spatial loss make maps?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spacetorch.cli._arguments import (
    HelpFormatter,
    command,
    device_of,
    examples,
    fail,
    gratings_of,
    layer_keys,
    program,
)
from spacetorch.cli._comparison import (
    add_measure_arguments,
    add_run_arguments,
    category_setting,
    check_setting,
    check_training,
    composed,
    input_size,
    open_comparison,
    run_of,
    setting,
    train_runs,
    write_results,
)
from spacetorch.cli._signals import exit_on_interrupt
from spacetorch.losses import check_weight
from spacetorch.methods import Training

if TYPE_CHECKING:
    from spacetorch._files import Output
    from spacetorch.vissl.experiments import Run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch compare-alpha"),
        description=(
            "Train CONFIG through train.py at alpha = 0 and at each --alphas value, for each --seeds value "
            "(same data, steps and schedule), then measure every final checkpoint on the 640 sine gratings: "
            "the spatial loss of every layer over many neighborhoods, and for --layer the fraction of "
            "orientation-selective units, the map's smoothness against the shuffled map and the pinwheel "
            "density. Writes OUT/results.json, OUT/results.csv and OUT/comparison.png (the maps of every "
            "alpha, and SL per layer and smoothness with their spread over seeds). Runs already trained "
            "in OUT/runs/ are measured again, not retrained."
        ),
        epilog=examples(
            'spacetorch compare-alpha --config demo_cpu_supervised_spatial_resnet18 --positions positions/resnet18_112px_swapopt \\',
            '    --alphas 5 15 --alpha-layers layer2_0,layer2_1 --seeds 0 1 2 --image-size 112 --out comparisons/map_demo',
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", default="demo_cpu_simclr_spatial_resnet18", help="the config to train (config=NAME)")
    parser.add_argument("--alphas", type=float, nargs="+", default=[2.5, 25.0], help="spatial loss weights besides 0")
    parser.add_argument(
        "--alpha-layers", type=layer_keys, default=None, metavar="KEY,KEY...",
        help="only these layers (layer_weights keys, e.g. layer2_0,layer2_1) get each alpha, the others 0 "
        "[default: every layer]",
    )
    add_run_arguments(
        parser, out=Path("comparisons/alpha"),
        positions="the position set of every run, trained with and measured on (e.g. swapopt's output); a run folder made "
        "with another set is refused, so give each set its own --out",
        init="(trunk and heads, e.g. an alpha = 0 model trained first)",
    )
    add_measure_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        alphas = sorted({0.0, *(check_weight(float(a), "--alphas") for a in args.alphas)})
    except ValueError as err:
        fail(parser.prog, f"{err}; got {args.alphas}")
    output = open_comparison(parser.prog, args, {"--positions": args.positions, "--init": args.init, "--categories": args.categories})
    try:  # everything the measurement needs is checked before the first run
        check_setting(args, args.alpha_layers)
    except (ValueError, KeyError, OSError) as err:
        fail(parser.prog, f"{err.args[0] if isinstance(err, KeyError) else err}")
    runs = {(alpha, seed): run_of(args, output.path(f"runs/{_run_name(alpha, seed, args.alpha_layers)}"), seed,
                                  Training(alpha, None if args.alpha_layers is None else tuple(args.alpha_layers)))
            for alpha in alphas for seed in args.seeds}  # fmt: skip
    for (alpha, seed), run in runs.items():  # train.py's own checks, once per alpha, before any run
        if seed == args.seeds[0]:
            check_training(parser.prog, run, f"alpha {alpha:g}")
    with exit_on_interrupt(parser.prog, f"finished runs stay in {args.out / 'runs'}; run the same command again to go on"):
        return _compare(parser, args, runs, output)


def _run_name(alpha: float, seed: int, alpha_layers: list[str] | None = None) -> str:
    """``alpha25_seed0``; with ``alpha_layers``, ``alpha25_layer2_0-layer2_1_seed0`` (runs of other
    layer choices never share a folder)."""
    layers = "" if alpha_layers is None or alpha == 0 else "_" + "-".join(alpha_layers)
    return f"alpha{alpha:g}{layers}_seed{seed}"


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace, runs: dict[tuple[float, int], Run], output: Output) -> int:
    checkpoints = train_runs(parser.prog, runs, lambda key: f"alpha {key[0]:g}, seed {key[1]}", args.quiet)
    if checkpoints is None:
        return 1
    rows, maps = _measure(args, checkpoints)
    _write(output, rows, maps, args.layer, args.alpha_layers)
    for row in rows:
        print(f"alpha {row['alpha']:g} seed {row['seed']}: task loss {row['task_loss']:.3f}, {args.layer} SL {row['sl'][args.layer]:.4f}, "
              f"{row['selective_fraction']:.1%} selective, smoothness {row['smoothness']:.3f} "
              f"(shuffled {row['shuffled_smoothness']:.3f}), pairs < 1 mm {row['near_difference']:.1f} deg vs "
              f"{row['near_shuffled']:.1f} shuffled (z {row['near_z']:.1f}), pinwheel density {row['pinwheel_density']:.2f}"
              + (f"; {row['category_layer']}: {row['category_patches']:.1f} patches per category, "
                 f"{row['category_selective_fraction']:.1%} units with t > 2, neighbours' t differ "
                 f"{row['category_near_ratio']:.2f} x chance" if "category_layer" in row else ""))
    print(f"wrote {args.out / 'results.json'}, {args.out / 'results.csv'} and {args.out / 'comparison.png'}")
    return 0


def _measure(args: argparse.Namespace, checkpoints: dict[tuple[float, int], Path]) -> tuple[list[dict[str, Any]], dict[float, Any]]:
    """Every checkpoint's post-hoc SL per layer and its map statistics; the first seed's map per alpha."""
    from spacetorch.maps import measure_orientation_map, posthoc_spatial_loss
    from spacetorch.methods.bench import measure_categories
    from spacetorch.models.topographic import TopographicModel
    from spacetorch.runs import final_task_loss

    arch, position_dir = setting(composed(args))
    gratings = gratings_of(args, input_size(arch))
    device = device_of(args)
    categories = category_setting(args, position_dir, gratings.size)
    rows: list[dict[str, Any]] = []
    maps: dict[float, Any] = {}
    for (alpha, seed), checkpoint in checkpoints.items():
        model = TopographicModel.from_checkpoint(checkpoint, position_dir, arch)
        recorded = model.responses(gratings, batch_size=args.batch_size, device=device, progress=False)
        sl = {name: posthoc_spatial_loss(r, model.positions[name], args.neighborhoods, device) for name, (r, _) in recorded.items()}
        measured = measure_orientation_map(
            model, args.layer, gratings, exclude_border=args.exclude_border, responses=recorded[args.layer]
        )
        row = {"alpha": alpha, "seed": seed, "checkpoint": str(checkpoint), "layer": args.layer, "sl": sl,
               "task_loss": final_task_loss(checkpoint.parent / "log.txt"), **measured.statistics()}
        if categories is not None:
            images, layer = categories
            responses, coordinates = model.responses(images, [layer], batch_size=args.batch_size, device=device,
                                                     progress=False)[layer]
            row.update({"category_layer": layer, **measure_categories(responses.numpy(), coordinates.numpy(), images.labels)})
        rows.append(row)
        if maps.get(alpha) is None:
            maps[alpha] = measured.map
    return rows, maps


def _write(output: Output, rows: list[dict[str, Any]], maps: dict[float, Any], layer: str, alpha_layers: list[str] | None) -> None:
    from spacetorch.plots import comparison_figure

    fields = ["alpha", "seed", "task_loss", "selective_fraction", "smoothness", "shuffled_smoothness", "near_difference",
              "near_ci_low", "near_ci_high", "near_shuffled", "near_z", "near_pairs", "pinwheels", "column_spacing",
              "pinwheel_density", "units_analysed"]
    fields += [key for key in ("category_layer", "category_patches", "category_patch_area_mm2", "category_selective_fraction",
                               "category_near_ratio", "category_near_z")
               if any(key in row for row in rows)]
    write_results(output, {"layer": layer, "alpha_layers": alpha_layers, "runs": rows}, fields,
                  lambda: comparison_figure(rows, maps, layer=layer))
