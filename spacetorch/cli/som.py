"""The paper's self-organising map baselines, drawn with the same panels as a network's maps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from spacetorch.cli._arguments import (
    HelpFormatter,
    bounded,
    command,
    examples,
    fail,
    open_output,
    output_folder,
    panels_output,
    positive,
    program,
    seed_value,
)
from spacetorch.cli._signals import exit_on_interrupt

if TYPE_CHECKING:
    from spacetorch._files import Output


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch som"),
        description=(
            "Train the TDANN paper's self-organising map baselines and draw them as a network's maps are "
            "drawn (spacetorch paper-panels): 'v1' trains the V1 SOM on its feature space (orientation, "
            "SF, colour, retinotopy) and draws its orientation map and tuning; 'vtc' trains a SOM on a "
            "network's features of many images (a features file of a non-topographic model) and draws its "
            "category maps for a category set's features. Each writes a folder with panels.json and index.md."
        ),
        epilog=examples(
            "spacetorch som v1 --out panels/v1_som                       # the original's size: 128 x 128 nodes, 10^6 steps",
            "spacetorch features --checkpoint alpha0.torch --positions positions/resnet18 --images /data/imagenet/val \\",
            "    --layers layer4.1 --out features/alpha0_imagenet.h5",
            "spacetorch features --checkpoint alpha0.torch --positions positions/resnet18 --images /data/floc \\",
            "    --layers layer4.1 --out features/alpha0_floc.h5",
            "spacetorch som vtc --train-features features/alpha0_imagenet.h5 --categories-features features/alpha0_floc.h5 \\",
            "    --layer layer4.1 --out panels/vtc_som",
        ),
        formatter_class=HelpFormatter,
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{v1,vtc}")
    for kind, summary in (("v1", "the V1 SOM"), ("vtc", "a VTC SOM on a network's features")):
        sub = kinds.add_parser(kind, help=summary, description=summary, formatter_class=HelpFormatter)
        sub.add_argument("--out", type=output_folder, required=True, help="the folder to write")
        sub.add_argument("--edge", type=bounded(2, 1024, "nodes"), default=128, help="nodes on a side of the sheet")
        sub.add_argument("--sigma", type=positive("a number"), default=2.5, help="neighbourhood width, nodes")
        sub.add_argument("--seed", type=seed_value, default=424, help="random seed")
        sub.add_argument("--overwrite", action="store_true", help="replace --out if it is a folder this command wrote")
        sub.add_argument("--verbose", action="store_true", help="MiniSom's training progress")
        if kind == "v1":
            sub.add_argument("--iterations", type=bounded(1, 10**9, "steps", scientific=True), default=1_000_000, help="training steps")
            sub.add_argument("--samples", type=bounded(1, 10**8, "samples", scientific=True), default=10_000, help="feature vectors drawn")
            sub.add_argument("--learning-rate", type=positive("a number"), default=0.02, help="MiniSom's learning rate (epsilon)")
            sub.add_argument("--tissue-size", type=positive("a number"), default=4.56, help="sheet side, mm")
            sub.add_argument("--comparison", type=Path, default=None, help="CSV of measured neurons drawn over the tuning (see paper-panels)")
        else:
            sub.add_argument("--train-features", type=Path, required=True, help="features file of many images (spacetorch features)")
            sub.add_argument("--categories-features", type=Path, required=True, help="features file of a category set")
            sub.add_argument("--layer", required=True, help="the layer of both files the SOM learns (e.g. layer4.1)")
            sub.add_argument("--components", type=bounded(2, 10_000, "components"), default=20, help="PCA components the SOM sees")
            sub.add_argument("--iterations", type=bounded(1, 10**9, "steps", scientific=True), default=100_000, help="training steps")
            sub.add_argument("--learning-rate", type=positive("a number"), default=0.5, help="MiniSom's learning rate")
            sub.add_argument("--tissue-size", type=positive("a number"), default=10.0, help="sheet side, mm")
            sub.add_argument("--selectivity", choices=("t", "dprime"), default="t", help="category selectivity measure")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{parser.prog} {args.kind}"
    from spacetorch.panels import MANIFEST

    output = open_output(prog, panels_output(args.out, args.overwrite, MANIFEST, "SOM panels folder",
                                             {"--train-features": getattr(args, "train_features", None),
                                              "--categories-features": getattr(args, "categories_features", None)}))  # fmt: skip
    with exit_on_interrupt(prog, f"nothing was written ({args.out} is as it was)"):
        return _v1(prog, args, output) if args.kind == "v1" else _vtc(prog, args, output)


def _v1(prog: str, args: argparse.Namespace, output: Output) -> int:
    import numpy as np

    from spacetorch.analyses import analyze_orientation_map
    from spacetorch.analyses.som import V1SOMSettings, train_v1_som
    from spacetorch.analyses.v1_statistics import load_comparison
    from spacetorch.maps import MapMeasurement
    from spacetorch.panels import v1_panel, write_record
    from spacetorch.stimuli import SineGratings

    try:
        settings = V1SOMSettings(edge=args.edge, epsilon=args.learning_rate, sigma=args.sigma, samples=args.samples,
                                 iterations=args.iterations, tissue_size=args.tissue_size, seed=args.seed)  # fmt: skip
        comparison = load_comparison(args.comparison) if args.comparison is not None else None
    except (OSError, ValueError) as err:
        fail(prog, str(err))
    som = train_v1_som(settings, verbose=args.verbose)
    gratings = SineGratings(224)  # only the parameters are used: the SOM sees feature vectors
    responses = som.responses(gratings.orientation, gratings.spatial_frequency, gratings.color)
    keep = np.ones(responses.shape[1], dtype=bool)
    try:
        measured = MapMeasurement("V1 SOM", gratings.size, keep, "", analyze_orientation_map(responses, som.positions, gratings.orientation))
    except ValueError as err:
        measured = MapMeasurement("V1 SOM", gratings.size, keep, "", None, str(err))
    with output.build() as out:
        panel = v1_panel(measured, responses, gratings.orientation, gratings.spatial_frequency, out, comparison=comparison)
        write_record(out, [panel], {"som": "v1", "settings": vars(settings)}, heading="The V1 SOM baseline")
    print(f"{panel['title']}: {', '.join(panel['figures'])}")
    print(f"wrote {args.out}")
    return 0


def _vtc(prog: str, args: argparse.Namespace, output: Output) -> int:
    from spacetorch.analyses.som import train_vtc_som
    from spacetorch.features import Features, FeaturesError
    from spacetorch.panels import category_panel, write_record

    try:
        train = Features.load(args.train_features).layer(args.layer)[0]
        categories = Features.load(args.categories_features)
        category_responses = categories.layer(args.layer)[0]
        som = train_vtc_som(train, components=args.components, edge=args.edge, sigma=args.sigma, learning_rate=args.learning_rate,
                            iterations=args.iterations, tissue_size=args.tissue_size, seed=args.seed, verbose=args.verbose)  # fmt: skip
    except (FeaturesError, ValueError) as err:
        fail(prog, str(err))
    responses = som.responses(category_responses)
    with output.build() as out:
        try:
            panel = category_panel(responses, som.positions, categories.labels, categories.label_names, out,
                                   layer=f"VTC SOM on {args.layer}", measure=args.selectivity)  # fmt: skip
        except ValueError as err:
            fail(prog, f"--categories-features {args.categories_features}: {err}")
        record = {"som": "vtc", "train_features": str(args.train_features), "categories_features": str(args.categories_features),
                  "layer": args.layer, "components": args.components, "edge": args.edge, "iterations": args.iterations}  # fmt: skip
        write_record(out, [panel], record, heading="A VTC SOM baseline")
    print(f"{panel['title']}: {', '.join(panel['figures'])}")
    print(f"wrote {args.out}")
    return 0
