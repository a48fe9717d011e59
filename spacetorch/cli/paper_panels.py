"""The TDANN paper's panels for one checkpoint, into one folder with an index."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    panels_output,
    positive,
    program,
    unreadable_images_fail,
)
from spacetorch.cli._signals import exit_on_interrupt

if TYPE_CHECKING:
    from spacetorch._files import Output

PANELS = ("v1", "categories", "wiring", "dimensionality")


def _percentile(text: str) -> float:
    value = float(text)
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"expected a percentile in (0, 100), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch paper-panels"),
        description=(
            "Draw the TDANN paper's panels for a checkpoint into one folder: the V1 orientation map and "
            "tuning statistics (gratings, generated), category selectivity maps and patches (with "
            "--categories, a folder of one sub-folder per category, e.g. fLoc), and wiring length and "
            "dimensionality (with --images, natural images). --images and --categories also take a features "
            "file of the same model (spacetorch features), so the images are not run again. It writes a PNG per panel, panels.json with "
            "every number, and index.md showing them; the folder appears whole or not at all."
        ),
        epilog=examples(
            "spacetorch paper-panels --checkpoint model_final_checkpoint_phase199.torch --positions positions/resnet18 \\",
            "    --images /data/imagenet/val --categories /data/floc --out panels/tdann",
            "spacetorch paper-panels --checkpoint CKPT --positions DIR --categories /data/floc --panels categories --out panels/vtc",
        ),
        formatter_class=HelpFormatter,
    )
    add_checkpoint_arguments(
        parser, checkpoint_help="VISSL checkpoint (.torch)", positions_help="the positions directory the model was trained with"
    )
    parser.add_argument("--out", type=output_folder, required=True, help="the folder to write")
    parser.add_argument("--panels", nargs="+", choices=PANELS, default=None,
                        help="panels to draw [default: every one the given image sets allow]")  # fmt: skip
    parser.add_argument("--images", type=Path, default=None,
                        help="natural images, IMAGES/<class>/<image>, or a features file of them (wiring, dimensionality)")  # fmt: skip
    parser.add_argument("--image-limit", type=bounded(2, 1_000_000, "images"), default=3000,
                        help="natural images used, the first N in folder order (the paper: 3,000)")  # fmt: skip
    parser.add_argument("--categories", type=Path, default=None,
                        help="category images, CATEGORIES/<category>/<image>, or a features file of them (category maps)")  # fmt: skip
    parser.add_argument("--v1-layer", default="layer2.0", help="the V1-like layer")
    parser.add_argument("--vtc-layer", default="layer4.1", help="the VTC-like layer")
    parser.add_argument("--selectivity", choices=("t", "dprime"), default="t", help="category selectivity measure")
    parser.add_argument("--wiring-layers", nargs=2, default=["layer4.0", "layer4.1"], metavar=("SOURCE", "TARGET"),
                        help="the two layers the wire runs between")  # fmt: skip
    parser.add_argument("--wiring-stimuli", type=bounded(1, 100_000, "images"), default=20,
                        help="natural images whose wiring length is measured (each needs a k-means sweep)")  # fmt: skip
    parser.add_argument("--active-percentile", type=_percentile, default=99.5,
                        help="units above this percentile are active (wiring; the paper's figure: 99.5)")  # fmt: skip
    parser.add_argument("--distance-threshold", type=positive("a distance", "mm"), default=10.0,
                        help="fibres' root-mean-square radius bound, mm (wiring; the paper's figure, on the 70 mm VTC sheet: 10)")  # fmt: skip
    parser.add_argument("--dimensionality-layers", nargs="+", default=None, help="layers whose eigenspectra are drawn [default: every layer]")
    parser.add_argument("--comparison", type=Path, default=None,
                        help="CSV of measured neurons (columns circular_variance, bandwidth, preferred_sf) drawn over the V1 tuning")  # fmt: skip
    parser.add_argument("--comparison-label", default="comparison", help="its name in the figure's legend")
    add_grating_arguments(parser)
    add_border_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it is a folder this command wrote")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    from spacetorch.panels import MANIFEST

    output = open_output(prog, panels_output(args.out, args.overwrite, MANIFEST, "paper-panels folder",
                                             {"--positions": args.positions, "--images": args.images, "--categories": args.categories}))  # fmt: skip
    for flag, source in (("--images", args.images), ("--categories", args.categories)):
        if source is not None and not (source.is_dir() or source.suffix in (".h5", ".npz") and source.is_file()):
            fail(prog, f"{flag} {source} is neither an image folder nor a features file (.h5, .npz)")
    panels = args.panels or [p for p in PANELS if p == "v1" or (p == "categories" and args.categories) or
                             (p in ("wiring", "dimensionality") and args.images)]  # fmt: skip
    needs = {"categories": ("--categories", args.categories), "wiring": ("--images", args.images), "dimensionality": ("--images", args.images)}
    for panel in panels:
        flag, given = needs.get(panel, ("", True))
        if not given:
            fail(prog, f"--panels {panel} needs {flag}")
    comparison = None
    if args.comparison is not None:
        from spacetorch.analyses.v1_statistics import load_comparison

        try:
            comparison = load_comparison(args.comparison)
        except (OSError, ValueError) as err:
            fail(prog, f"--comparison: {err}")
    with exit_on_interrupt(prog, f"nothing was written ({args.out} is as it was)"), unreadable_images_fail(prog):
        return _draw(prog, args, output, panels, comparison)


def _draw(prog: str, args: argparse.Namespace, output: Output, panels: list[str], comparison: Any) -> int:
    import numpy as np

    from spacetorch import panels as draw
    from spacetorch.maps import kept_units, measure_orientation_map
    from spacetorch.models.checkpoints import CheckpointError
    from spacetorch.models.positions import PositionsError
    from spacetorch.models.topographic import TopographicModel

    try:
        model = TopographicModel.from_checkpoint(args.checkpoint, args.positions, args.arch, trusted=args.trust_checkpoint)
    except (CheckpointError, PositionsError, FileNotFoundError, ValueError) as err:
        fail(prog, str(err))
    dimensionality_layers = args.dimensionality_layers or model.layers
    wanted = {"v1": [("--v1-layer", [args.v1_layer])], "categories": [("--vtc-layer", [args.vtc_layer])],
              "wiring": [("--wiring-layers", args.wiring_layers)], "dimensionality": [("--dimensionality-layers", dimensionality_layers)]}  # fmt: skip
    for panel in panels:
        for flag, names in wanted[panel]:
            unknown = [n for n in names if n not in model.layers]
            if unknown:
                fail(prog, f"{flag}: {unknown} have no positions in {args.positions}; it has {model.layers}")
    device = device_of(args)
    progress = not args.quiet
    results: list[Any] = []

    def responses_to(stimuli: Any, layers: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        recorded = model.responses(stimuli, layers, batch_size=args.batch_size, device=device, progress=progress)
        return {name: (r.numpy(), xy.numpy()) for name, (r, xy) in recorded.items()}

    natural_layers = sorted(set(dimensionality_layers if "dimensionality" in panels else []) |
                            set(args.wiring_layers if "wiring" in panels else []), key=model.layers.index)  # fmt: skip
    try:
        gratings = gratings_of(args) if "v1" in panels else None
        if gratings is not None:
            kept_units(model, args.v1_layer, gratings.size, args.exclude_border)  # before any work
    except ValueError as err:
        fail(prog, str(err))
    natural = _source(prog, "--images", args.images, natural_layers, args, model, args.image_limit) if natural_layers else None
    categories = _source(prog, "--categories", args.categories, [args.vtc_layer], args, model) if "categories" in panels else None
    if categories is not None:  # selectivity compares each category with the rest: 2 images or more on each side
        counts = np.bincount(categories.labels, minlength=len(categories.names))
        if len(counts) < 2 or counts.min() < 2 or len(categories.labels) - counts.max() < 2:
            fail(prog, f"--categories {args.categories}: category maps need at least 2 categories of at least 2 images "
                       f"each; it has {dict(zip(categories.names, counts.tolist(), strict=True))}")  # fmt: skip
    with output.build() as out:
        if gratings is not None:
            recorded = model.responses(gratings, [args.v1_layer], batch_size=args.batch_size, device=device, progress=progress)
            measured = measure_orientation_map(model, args.v1_layer, gratings, exclude_border=args.exclude_border,
                                               responses=recorded[args.v1_layer])  # fmt: skip
            results.append(draw.v1_panel(measured, recorded[args.v1_layer][0].numpy(), gratings.orientation,
                                         gratings.spatial_frequency, out, comparison=comparison,
                                         comparison_label=args.comparison_label))  # fmt: skip
        if categories is not None:
            vtc = categories.responses(responses_to)[args.vtc_layer]
            try:
                results.append(draw.category_panel(vtc[0], vtc[1], categories.labels, categories.names, out,
                                                   layer=args.vtc_layer, measure=args.selectivity))  # fmt: skip
            except ValueError as err:
                fail(prog, f"--categories {args.categories}: {err}")
        if natural is not None:
            recorded_natural = natural.responses(responses_to)
            if "wiring" in panels:
                count = min(args.wiring_stimuli, len(natural.labels))
                source, target = (recorded_natural[name] for name in args.wiring_layers)
                results.append(draw.wiring_panel((source[0][:count], source[1]), (target[0][:count], target[1]), out,
                                                 layers=tuple(args.wiring_layers), active_percentile=args.active_percentile,
                                                 distance_threshold=args.distance_threshold))  # fmt: skip
            if "dimensionality" in panels:
                results.append(draw.dimensionality_panel({n: recorded_natural[n][0] for n in dimensionality_layers}, out))
        record = {"checkpoint": str(args.checkpoint), "positions": str(args.positions), "arch": args.arch,
                  "image_size": args.image_size}  # fmt: skip
        draw.write_record(out, results, record, heading=f"{args.checkpoint.name}: the TDANN paper's panels")
    for panel in results:
        print(f"{panel['title']}: {', '.join(panel['figures'])}")
    print(f"wrote {args.out}: {len(results)} panel(s), index.md and {draw.MANIFEST}")
    return 0


@dataclass
class _Source:
    """Images (a folder, run through the model) or their responses (a features file)."""

    labels: Any
    names: list[str]
    layers: list[str]
    folder: Any = None
    features: Any = None
    limit: int | None = None

    def responses(self, run: Callable[[Any, list[str]], dict[str, Any]]) -> dict[str, Any]:
        if self.folder is not None:
            return run(self.folder, self.layers)
        return {name: (self.features.responses[name][: self.limit], self.features.coordinates[name]) for name in self.layers}


def _source(prog: str, flag: str, path: Path, layers: list[str], args: argparse.Namespace, model: Any,
            limit: int | None = None) -> _Source:  # fmt: skip
    """``path`` as a source of responses: an image folder, or a features file of this model with these layers."""
    import torch

    from spacetorch.features import Features, FeaturesError
    from spacetorch.stimuli import ImageFolderStimuli

    if path.is_file():
        try:
            features = Features.load(path)
            features.check_model(args.arch)
            for name in layers:
                features.layer(name)
                if features.dims[name] != tuple(model.layer_positions(name).dims):
                    raise FeaturesError(f"{path}: layer {name} has dims {features.dims[name]} there and "
                                        f"{tuple(model.layer_positions(name).dims)} in --positions {args.positions}")  # fmt: skip
        except FeaturesError as err:
            fail(prog, f"{flag}: {err}")
        count = len(features.labels) if limit is None else min(limit, len(features.labels))
        return _Source(features.labels[:count], features.label_names, layers, features=features, limit=count)
    try:
        folder = ImageFolderStimuli(path, size=args.image_size)
    except (FileNotFoundError, ValueError) as err:
        fail(prog, f"{flag}: {err}")
    count = len(folder) if limit is None else min(limit, len(folder))
    subset = torch.utils.data.Subset(folder, range(count))
    return _Source(folder.labels[:count], folder.categories, layers, folder=subset)
