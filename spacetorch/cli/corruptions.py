"""Corruption robustness: make a Tiny-ImageNet-C-layout set from clean images, and evaluate a
classifier on such a set (accuracy per corruption and severity, the mean, a heat map)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from spacetorch._files import Output
from spacetorch.cli._arguments import (
    HelpFormatter,
    add_classifier_arguments,
    command,
    examples,
    fail,
    image_count,
    open_output,
    output_folder,
    per_batch,
    pixels,
    program,
    seed_value,
    settings_of,
    torch_device,
    unreadable_images_fail,
    workers,
)
from spacetorch.cli._signals import exit_on_interrupt

TABLE = "corruption_accuracy.csv"
SUMMARY = "summary.json"
HEATMAP = "corruption_heatmap.png"


def build_parser() -> argparse.ArgumentParser:
    from spacetorch.data.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES

    parser = argparse.ArgumentParser(
        prog=program("spacetorch corruptions"),
        description=(
            "Corruption robustness in the layout of Tiny-ImageNet-C and ImageNet-C: "
            "ROOT/<corruption>/<severity>/<class>/<image>. 'make' builds such a set from any clean "
            "ImageFolder with imagecorruptions (ImageNet-C's 15 corruptions x 5 severities); 'evaluate' "
            "measures a classifier on one, downloaded or made."
        ),
        epilog=examples(
            "spacetorch corruptions make --images data/tiny-imagenet/val --out data/tiny-imagenet-c --workers 8",
            "spacetorch corruptions evaluate --checkpoint model.torch --arch resnet18 --data data/tiny-imagenet-c \\",
            "    --clean data/tiny-imagenet/val --out results/corruptions",
        ),
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{make,evaluate}")
    names = ", ".join(CORRUPTIONS)
    make = commands.add_parser(
        "make", prog=f"{program('spacetorch corruptions')} make",
        help="make a corrupted set from a clean ImageFolder",
        description=(
            "Write OUT/<corruption>/<severity>/<class>/<image stem>.png for every image of the clean "
            "ImageFolder --images (e.g. Tiny-ImageNet's val images sorted into class folders). The set is "
            "built in OUT.partial and renamed to OUT when complete; after an interruption the same command "
            "continues. Every image gets its own seed (from --seed, its path, the corruption and the severity), "
            "so the set does not depend on --workers. The corruptions use ImageNet-C's severity parameters, "
            "not the 64 px ones of the published Tiny-ImageNet-C: compare models on the same made set, "
            "not with published Tiny-ImageNet-C numbers."
        ),
    )
    make.add_argument("--images", type=Path, required=True, help="clean ImageFolder: IMAGES/<class>/<image>")
    make.add_argument("--out", type=output_folder, required=True, help="the corrupted set to write")
    make.add_argument(
        "--corruptions", nargs="+", default=list(CORRUPTIONS), metavar="NAME",
        help=f"any of {names} [default: these 15] and the held-out {', '.join(EXTRA_CORRUPTIONS)}",
    )
    make.add_argument("--severities", type=int, nargs="+", default=list(SEVERITIES), help="severities, 1-5 [default: all]")
    make.add_argument(
        "--size", type=int, default=None,
        help="resize the shorter side to SIZE and centre-crop a square first (e.g. 64) [default: keep each image's size, at least 32 px]",
    )
    make.add_argument("--seed", type=seed_value, default=0, help="random seed of the corruptions (with each image's path: the same set for any --workers)")
    make.add_argument(
        "--workers", type=workers, default=min(8, os.cpu_count() or 1), help="processes (0: this one) [default: the CPU count, at most 8]"
    )
    make.add_argument("--overwrite", action="store_true", help="replace an existing OUT, or an unfinished OUT.partial made with other settings")
    make.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser(
        "evaluate", prog=f"{program('spacetorch corruptions')} evaluate",
        help="evaluate a classifier on a corrupted set",
        description=(
            "Top-1 accuracy of a classifier checkpoint on every <corruption>/<severity> folder of --data "
            "(Tiny-ImageNet-C, ImageNet-C or a set from 'make'), whose class folders must be the model's "
            "classes in its order (sorted names, as ImageFolder). Writes OUT/" + TABLE + " (corruption, "
            "severity, images, correct, accuracy), OUT/" + SUMMARY + " (the mean corruption accuracy over "
            "every corruption and severity, per corruption, per severity, and the clean accuracy with "
            "--clean) and OUT/" + HEATMAP + "."
        ),
    )
    evaluate.set_defaults(subparser=evaluate)  # its own prog in the messages of classifier_of
    add_classifier_arguments(evaluate, arch_default=None, arch_help="registered model (spacetorch.models.list_models(), e.g. v1_resnet50_a)")
    evaluate.add_argument("--data", type=Path, required=True, help="corrupted set: DATA/<corruption>/<severity>/<class>/<image>")
    evaluate.add_argument("--clean", type=Path, default=None, help="the clean ImageFolder of the same classes, for the clean accuracy")
    evaluate.add_argument(
        "--corruptions", nargs="+", default=None, metavar="NAME",
        help="corruption folders to evaluate [default: every folder of DATA]",
    )
    evaluate.add_argument(
        "--severities", type=int, nargs="+", default=list(SEVERITIES), help="severity folders every corruption must have [default: 1-5]"
    )
    evaluate.add_argument("--out", type=output_folder, default=Path("evaluations/corruptions"), help="results folder [default: %(default)s]")
    evaluate.add_argument("--resize", type=pixels, default=None, help="shorter side after resizing, px [default: the model's input size]")
    evaluate.add_argument("--crop", type=pixels, default=None, help="centre crop, px [default: the model's input size]")
    evaluate.add_argument(
        "--then-resize", type=pixels, default=None,
        help="resize the crop to this side last: the V1 paper's ImageNet chain is --resize 256 --crop 224 --then-resize 64",
    )
    evaluate.add_argument("--batch-size", type=per_batch, default=128, help="images per forward pass")
    evaluate.add_argument("--workers", type=workers, default=2, help="data-loading processes [default: %(default)s]")
    evaluate.add_argument("--limit", type=image_count, default=None, help="evaluate only the first N images of every folder (a quick check)")
    evaluate.add_argument("--device", type=torch_device, default=None, help="torch device [default: cuda if available, else cpu]")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "make":
        return _make(parser, args)
    return _evaluate(args.subparser, args)


def _make(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from spacetorch.data.corruptions import PARTIAL_SUFFIX, CorruptedSetError, make_corrupted_folder

    prog = f"{program('spacetorch corruptions')} make"
    open_output(prog, Output(args.out, inputs={"--images": args.images}))  # the set's own checks: make_corrupted_folder
    if args.out.exists() and not args.overwrite:
        fail(prog, f"--out {args.out} exists; choose another folder or pass --overwrite")
    partial = args.out.with_name(args.out.name + PARTIAL_SUFFIX)

    def progress(finished: Any, total: int) -> Any:
        return tqdm(finished, total=total, desc="corrupting", unit="img", disable=args.quiet)

    with (
        exit_on_interrupt(prog, f"the images made so far are in {partial}; the same command continues from there"),
        unreadable_images_fail(prog),
    ):
        try:
            out = make_corrupted_folder(
                args.images, args.out, corruptions=args.corruptions, severities=args.severities, size=args.size,
                seed=args.seed, workers=args.workers, overwrite=args.overwrite, progress=progress,
            )
        except (CorruptedSetError, ValueError) as err:
            fail(prog, str(err))
    cells = len(args.corruptions) * len(args.severities)
    print(f"wrote {out}: {len(args.corruptions)} corruption(s) x {len(args.severities)} severities ({cells} ImageFolders)")
    return 0


def _evaluate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    prog = f"{program('spacetorch corruptions')} evaluate"
    if args.clean is not None and not args.clean.is_dir():
        fail(prog, f"--clean {args.clean} is not a directory")
    output = open_output(prog, Output(args.out, inputs={"--data": args.data, "--clean": args.clean},
                                      entries=[TABLE, SUMMARY, HEATMAP], settings=settings_of(prog, args)))  # fmt: skip
    from spacetorch.data.corruptions import CorruptedSetError, corruption_folders

    try:
        folders = corruption_folders(args.data, corruptions=args.corruptions, severities=args.severities)
    except CorruptedSetError as err:
        fail(prog, f"--data: {err}")
    with exit_on_interrupt(prog, f"nothing was written to {args.out}"), unreadable_images_fail(prog):
        return _run_evaluation(parser, args, folders, output)


def _run_evaluation(
    parser: argparse.ArgumentParser, args: argparse.Namespace, folders: dict[tuple[str, int], Path], output: Output
) -> int:
    import numpy as np
    from torchvision import transforms
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset
    from tqdm.auto import tqdm

    from spacetorch.cli._arguments import classifier_of, device_of
    from spacetorch.data.corruptions import class_folders
    from spacetorch.evaluation import group_accuracy, summarise_corruptions

    prog = f"{program('spacetorch corruptions')} evaluate"
    model, info, kwargs, outputs = classifier_of(parser, args)
    first = next(iter(folders.values()))
    classes = [p.name for p in class_folders(first)]
    if len(classes) != outputs:
        fail(
            prog,
            f"--data {args.data}: {first} has {len(classes)} class folders, but the model in {args.checkpoint} "
            f"has {outputs} outputs; the folders must be the model's classes, in its order",
        )
    groups: list[tuple[str, int | None, Path]] = [(c, s, folder) for (c, s), folder in folders.items()]
    if args.clean is not None:
        if [p.name for p in class_folders(args.clean)] != classes:
            fail(prog, f"--clean {args.clean} has other class folders than {first}")
        groups.append(("clean", None, args.clean))
    index = {name: i for i, name in enumerate(classes)}
    samples: list[tuple[str, int, int]] = []
    for group, (_, _, folder) in enumerate(groups):
        try:
            found = make_dataset(str(folder), index, extensions=IMG_EXTENSIONS)
        except FileNotFoundError as err:
            fail(prog, f"{folder}: {err}")
        samples += [(path, label, group) for path, label in found[: args.limit]]
    size = info.input_size
    transform = transforms.Compose([
        transforms.Resize(args.resize or size), transforms.CenterCrop(args.crop or size),
        *([transforms.Resize(args.then_resize)] if args.then_resize else []), transforms.ToTensor(),
        transforms.Normalize(info.mean, info.std),
    ])
    device = device_of(args)
    with tqdm(total=len(samples), desc="evaluating", unit="img", disable=args.quiet) as bar:
        correct, seen = group_accuracy(model, samples, len(groups), transform, device=device, batch_size=args.batch_size,
                                       workers=args.workers, progress=bar.update)
    accuracy = correct / np.maximum(seen, 1)
    rows = [
        {"corruption": c, "severity": s, "images": int(seen[g]), "correct": int(correct[g]), "accuracy": float(accuracy[g])}
        for g, (c, s, _) in enumerate(groups) if s is not None
    ]
    summary = summarise_corruptions(rows)
    summary = {
        "checkpoint": str(args.checkpoint), "arch": args.arch, "model_kwargs": kwargs, "data": str(args.data),
        "clean_accuracy": float(accuracy[-1]) if args.clean is not None else None, **summary,
    }
    _write(output, rows, summary)
    clean = f", clean accuracy {summary['clean_accuracy']:.4f}" if args.clean is not None else ""
    print(f"mean corruption accuracy {summary['mean_corruption_accuracy']:.4f} over {len(rows)} folders{clean}")
    if summary["missing_benchmark_corruptions"]:
        print(f"note: not in the set: {', '.join(summary['missing_benchmark_corruptions'])} (the mean is over the others)")
    print(f"wrote {args.out / TABLE}, {args.out / SUMMARY} and {args.out / HEATMAP}")
    return 0


def _write(output: Output, rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    import numpy as np

    from spacetorch.plots import corruption_heatmap, save_figure

    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    corruptions = list(summary["per_corruption"])
    severities = [int(s) for s in summary["per_severity"]]
    grid = np.full((len(corruptions), len(severities)), np.nan)
    for row in rows:
        grid[corruptions.index(row["corruption"]), severities.index(row["severity"])] = row["accuracy"]
    title = f"{summary['arch']}: mean corruption accuracy {summary['mean_corruption_accuracy']:.3f}"
    if summary["clean_accuracy"] is not None:
        title += f" (clean {summary['clean_accuracy']:.3f})"
    save_figure(corruption_heatmap(grid, corruptions, severities, title=title), output.path(HEATMAP))
    output.write_text(SUMMARY, json.dumps(summary, indent=1))
    output.write_text(TABLE, table.getvalue())
