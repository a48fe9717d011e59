"""Write a dataset held in another layout (Tiny-ImageNet val, MNIST, Fashion-MNIST, CIFAR-10) as an ImageFolder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spacetorch._files import Output
from spacetorch.cli._arguments import HelpFormatter, command, examples, fail, open_output, output_folder, program
from spacetorch.cli._signals import exit_on_interrupt


def build_parser() -> argparse.ArgumentParser:
    from spacetorch.data.convert import KINDS

    parser = argparse.ArgumentParser(
        prog=program("spacetorch convert-data"),
        description=(
            "Write a dataset held in another layout as the ImageFolder (OUT/<class>/<image>) the configs "
            "read: Tiny-ImageNet's validation split (val_annotations.txt), or torchvision's MNIST / "
            "Fashion-MNIST (IDX) and CIFAR-10 (Python batches) files as PNGs. Class folders sort in label "
            "order. OUT is built under a temporary name and appears when complete."
        ),
        epilog=examples(
            "spacetorch convert-data tiny-imagenet-val /data/tiny-imagenet-200 --out /data/tiny-imagenet-200/val_by_class --link",
            "spacetorch convert-data mnist /data/torchvision --split test --out data/mnist/test",
            "spacetorch convert-data cifar10 /data/torchvision --split train --out data/cifar10/train",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("kind", choices=list(KINDS), help="the source's layout")
    parser.add_argument("source", type=Path, help="its folder (torchvision's root, or the folder holding the files)")
    parser.add_argument("--out", type=output_folder, required=True, help="the ImageFolder to write (must not exist)")
    parser.add_argument("--split", choices=("train", "test"), default="train", help="MNIST, Fashion-MNIST, CIFAR-10: which split")
    parser.add_argument("--link", action="store_true", help="Tiny-ImageNet: hard-link the images instead of copying them")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    from tqdm.auto import tqdm

    from spacetorch.data.convert import ConversionError, convert

    parser = build_parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    open_output(prog, Output(args.out, inputs={"SOURCE": args.source}))
    if args.out.exists():
        fail(prog, f"--out {args.out} exists; choose another folder")
    bars: list[Any] = []  # shown once the source has passed its checks and the first images are written

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc="images", unit="img", disable=args.quiet))
        bars[0].update(done - bars[0].n)

    with exit_on_interrupt(prog, f"nothing was written ({args.out} does not exist)"):
        try:
            out = convert(args.kind, args.source, args.out, split=args.split, link=args.link, progress=progress)
        except (ConversionError, OSError) as err:
            fail(prog, str(err))
        finally:
            for bar in bars:
                bar.close()
    classes = sorted(p for p in out.iterdir() if p.is_dir())
    print(f"wrote {out}: {sum(1 for c in classes for _ in c.iterdir())} images in {len(classes)} class folders")
    return 0
