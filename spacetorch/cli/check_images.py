"""List (and optionally set aside) the images of a folder that cannot be decoded."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spacetorch._files import Output, move_file
from spacetorch.cli._arguments import HelpFormatter, command, examples, fail, open_output, processes, program
from spacetorch.cli._signals import exit_on_interrupt
from spacetorch.data.image_check import find_unreadable_images


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch check-images"),
        description=(
            "Decode every image under ROOT (e.g. an ImageFolder such as data/imagenet/train) as "
            "training does, and print each one that fails with the reason. Exit status 1 when "
            "some failed, 0 when all are readable."
        ),
        epilog=examples(
            'spacetorch check-images data/imagenet/train',
            'spacetorch check-images data/imagenet/train --move-to data/unreadable --workers 8',
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("root", type=Path, help="folder to check (searched recursively)")
    parser.add_argument(
        "--move-to", type=Path, default=None, metavar="DIR",
        help="move each unreadable image to DIR, keeping its path relative to ROOT",
    )
    parser.add_argument("--workers", type=processes, default=None, help="decoding processes [default: the CPU count]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        fail(parser.prog, f"ROOT {args.root} is not a directory")
    if args.move_to is not None:  # a folder inside ROOT would be scanned again by the next check
        open_output(parser.prog, Output(args.move_to, "--move-to", inputs={"ROOT": args.root}))
        if args.move_to.exists() and not args.move_to.is_dir():
            fail(parser.prog, f"--move-to {args.move_to} is a file; name a folder to move the unreadable images into")
    from tqdm.auto import tqdm

    total = 0

    def update(done: int, found: int) -> None:
        nonlocal total
        total = bar.total = found
        bar.update(done - bar.n)

    with (
        exit_on_interrupt(parser.prog, "stopped before every image was checked"),
        tqdm(desc="images", unit="img", disable=args.quiet) as bar,
    ):
        bad = find_unreadable_images(args.root, workers=args.workers, progress=update)
    if total == 0:
        fail(parser.prog, f"ROOT {args.root} holds no image files (.jpg, .png, ...) to check")
    if args.move_to is not None:  # every place is checked before the first image moves
        taken = [args.move_to / path.relative_to(args.root) for path, _ in bad
                 if (args.move_to / path.relative_to(args.root)).exists()]
        if taken:
            for path, problem in bad:
                print(f"{path}: {problem}")
            fail(parser.prog, f"--move-to {args.move_to}: {len(taken)} place(s) are taken already, e.g. {taken[0]}; "
                              "nothing was moved (choose another --move-to)")
    for path, problem in bad:
        print(f"{path}: {problem}")
        if args.move_to is not None:
            move_file(path, args.root, args.move_to)
    moved = f"; moved to {args.move_to}" if args.move_to is not None and bad else ""
    print(f"{len(bad)} of {total} images under {args.root} cannot be read{moved}", file=sys.stderr)
    return 1 if bad else 0
