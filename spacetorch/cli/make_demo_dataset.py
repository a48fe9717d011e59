"""Write the demo image set: random crops of the photographs shipped with scikit-image."""

from __future__ import annotations

import argparse
from pathlib import Path

from spacetorch._files import Output
from spacetorch.cli._arguments import (
    HelpFormatter,
    bounded,
    command,
    examples,
    fail,
    open_output,
    output_folder,
    pixels,
    processes,
    program,
    seed_value,
)
from spacetorch.cli._signals import exit_on_interrupt
from spacetorch.data import DEMO_PHOTOS, make_dead_leaves_folder, make_demo_image_folder

DEFAULT_OUT = Path("data/demo_images")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch demo-data"),
        description=(
            "Make a small natural-image set without downloading anything, as an ImageFolder / VISSL "
            "disk_folder (OUT/train/<class>/*, OUT/val/<class>/*). --source photos: random square crops "
            f"of the {len(DEMO_PHOTOS)} photographs bundled with scikit-image, one class per photograph "
            "(used by the CPU demo config, dataset tdann_demo_folder in configs/config/dataset_catalog.json); "
            "with --whole, every training image is a whole photograph instead, so that the training transform's "
            "random resized crops draw new views each epoch (the SimCLR map demo, dataset tdann_demo_photos). "
            "--source dead-leaves: procedural dead-leaves images (occluding shapes with power-law sizes, "
            "oriented textures, a 1/f^2 power spectrum), one class."
        ),
        epilog=examples(
            'spacetorch demo-data                                   # data/demo_images, 12 photograph classes',
            'spacetorch demo-data --whole --n-val 240 --out data/demo_photos   # whole photographs, 240 crops to test on',
            'spacetorch demo-data --source dead-leaves --n-train 2048 --workers 8 --out data/dead_leaves',
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=output_folder, default=DEFAULT_OUT, help="output folder (must not exist)")
    parser.add_argument("--source", choices=("photos", "dead-leaves"), default="photos", help="what the images are")
    parser.add_argument("--n-train", type=bounded(1, 10**7, "images"), default=384, help="training images")
    parser.add_argument("--n-val", type=bounded(0, 10**7, "images"), default=48, help="validation images")
    parser.add_argument("--whole", action="store_true", help="--source photos: training images are the whole photographs "
                        "(shorter side --size), taken in turn; the validation images stay random crops")
    parser.add_argument("--size", type=pixels, default=256, help="image side, px")
    parser.add_argument("--seed", type=seed_value, default=0, help="random seed")
    parser.add_argument("--workers", type=processes, default=1, help="processes drawing dead-leaves images (about 0.1 s each at 256 px)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.whole and args.source != "photos":
        fail(parser.prog, "--whole is for --source photos: dead-leaves images are drawn whole already")
    open_output(parser.prog, Output(args.out))  # locked: a second command on it is refused
    if args.out.exists():
        fail(parser.prog, f"--out {args.out} exists; delete it or choose another --out")
    from tqdm.auto import tqdm

    total = args.n_train + args.n_val
    with (
        exit_on_interrupt(parser.prog, f"nothing was written ({args.out} does not exist)"),
        tqdm(total=total, desc="demo images", unit="img", disable=args.quiet) as bar,
    ):
        try:
            progress = lambda n: bar.update(n - bar.n)  # noqa: E731
            if args.source == "photos":
                make_demo_image_folder(args.out, args.n_train, args.n_val, args.size, args.seed, progress=progress,
                                       whole=args.whole)
            else:
                make_dead_leaves_folder(args.out, args.n_train, args.n_val, args.size, args.seed, progress, args.workers)
        except ValueError as err:
            fail(parser.prog, str(err))
    print(f"wrote {total} images to {args.out}")
    return 0
