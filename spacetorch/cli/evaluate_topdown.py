"""Evaluate coarse-to-fine (Top-Down Networks) and bottom-up classifiers side by side: accuracy,
accuracy under FGSM / PGD attacks at a list of budgets, and Grad-CAM maps with a localisation score."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from spacetorch._files import Output
from spacetorch._workers import data_loader
from spacetorch.cli._arguments import (
    HelpFormatter,
    bounded,
    command,
    examples,
    fail,
    image_count,
    open_output,
    output_folder,
    per_batch,
    program,
    seed_value,
    settings_of,
    torch_device,
    unreadable_images_fail,
    workers,
)
from spacetorch.cli._signals import exit_on_interrupt


def _epsilon(text: str) -> float:
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction such as 8/255, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"an L-infinity budget in [0, 1] image units (e.g. 8/255), got {text!r}")
    return value


def _model_spec(text: str) -> tuple[str, Path]:
    arch, sep, path = text.partition("=")
    if not sep or not arch or not path:
        raise argparse.ArgumentTypeError(f"expected ARCH=CHECKPOINT, e.g. topdown_resnet32_cifar=ckpt.torch; got {text!r}")
    return arch.strip(), Path(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch evaluate-coarse-to-fine"),
        description=(
            "Compare classifiers (e.g. a coarse-to-fine topdown_* model and its bottomup_* twin) on an "
            "ImageFolder whose class folders are the models' classes, in their order. Subcommands: "
            "'accuracy', 'attack' (FGSM and PGD with torchattacks: accuracy against the budget epsilon, "
            "one plot for all models), 'minimal' (the smallest L2 perturbation that flips each image, with "
            "DeepFool: its median and the accuracy it implies at each size), 'ablation' (a coarse-to-fine "
            "model's accuracy with each pyramid level removed in turn) and 'gradcam' (pytorch-grad-cam "
            "heat maps of chosen images; with --boxes, a localisation score)."
        ),
        epilog=examples(
            "spacetorch evaluate-coarse-to-fine accuracy --model topdown_resnet32_cifar=topdown.torch \\",
            "    --model bottomup_resnet32_cifar=bottomup.torch --data data/cifar10/test --out results/cifar",
            "spacetorch evaluate-coarse-to-fine attack --model topdown_resnet32_cifar=topdown.torch --data data/cifar10/test \\",
            "    --eps 0 1/255 2/255 4/255 8/255 --attacks fgsm pgd",
        ),
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{accuracy,attack,minimal,ablation,gradcam}")
    for name, text in (
        ("accuracy", "top-1 accuracy of each model: OUT/accuracy.csv"),
        ("attack", "accuracy under FGSM and PGD at each budget: OUT/robustness.csv and OUT/robustness.png"),
        ("minimal", "each image's smallest flipping L2 perturbation (DeepFool): OUT/minimal.csv and OUT/minimal.png"),
        ("ablation", "accuracy with each level of a coarse-to-fine model's image pyramid removed in turn: OUT/ablation.csv"),
        ("gradcam", "Grad-CAM of chosen images for each model: OUT/gradcam/<image>.png and OUT/gradcam.csv"),
    ):
        sub = commands.add_parser(name, prog=f"{program('spacetorch evaluate-coarse-to-fine')} {name}", help=text, description=text)
        sub.add_argument(
            "--model", type=_model_spec, action="append", required=True, metavar="ARCH=CHECKPOINT",
            help="a registered model and its checkpoint (VISSL with a linear head, or a plain state dict); repeat to compare",
        )
        sub.add_argument("--data", type=Path, required=True, help="ImageFolder: DATA/<class>/<image>")
        sub.add_argument("--out", type=output_folder, default=Path(f"evaluations/topdown_{name}"), help="results folder [default: %(default)s]")
        sub.add_argument("--device", type=torch_device, default=None, help="torch device [default: cuda if available, else cpu]")
        sub.add_argument(
            "--trust-checkpoint", action="store_true",
            help="allow checkpoints that need full unpickling (runs code named in the file; trusted files only)",
        )
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
        if name != "gradcam":
            sub.add_argument("--batch-size", type=per_batch, default=128, help="images per forward pass")
            sub.add_argument("--workers", type=workers, default=2, help="data-loading processes [default: %(default)s]")
            sub.add_argument("--limit", type=image_count, default=None, help="only the first N images (a quick check)")
        if name == "attack":
            sub.add_argument(
                "--eps", type=_epsilon, nargs="+", default=[0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255],
                help="L-infinity budgets in [0, 1] image units; fractions allowed [default: 0 1/255 2/255 4/255 8/255 16/255]",
            )
            sub.add_argument("--attacks", nargs="+", default=["fgsm", "pgd"], choices=["fgsm", "pgd"], help="attacks to run (fast gradient sign, projected gradient descent)")
            sub.add_argument("--pgd-steps", type=bounded(1, 10_000, "steps"), default=10, help="PGD iterations (step 2.5 eps / steps) [default: %(default)s]")
            sub.add_argument("--seed", type=seed_value, default=0, help="PGD's random starts [default: 0]")
        if name == "minimal":
            sub.add_argument("--steps", type=bounded(1, 10_000, "steps"), default=50, help="DeepFool iterations per image")
        if name == "gradcam":
            sub.add_argument("--images", nargs="+", required=True, metavar="IMAGE", help="images of DATA (paths, or relative to DATA)")
            sub.add_argument(
                "--layer", default=None,
                help="module whose output Grad-CAM weighs [default: 'norm', the last features, where the model has it]",
            )
            sub.add_argument(
                "--boxes", type=Path, default=None,
                help="folder of VOC/ImageNet XML boxes, <image stem>.xml: adds the IoU of the CAM's box and the CAM mass inside the boxes",
            )
    return parser


#: what each subcommand writes into --out
RESULTS = {"accuracy": ["accuracy.csv"], "attack": ["robustness.csv", "robustness.png"], "minimal": ["minimal.csv", "minimal.png"],
           "ablation": ["ablation.csv"], "gradcam": ["gradcam.csv", "gradcam"]}


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"{program('spacetorch evaluate-coarse-to-fine')} {args.command}"
    if not args.data.is_dir():
        fail(prog, f"--data {args.data} is not a directory")
    output = open_output(prog, Output(args.out, inputs={"--data": args.data, "--boxes": getattr(args, "boxes", None)},
                                      entries=RESULTS[args.command], settings=settings_of(prog, args)))  # fmt: skip
    with exit_on_interrupt(prog, f"nothing was written to {args.out}"), unreadable_images_fail(prog):
        models = _load_models(prog, args)
        return {"accuracy": _accuracy, "attack": _attack, "minimal": _minimal, "ablation": _ablation,
                "gradcam": _gradcam}[args.command](prog, args, models, output)


def _load_models(prog: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per ``--model``: label, arch, checkpoint, the model taking [0, 1] images, its info."""
    from spacetorch.analyses.robustness import Normalized
    from spacetorch.cli._arguments import LOAD_ERRORS, device_of, load_whole_classifier
    from spacetorch.data.folders import class_names, numeric_order_note

    try:
        classes = class_names(args.data)
    except FileNotFoundError as err:
        fail(prog, f"--data {args.data}: {err} (expected DATA/<class>/<image>)")
    note = numeric_order_note(classes, "--data")
    if note:
        print(f"{prog}: {note}", file=sys.stderr)
    models: list[dict[str, Any]] = []
    for arch, path in args.model:
        try:
            model, info, outputs = load_whole_classifier(path, arch, trusted=args.trust_checkpoint)
        except LOAD_ERRORS as err:
            fail(prog, f"--model {arch}={path}: {err}")
        if outputs != len(classes):
            fail(prog, f"--model {arch}={path} has {outputs} outputs, but --data {args.data} has {len(classes)} class folders")
        label = arch if all(m["arch"] != arch for m in models) else f"{arch} #{sum(m['arch'] == arch for m in models) + 1}"
        models.append({"label": label, "arch": arch, "checkpoint": str(path), "info": info,
                       "model": Normalized(model, info.mean, info.std).to(device_of(args)).eval()})  # fmt: skip
    first = models[0]["info"]
    for entry in models[1:]:
        if (entry["info"].input_size, entry["info"].in_chans) != (first.input_size, first.in_chans):
            fail(prog, f"--model {entry['arch']} takes {entry['info'].input_size} px x {entry['info'].in_chans} channels, "
                        f"{models[0]['arch']} {first.input_size} px x {first.in_chans}: compare models of one input size")  # fmt: skip
    return models


def _transform(info: Any) -> Any:
    from torchvision import transforms

    return transforms.Compose([transforms.Resize(info.input_size), transforms.CenterCrop(info.input_size), transforms.ToTensor()])


def _dataset(prog: str, args: argparse.Namespace, info: Any) -> Any:
    """DATA as an ImageFolder of the models' input: grey images for grey models, RGB for colour ones."""
    from functools import partial

    from spacetorch.data.folders import ClassFolder
    from spacetorch.data.image_check import open_image

    try:
        return ClassFolder(args.data, transform=_transform(info), loader=partial(open_image, mode="L" if info.in_chans == 1 else "RGB"))
    except (FileNotFoundError, RuntimeError) as err:
        fail(prog, f"--data {args.data}: {err}")


def _loader(prog: str, args: argparse.Namespace, info: Any) -> Any:
    import torch

    dataset = _dataset(prog, args, info)
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    subset = torch.utils.data.Subset(dataset, range(count))
    return data_loader(subset, batch_size=args.batch_size, workers=args.workers), count


def _accuracy(prog: str, args: argparse.Namespace, models: list[dict[str, Any]], output: Output) -> int:
    rows = _attack_rows(prog, args, models, eps=[0.0], attacks=[], pgd_steps=1, seed=0)  # clean images only
    table = [{"model": r["model"], "arch": r["arch"], "checkpoint": r["checkpoint"], "images": r["images"], "top1": r["accuracy"]} for r in rows]
    _write_csv(output, "accuracy.csv", table)
    for row in table:
        print(f"{row['model']}: top-1 {row['top1']:.4f} over {row['images']} images")
    print(f"wrote {args.out / 'accuracy.csv'}")
    return 0


def _attack_rows(
    prog: str, args: argparse.Namespace, models: list[dict[str, Any]], eps: list[float], attacks: list[str], pgd_steps: int, seed: int
) -> list[dict[str, Any]]:
    """Accuracy of each model on clean images (``eps`` 0) and under each attack at each budget."""
    from tqdm.auto import tqdm

    from spacetorch.analyses.robustness import attack_accuracy
    from spacetorch.cli._arguments import device_of

    loader, count = _loader(prog, args, models[0]["info"])
    rows = []
    for entry in models:
        with tqdm(total=count, desc=entry["label"], unit="img", disable=args.quiet) as bar:
            result = attack_accuracy(
                entry["model"], loader, eps, attacks=attacks, pgd_steps=pgd_steps, device=device_of(args), seed=seed,
                progress=bar.update,
            )
        for (attack, budget), accuracy in result.items():
            rows.append({"model": entry["label"], "arch": entry["arch"], "checkpoint": entry["checkpoint"],
                         "attack": attack, "eps": budget, "eps_255": round(budget * 255, 4), "images": count, "accuracy": accuracy})  # fmt: skip
    return rows


def _attack(prog: str, args: argparse.Namespace, models: list[dict[str, Any]], output: Output) -> int:
    from spacetorch.plots import robustness_figure, save_figure

    rows = _attack_rows(prog, args, models, args.eps, args.attacks, args.pgd_steps, args.seed)
    save_figure(robustness_figure(rows), output.path("robustness.png"))
    _write_csv(output, "robustness.csv", rows)
    for row in rows:
        budget = "" if row["attack"] == "clean" else f" eps {row['eps_255']:g}/255"
        print(f"{row['model']}: {row['attack']}{budget}: {row['accuracy']:.4f}")
    print(f"wrote {args.out / 'robustness.csv'} and {args.out / 'robustness.png'}")
    return 0


def _minimal(prog: str, args: argparse.Namespace, models: list[dict[str, Any]], output: Output) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from spacetorch.analyses.robustness import accuracy_curve, minimal_perturbations
    from spacetorch.cli._arguments import device_of
    from spacetorch.plots import minimal_perturbation_figure, save_figure

    loader, count = _loader(prog, args, models[0]["info"])
    rows, norms = [], {}
    for entry in models:
        with tqdm(total=count, desc=entry["label"], unit="img", disable=args.quiet) as bar:
            found = minimal_perturbations(entry["model"], loader, steps=args.steps, device=device_of(args), progress=bar.update)
        norms[entry["label"]] = found
        rows += [{"model": entry["label"], "arch": entry["arch"], "image": i, "l2": float(n)} for i, n in enumerate(found)]
        finite = found[np.isfinite(found)]
        print(f"{entry['label']}: median smallest flipping L2 perturbation {np.median(found):.4g} "
              f"({int((found == 0).sum())} images already wrong, {int((~np.isfinite(found)).sum())} not flipped in "
              f"{args.steps} steps; largest found {finite.max() if finite.size else float('nan'):.4g})")  # fmt: skip
    largest = max((float(n[np.isfinite(n)].max()) for n in norms.values() if np.isfinite(n).any()), default=1.0)
    sizes = np.linspace(0.0, largest * 1.05, 50)
    save_figure(minimal_perturbation_figure({k: accuracy_curve(v, sizes) for k, v in norms.items()}, sizes), output.path("minimal.png"))
    _write_csv(output, "minimal.csv", rows)
    print(f"wrote {args.out / 'minimal.csv'} and {args.out / 'minimal.png'}")
    return 0


def _ablation(prog: str, args: argparse.Namespace, models: list[dict[str, Any]], output: Output) -> int:
    from spacetorch.analyses.robustness import scale_ablation
    from spacetorch.cli._arguments import device_of

    pyramids = {e["label"]: getattr(e["model"].model, "pyramid", None) for e in models}
    flat = [label for label, pyramid in pyramids.items() if pyramid is None]
    if len(flat) == len(models):
        fail(prog, f"--model: {', '.join(flat)} see(s) the image at one scale only (no image pyramid): nothing to ablate")
    loader, count = _loader(prog, args, models[0]["info"])
    rows = []
    for entry in models:
        pyramid = pyramids[entry["label"]]
        if pyramid is None:
            print(f"{entry['label']}: no image pyramid (a bottom-up model), left out")
            continue
        for removed, accuracy in scale_ablation(entry["model"], pyramid, loader, device=device_of(args)).items():
            rows.append({"model": entry["label"], "arch": entry["arch"], "removed": removed, "images": count, "accuracy": accuracy})
            print(f"{entry['label']}: {removed} removed: {accuracy:.4f}")
    _write_csv(output, "ablation.csv", rows)
    print(f"wrote {args.out / 'ablation.csv'}")
    return 0


def _gradcam(prog: str, args: argparse.Namespace, models: list[dict[str, Any]], output: Output) -> int:
    import numpy as np
    import torch

    from spacetorch.analyses.multistep import box_iou, cam_box, crop_boxes, find_box_file, read_voc_boxes
    from spacetorch.analyses.robustness import grad_cam
    from spacetorch.cli._arguments import device_of
    from spacetorch.plots import gradcam_figure, save_figure

    info = models[0]["info"]
    dataset = _dataset(prog, args, info)
    by_path = {str(Path(p).resolve()): i for i, (p, _) in enumerate(dataset.samples)}
    chosen = []
    for name in args.images:
        index = next((by_path[str(c.resolve())] for c in (Path(name), args.data / name) if str(c.resolve()) in by_path), None)
        if index is None:
            fail(prog, f"--images: {name} is not an image of --data {args.data}")
        chosen.append(index)
    if args.boxes is not None and not args.boxes.is_dir():
        fail(prog, f"--boxes {args.boxes} is not a directory")
    rows, figures = [], {}
    for index in chosen:
        path, label = dataset.samples[index]
        picture = dataset[index][0]
        image = picture[None].to(device_of(args))
        truth = None
        if args.boxes is not None:
            xml = find_box_file(args.boxes, Path(path))
            if xml is None:
                fail(prog, f"--boxes {args.boxes}: no {Path(path).stem}.xml")
            try:
                boxes, size = read_voc_boxes(xml)
            except ValueError as err:
                fail(prog, f"--boxes: {err}")
            truth = crop_boxes(boxes, size, info.input_size, info.input_size)
        maps = {}
        for entry in models:
            model = entry["model"]
            layer_name = args.layer or ("norm" if hasattr(model.model, "norm") else None)
            if layer_name is None:
                fail(prog, f"--layer is needed for {entry['arch']} (it has no module 'norm')")
            try:
                layer = model.model.get_submodule(layer_name)
            except AttributeError:
                fail(prog, f"--layer {layer_name}: {entry['arch']} has no such module")
            with torch.no_grad():
                predicted = int(model(image).argmax(1))
            cam = grad_cam(model, layer, image, targets=[label])[0]
            maps[entry["label"]] = cam
            row: dict[str, Any] = {"image": str(Path(path).relative_to(args.data)), "model": entry["label"], "class": dataset.classes[label],
                                   "predicted": dataset.classes[predicted]}  # fmt: skip
            if truth is not None:
                box = cam_box(cam)
                inside = np.zeros_like(cam, dtype=bool)
                for x0, y0, x1, y1 in truth:
                    inside[int(max(y0, 0)) : int(np.ceil(y1)), int(max(x0, 0)) : int(np.ceil(x1))] = True
                row["iou"] = max(box_iou(box, t) for t in truth)
                row["cam_mass_in_boxes"] = float(cam[inside].sum() / max(cam.sum(), 1e-12))
            rows.append(row)
        figures[f"{Path(path).parent.name}_{Path(path).stem}.png"] = gradcam_figure(
            picture.numpy(), maps, title=f"{Path(path).name} ({dataset.classes[label]})", boxes=truth
        )
    for name, fig in figures.items():
        save_figure(fig, output.path(f"gradcam/{name}"))
    _write_csv(output, "gradcam.csv", rows)
    if args.boxes is not None:
        for entry in models:
            mine = [r for r in rows if r["model"] == entry["label"]]
            hits = sum(r["iou"] >= 0.5 for r in mine)
            print(f"{entry['label']}: mean IoU {np.mean([r['iou'] for r in mine]):.3f}, IoU >= 0.5 on {hits}/{len(mine)}, "
                  f"CAM mass in the boxes {np.mean([r['cam_mass_in_boxes'] for r in mine]):.3f}")  # fmt: skip
    print(f"wrote {len(figures)} figure(s) in {args.out / 'gradcam'} and {args.out / 'gradcam.csv'}")
    return 0


def _write_csv(output: Output, name: str, rows: list[dict[str, Any]]) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    output.write_text(name, table.getvalue())
