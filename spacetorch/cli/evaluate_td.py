"""Evaluate a classifier with top-down attention on an ImageFolder: top-1 / top-5, the accuracy
of every computation step, the multi-step metric, localisation, and class activation maps."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from spacetorch._files import Output
from spacetorch._workers import data_loader
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
    settings_of,
    torch_device,
    unreadable_images_fail,
    workers,
)
from spacetorch.cli._signals import exit_on_interrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch evaluate-tdam"),
        description=(
            "Evaluate a classifier checkpoint (a VISSL checkpoint with a linear head, or a plain state dict) "
            "on an ImageFolder-layout directory (ImageNet val, ImageNet-V2... one folder per class, in the "
            "model's class order). Reports top-1 and top-5 of the last step, the top-1 of every computation "
            "step, and the multi-step metric (per step, the class activation map of its top-1 class gives a "
            "box; steps whose boxes overlap with IoU > 0.5 are merged, the more confident winning; an image "
            "counts if any kept prediction is right: a best-of-T count, reported under its own name). With "
            "--boxes, also top-1 localisation (right class and IoU >= 0.5 with a true box). Writes "
            "OUT/results.json, OUT/results.csv and, for --cam-images, one PNG per image with its CAM at every step."
        ),
        epilog=examples(
            'spacetorch evaluate-tdam --checkpoint tdresnet50.torch --arch tdresnet50 --data data/imagenet/val --out results/tdam',
            'spacetorch evaluate-tdam --checkpoint tdresnet50.torch --arch tdresnet50 --data data/imagenet/val \\',
            '    --boxes data/imagenet/val_boxes --cam-images n01440764/ILSVRC2012_val_00000293.JPEG',
        ),
        formatter_class=HelpFormatter,
    )
    add_classifier_arguments(parser, arch_default="tdresnet50", arch_help="registered model (spacetorch.models.list_models('td*'))")
    parser.add_argument("--data", type=Path, required=True, help="ImageFolder directory: DATA/<class>/<image>")
    parser.add_argument(
        "--boxes", type=Path, default=None,
        help="directory of ImageNet/VOC XML box annotations, <image stem>.xml (also in class subfolders)",
    )
    parser.add_argument("--cam-images", nargs="+", default=[], metavar="IMAGE", help="image paths under DATA to draw the CAMs of")
    parser.add_argument("--out", type=output_folder, default=Path("evaluations/td"), help="results folder")
    parser.add_argument("--resize", type=pixels, default=256, help="shorter side after resizing, px")
    parser.add_argument("--crop", type=pixels, default=224, help="centre crop, px")
    parser.add_argument("--batch-size", type=per_batch, default=64, help="images per forward pass")
    parser.add_argument("--workers", type=workers, default=2, help="data-loading processes")
    parser.add_argument("--limit", type=image_count, default=None, help="evaluate only the first N images (a quick check)")
    parser.add_argument("--device", type=torch_device, default=None, help="torch device [default: cuda if available, else cpu]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        fail(parser.prog, f"--data: {args.data} is not a directory")
    if args.boxes is not None and not args.boxes.is_dir():
        fail(parser.prog, f"--boxes: {args.boxes} is not a directory")
    output = open_output(parser.prog, Output(args.out, inputs={"--data": args.data, "--boxes": args.boxes},
                                             entries=_results(args), settings=settings_of(parser.prog, args)))  # fmt: skip
    with exit_on_interrupt(parser.prog, f"nothing was written to {args.out}"), unreadable_images_fail(parser.prog):
        return _evaluate(parser, args, output)


def _evaluate(parser: argparse.ArgumentParser, args: argparse.Namespace, output: Output) -> int:
    import torch
    from torchvision import transforms
    from tqdm.auto import tqdm

    from spacetorch.analyses.multistep import cam_readout, find_box_file, read_voc_boxes
    from spacetorch.cli._arguments import classifier_of, device_of
    from spacetorch.data.folders import ClassFolder, numeric_order_note
    from spacetorch.data.image_check import open_image
    from spacetorch.evaluation import multistep_evaluation

    model, info, kwargs, outputs = classifier_of(parser, args)
    try:
        cam_readout(model)
    except ValueError as err:
        fail(parser.prog, f"--arch {args.arch}: {err}")
    device = device_of(args)
    model.to(device)
    transform = transforms.Compose([
        transforms.Resize(args.resize), transforms.CenterCrop(args.crop), transforms.ToTensor(),
        transforms.Normalize(info.mean, info.std),
    ])
    try:
        dataset = ClassFolder(args.data, transform=transform, loader=open_image)
    except (FileNotFoundError, RuntimeError) as err:
        fail(parser.prog, f"--data {args.data}: {err}")
    note = numeric_order_note(dataset.classes, "--data")
    if note:
        print(f"{parser.prog}: {note}", file=sys.stderr)
    if len(dataset.classes) != outputs:
        fail(
            parser.prog,
            f"--data {args.data} has {len(dataset.classes)} class folders, but the model in "
            f"{args.checkpoint} has {outputs} outputs; the folders must be the model's classes, in its order",
        )
    cam_paths = _cam_indices(parser, args, dataset)
    boxes: dict[int, Any] = {}
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    if args.boxes is not None:
        for index in range(count):
            xml = find_box_file(args.boxes, Path(dataset.samples[index][0]))
            if xml is None:
                fail(parser.prog, f"--boxes {args.boxes}: no {Path(dataset.samples[index][0]).stem}.xml")
            try:
                boxes[index] = read_voc_boxes(xml)
            except ValueError as err:
                fail(parser.prog, f"--boxes: {err}")
    subset: Any = torch.utils.data.Subset(dataset, range(count))
    loader = data_loader(subset, batch_size=args.batch_size, workers=args.workers)
    results = multistep_evaluation(
        model, loader, device, boxes=boxes, crop=args.crop, resize=args.resize, keep=set(cam_paths.values()),
        progress=tqdm(total=count, desc="evaluating", unit="img", disable=args.quiet),
    )
    summary = {
        "checkpoint": str(args.checkpoint), "arch": args.arch, "model_kwargs": kwargs, "data": str(args.data),
        "images": count, **results.pop("metrics"),
    }
    _write(output, summary, results["cams"], cam_paths, dataset, info.mean, info.std)
    shown = {k: v for k, v in summary.items() if isinstance(v, float)}
    print(", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.csv'}"
          + (f" and {len(cam_paths)} CAM figure(s) in {args.out / 'cams'}" if cam_paths else ""))
    return 0


def _cam_indices(parser: argparse.ArgumentParser, args: argparse.Namespace, dataset: Any) -> dict[str, int]:
    by_path = {str(Path(path).resolve()): i for i, (path, _) in enumerate(dataset.samples)}
    found = {}
    for name in args.cam_images:
        candidates = [Path(name), args.data / name]
        index = next((by_path.get(str(c.resolve())) for c in candidates if str(c.resolve()) in by_path), None)
        if index is None:
            fail(parser.prog, f"--cam-images: {name} is not an image of --data {args.data}")
        if args.limit is not None and index >= args.limit:
            fail(parser.prog, f"--cam-images: {name} is beyond --limit {args.limit}")
        found[name] = index
    return found


def _results(args: argparse.Namespace) -> list[str]:
    """The entries the evaluation writes into ``--out``."""
    return ["results.json", "results.csv", *(["cams"] if args.cam_images else [])]


def _write(
    output: Output, summary: dict[str, Any], cams: dict[int, Any], cam_paths: dict[str, int], dataset: Any,
    mean: tuple[float, ...], std: tuple[float, ...],
) -> None:
    import numpy as np

    from spacetorch.plots import cam_steps_figure, save_figure

    text = json.dumps(summary, indent=1)
    table = io.StringIO()
    writer = csv.writer(table)
    flat = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in summary.items()}
    writer.writerow(flat)
    writer.writerow(flat.values())
    for _name, index in cam_paths.items():
        path, label = dataset.samples[index]
        image = dataset[index][0].numpy() * np.array(std)[:, None, None] + np.array(mean)[:, None, None]
        fig = cam_steps_figure(image, cams[index], classes=dataset.classes, label=label, title=Path(path).name)
        save_figure(fig, output.path(f"cams/{Path(path).parent.name}_{Path(path).stem}.png"))
    output.write_text("results.csv", table.getvalue())
    output.write_text("results.json", text)
