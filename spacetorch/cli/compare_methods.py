"""Several ways to make a topographic network, trained the same way and measured the same way."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spacetorch.cli._arguments import (
    HelpFormatter,
    bounded,
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

if TYPE_CHECKING:
    from spacetorch._files import Output
    from spacetorch.methods import TopographyMethod, Training
    from spacetorch.vissl.experiments import Run

#: what ``--methods`` takes besides the registered methods: the same training with none
BASELINE = "none"


def method_choice(text: str) -> tuple[str, float | None]:
    """``--methods`` items: ``NAME`` or ``NAME=WEIGHT``."""
    name, _, weight = text.partition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME or NAME=WEIGHT")
    if not weight:
        return name, None
    try:
        value = float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the weight {weight!r} is not a number") from None
    from spacetorch.losses import check_weight

    try:
        return name, check_weight(value, f"{text!r}: the weight")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def method_param(text: str) -> tuple[str, str, float]:
    """``--param METHOD.KEY=VALUE`` (a number)."""
    target, _, value = text.partition("=")
    method, _, key = target.partition(".")
    if not (method and key and value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected METHOD.KEY=VALUE, e.g. topoloss.factor=4")
    try:
        return method, key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from None


def given_model(text: str) -> tuple[str, str, Path]:
    """``--given LABEL=KIND:PATH``."""
    from spacetorch.methods.published import KINDS

    label, _, rest = text.partition("=")
    kind, _, path = rest.partition(":")
    if not (label and kind and path):
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=KIND:PATH, e.g. topo10=toponets:resnet18_tau_10.0.pt")
    if kind not in KINDS:
        raise argparse.ArgumentTypeError(f"{text!r}: unknown layout {kind!r}; known: {', '.join(KINDS)}")
    return label, kind, Path(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch compare-methods"),
        description=(
            "Train CONFIG once per topography method and seed through train.py (same data, steps and schedule; "
            "the baseline 'none' trains with no topography term at all), then measure every final checkpoint on "
            "the same sine gratings, each on the sheet its method implies (the TDANN's retinotopic positions, or "
            "the tiled channel grid of TopoLoss, lateral connections and locally connected sheets; the baseline on "
            "both): the post-hoc spatial loss of every layer, and for --layer the orientation-selective fraction, "
            "the map's smoothness against the shuffled map and the pinwheel density; with --som, the V1 SOM is "
            "measured on the same gratings. Writes OUT/results.json, OUT/results.csv and OUT/comparison.png (the "
            "maps side by side, every metric with each seed a point). Runs already trained in OUT/runs/ are "
            "measured again, not retrained. Methods: spacetorch.methods.list_methods()."
        ),
        epilog=examples(
            "spacetorch compare-methods --config demo_cpu_supervised_spatial_resnet18 --positions positions/resnet18_112px \\",
            "    --methods none tdann=15 topoloss=1 lateral=0.5 local=1 --layers layer2.0,layer2.1 --seeds 0 1 \\",
            "    --image-size 112 --som --out comparisons/methods",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", default="demo_cpu_supervised_spatial_resnet18",
                        help="the config to train (config=NAME): a spatial trunk with custom_train_step")
    parser.add_argument(
        "--methods", type=method_choice, nargs="*", metavar="NAME[=WEIGHT]",
        default=[(BASELINE, None), ("tdann", None), ("topoloss", 1.0), ("lateral", 0.5), ("local", 1.0)],
        help="the methods and their weights ('none': the baseline; tdann without a weight keeps the config's "
        "layer weights on --layers)",
    )
    parser.add_argument("--layers", type=layer_keys, default=["layer2.0", "layer2.1"], metavar="LAYER,LAYER...",
                        help="the layers every method acts on (module names or layer_weights keys)")
    parser.add_argument("--given", type=given_model, action="append", default=[], metavar="LABEL=KIND:PATH",
                        help="also measure a published model of the config's architecture, not trained here: KIND "
                        "toponets (a TopoNets ResNet or ViT-B/32 state dict, on the tiled sheet) or torchvision (a plain state dict, "
                        "on both sheets) (repeatable)")
    parser.add_argument("--param", type=method_param, action="append", default=[], metavar="METHOD.KEY=VALUE",
                        help="a method's own setting, e.g. topoloss.factor=4 or lateral.sigma=2 (repeatable)")
    add_run_arguments(
        parser, out=Path("comparisons/methods"),
        positions="the retinotopic position set (trained with by tdann, and the template of the tiled sheets)",
        init="(not with 'local', whose conv2 has another shape)",
    )
    add_measure_arguments(parser)
    parser.add_argument("--wiring", type=layer_keys, default=None, metavar="SOURCE,TARGET",
                        help="also the wiring length from SOURCE to TARGET (e.g. layer2.0,layer2.1) on --wiring-stimuli of the "
                        "gratings, against the source shuffled (its fibre search takes seconds per stimulus and sheet)")
    parser.add_argument("--wiring-stimuli", type=bounded(1, 10_000, "--wiring-stimuli"), default=8,
                        help="gratings (spread over the set) the wiring length is measured on")
    parser.add_argument("--som", action="store_true", help="also measure the V1 self-organising map on the same gratings")
    parser.add_argument("--som-edge", type=bounded(4, 1024, "--som-edge"), default=64, help="the SOM's side, nodes")
    parser.add_argument("--som-iterations", type=bounded(1, 10**8, "--som-iterations"), default=200_000,
                        help="the SOM's training steps")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {f"--given {label}": path for label, _, path in args.given}
    output = open_comparison(parser.prog, args, {"--positions": args.positions, "--init": args.init, "--categories": args.categories, **given})
    if args.wiring is not None and len(args.wiring) != 2:
        fail(parser.prog, f"--wiring: expected SOURCE,TARGET (two layers), got {args.wiring}")
    missing = [f"--given {label}: {path} is not a file" for label, _, path in args.given if not path.is_file()]
    if missing:
        fail(parser.prog, missing[0])
    if not args.methods and not args.given and not args.som:
        fail(parser.prog, "nothing to compare: give --methods, --given or --som")
    try:
        entries = _methods(args)
        labels = [e.label for e in entries] + [label for label, _, _ in args.given] + (["V1 SOM"] if args.som else [])
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"the labels {repeated} name two things; give each --given its own label")
        check_setting(args)
        bench = _setting(args)
        _check_methods(args, entries, bench)
    except (ValueError, KeyError, OSError) as err:
        fail(parser.prog, f"{err.args[0] if isinstance(err, KeyError) else err}")
    runs = {(entry.label, seed): run_of(args, output.path(f"runs/{_run_name(entry, seed)}"), seed, entry.training(bench[2]))
            for entry in entries for seed in args.seeds}  # fmt: skip
    for entry in entries:  # train.py's own checks, once per method, before any run
        check_training(parser.prog, runs[(entry.label, args.seeds[0])], entry.label)
    with exit_on_interrupt(parser.prog, f"finished runs stay in {args.out / 'runs'}; run the same command again to go on"):
        return _compare(parser, args, entries, bench, runs, output)


@dataclass(frozen=True)
class Entry:
    """One ``--methods`` item: its label and the method (None for the baseline)."""

    label: str
    method: TopographyMethod | None

    @property
    def name(self) -> str:
        return BASELINE if self.method is None else str(self.method.name)

    def sheets(self) -> list[str]:
        """The sheets its runs are measured on (the baseline: both)."""
        return ["retinotopic", "tiled"] if self.method is None else [self.method.sheet]

    def training(self, image_size: int) -> Training:
        """How its runs are trained: the method's own way, or without topography (the baseline)."""
        from spacetorch.methods import NO_TOPOGRAPHY

        return NO_TOPOGRAPHY if self.method is None else self.method.training(image_size)


def _methods(args: argparse.Namespace) -> list[Entry]:
    """The ``--methods`` entries with ``--param`` applied; bad names and settings raise ValueError
    naming them."""
    from spacetorch.methods import UnknownMethodError, list_methods, method_from_spec

    params: dict[str, dict[str, float]] = {}
    for method, key, value in args.param:
        params.setdefault(method, {})[key] = value
    stray = sorted(set(params) - {name for name, _ in args.methods})
    if stray:
        raise ValueError(f"--param names method(s) {stray} that --methods does not run")
    entries: list[Entry] = []
    for name, weight in args.methods:
        label = name if weight is None else f"{name}={weight:g}"
        if label in [e.label for e in entries]:
            raise ValueError(f"--methods: {label} is named twice")
        if name == BASELINE:
            if weight is not None:
                raise ValueError("--methods: the baseline 'none' takes no weight")
            entries.append(Entry(label, None))
            continue
        spec: dict[str, Any] = {"method": name, "layers": list(args.layers), **params.get(name, {})}
        if weight is not None:
            spec["weight"] = weight
        try:
            entries.append(Entry(label, method_from_spec(spec)))
        except UnknownMethodError:
            raise ValueError(f"--methods: no method {name!r}; known: {', '.join([BASELINE, *list_methods()])}") from None
        except ValueError as err:
            raise ValueError(f"--methods {label}: {err}") from None
    if args.init is not None and any(e.name == "local" for e in entries):
        raise ValueError("--init cannot start a 'local' run: its locally connected conv2 has no counterpart in the checkpoint")
    return entries


def _check_methods(args: argparse.Namespace, entries: list[Entry], bench: Setting) -> None:
    """Each method fits the config's model at the gratings' size, and the tiled sheets can be made."""
    import torch

    from spacetorch.models import create_model
    from spacetorch.models.positions import NetworkPositions, tiled_positions

    arch, position_dir, size = bench
    retinotopic = NetworkPositions.load_from_dir(position_dir)
    layers = list(retinotopic.layer_positions)
    for flag, names in (("--wiring", args.wiring or []), ("--category-layer", [args.category_layer] if args.category_layer else [])):
        unknown = [name for name in names if name not in layers]
        if unknown:
            raise ValueError(f"{flag}: {unknown} have no positions in {position_dir}; layers: {layers}")
    for entry in entries:
        if entry.method is not None:
            with torch.device("meta"):
                try:
                    entry.method.prepare(create_model(arch, headless=True), size)
                except ValueError as err:
                    raise ValueError(f"--methods {entry.label}: {err}") from None
    if any("tiled" in e.sheets() for e in entries):
        tiled_positions(retinotopic, 10)
    if args.given:  # a file that cannot be read is named now, not after hours of training
        from spacetorch.methods.published import load_published
        from spacetorch.models.checkpoints import CheckpointError

        for label, kind, path in args.given:
            try:
                load_published(path, arch, kind)
            except CheckpointError as err:
                raise ValueError(f"--given {label}: {err}") from None


#: the config's model, its retinotopic position set and the gratings' size
Setting = tuple[str, str, int]


def _setting(args: argparse.Namespace) -> Setting:
    """The config's model, its retinotopic position set and the gratings' size."""
    arch, position_dir = setting(composed(args))
    return arch, position_dir, gratings_of(args, input_size(arch)).size


def _run_name(entry: Entry, seed: int) -> str:
    return f"{entry.label.replace('=', '')}_seed{seed}"


def _compare(
    parser: argparse.ArgumentParser, args: argparse.Namespace, entries: list[Entry], bench: Setting,
    runs: dict[tuple[str, int], Run], output: Output,
) -> int:
    arch, position_dir, _ = bench
    checkpoints = train_runs(parser.prog, runs, lambda key: f"{key[0]}, seed {key[1]}", args.quiet)
    if checkpoints is None:
        return 1
    from spacetorch.models.checkpoints import CheckpointError

    try:
        rows, maps = _measure(args, entries, checkpoints, arch, position_dir)
    except CheckpointError as err:
        fail(parser.prog, str(err))
    for row in rows:  # NaN: not trained here (a --given model, the SOM)
        run = runs.get((row["method"], row["seed"]))
        row["train_seconds"] = math.nan if run is None else run.seconds()
    _write(output, rows, maps, args.layer)
    for row in rows:
        sl = row["sl"].get(args.layer, math.nan)
        seed = "given" if row["seed"] is None else f"seed {row['seed']}"
        print(f"{row['method']} ({row['sheet']}) {seed}: task loss {row['task_loss']:.3f}, {args.layer} SL {sl:.4f}, "
              f"{row['selective_fraction']:.1%} selective, smoothness {row['smoothness']:.3f} "
              f"(shuffled {row['shuffled_smoothness']:.3f}), pinwheel density {row['pinwheel_density']:.2f}")
    print(f"wrote {args.out / 'results.json'}, {args.out / 'results.csv'} and {args.out / 'comparison.png'}")
    return 0


def _measure(
    args: argparse.Namespace, entries: list[Entry], checkpoints: dict[tuple[str, int], Path], arch: str, position_dir: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every run measured on its sheet(s); the first seed's map per (method, sheet)."""
    from spacetorch.methods.bench import load_trunk, measure, measure_som, sheet_positions
    from spacetorch.models import model_info
    from spacetorch.models.positions import NetworkPositions
    from spacetorch.models.topographic import TopographicModel
    from spacetorch.runs import final_task_loss

    info = model_info(arch)
    gratings = gratings_of(args, info.input_size)
    device = device_of(args)
    retinotopic = NetworkPositions.load_from_dir(position_dir)
    extra: dict[str, Any] = {"wiring": tuple(args.wiring) if args.wiring else None, "wiring_stimuli": args.wiring_stimuli}
    categories = category_setting(args, position_dir, gratings.size)
    if categories is not None:
        extra["categories"], extra["category_layer"] = categories
    sheets: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    maps: dict[str, Any] = {}

    def on_sheets(trunk: Any, names: list[str], row: dict[str, Any]) -> None:
        """Measure ``trunk`` on each sheet of ``names``; a row per sheet, the first map per label and sheet."""
        for sheet in names:
            if sheet not in sheets:
                sheets[sheet] = sheet_positions(retinotopic, sheet, args.neighborhoods)
            model = TopographicModel(trunk, sheets[sheet], mean=info.mean, std=info.std)
            stats, measured = measure(model, args.layer, gratings, exclude_border=args.exclude_border,
                                      neighborhoods=args.neighborhoods, batch_size=args.batch_size, device=device, **extra)
            rows.append({**row, "sheet": sheet, **stats})
            key = f"{row['method']} ({sheet})"
            if maps.get(key) is None:
                maps[key] = measured.map

    for entry in entries:
        for seed in args.seeds:
            checkpoint = checkpoints[(entry.label, seed)]
            on_sheets(load_trunk(checkpoint, arch, entry.method, gratings.size), entry.sheets(), {
                "method": entry.label, "seed": seed, "checkpoint": str(checkpoint),
                "spec": entry.method.spec() if entry.method is not None else None,
                "task_loss": final_task_loss(checkpoint.parent / "log.txt"),
            })
    if args.given:
        from spacetorch.methods.published import KINDS, load_published

        for label, kind, path in args.given:
            on_sheets(load_published(path, arch, kind), KINDS[kind], {
                "method": label, "seed": None, "checkpoint": str(path), "spec": {"given": kind}, "task_loss": math.nan,
            })
    if args.som:
        for seed in args.seeds:
            measured = measure_som(gratings, edge=args.som_edge, iterations=args.som_iterations, seed=seed)
            rows.append({"method": "V1 SOM", "sheet": "som", "seed": seed, "checkpoint": None, "spec": None,
                         "task_loss": math.nan, "sl": {}, **measured.statistics()})
            if maps.get("V1 SOM (som)") is None:
                maps["V1 SOM (som)"] = measured.map
    return rows, maps


def _write(output: Output, rows: list[dict[str, Any]], maps: dict[str, Any], layer: str) -> None:
    from spacetorch.plots import methods_figure

    fields = ["method", "sheet", "seed", "task_loss", "train_seconds", "selective_fraction", "smoothness", "shuffled_smoothness",
              "pinwheels", "column_spacing", "pinwheel_density", "units_analysed"]
    fields += [key for key in ("wiring_mm", "wiring_shuffled_mm", "wiring_ratio_shuffled", "category_patches",
                               "category_patch_area_mm2", "category_selective_fraction",
                               "category_near_ratio", "category_near_z") if any(key in row for row in rows)]
    write_results(output, {"layer": layer, "runs": rows}, fields, lambda: methods_figure(rows, maps, layer=layer))
