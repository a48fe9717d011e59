"""Write a model's layer responses to a stimulus set, with the units' positions, to one file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from spacetorch._files import Output
from spacetorch.cli._arguments import (
    HelpFormatter,
    add_checkpoint_arguments,
    add_grating_arguments,
    command,
    device_of,
    examples,
    fail,
    gratings_of,
    open_output,
    program,
    unreadable_images_fail,
    workers,
)
from spacetorch.cli._signals import exit_on_interrupt


def _features_file(text: str) -> Path:
    path = Path(text)
    if path.suffix not in (".h5", ".npz"):
        raise argparse.ArgumentTypeError(f"expected a .h5 or .npz file, got {text!r}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write")
    from spacetorch._files import check_writable_folder

    try:
        check_writable_folder(path.parent, text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program("spacetorch features"),
        description=(
            "Run a checkpoint over the standard sine gratings or an image folder (one sub-folder per "
            "category) and write every chosen layer's responses, the units' positions and the stimuli's "
            "labels and parameters to one HDF5 (.h5) or NumPy (.npz) file, which the analyses read. The "
            "file is built batch by batch in OUT.partial.h5: after Ctrl-C the same command goes on from "
            "there, and OUT appears only when it is complete."
        ),
        epilog=examples(
            "spacetorch features --checkpoint model_final_checkpoint_phase199.torch --positions positions/resnet18 \\",
            "    --gratings --out features/gratings.h5",
            "spacetorch features --checkpoint model_final_checkpoint_phase199.torch --positions positions/resnet18 \\",
            "    --images /data/floc --layers layer4.1 --out features/floc.npz",
        ),
        formatter_class=HelpFormatter,
    )
    add_checkpoint_arguments(
        parser, checkpoint_help="VISSL checkpoint (.torch)", positions_help="the positions directory the model was trained with"
    )
    stimuli = parser.add_mutually_exclusive_group(required=True)
    stimuli.add_argument("--gratings", action="store_true", help="the standard sine gratings (labels: orientation)")
    stimuli.add_argument("--images", type=Path, help="image folder, IMAGES/<category>/<image> (labels: category)")
    parser.add_argument("--layers", nargs="+", default=None, help="layers to write [default: every layer with positions]")
    parser.add_argument("--out", type=_features_file, required=True, help="the file to write (.h5 or .npz)")
    add_grating_arguments(parser)
    parser.add_argument("--workers", type=workers, default=0, help="data-loading processes for --images")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it is a features file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    open_output(prog, Output(args.out, file=True, inputs={"--positions": args.positions, "--images": args.images}))
    if args.images is not None and not args.images.is_dir():
        fail(prog, f"--images {args.images} is not a directory")
    if args.out.exists():
        from spacetorch.features import Features, FeaturesError

        if not args.overwrite:
            fail(prog, f"--out {args.out} exists; choose another file or pass --overwrite")
        try:
            Features.load(args.out)
        except FeaturesError:
            fail(prog, f"--out {args.out} is not a features file spacetorch wrote; it is left as it is")
    with exit_on_interrupt(prog, f"the stimuli done so far are in {args.out}.partial.h5; the same command goes on from there"), \
            unreadable_images_fail(prog):  # fmt: skip
        return _write(prog, args)


def _write(prog: str, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from spacetorch.features import FeaturesError, write_features
    from spacetorch.models.checkpoints import CheckpointError
    from spacetorch.models.positions import PositionsError
    from spacetorch.models.topographic import TopographicModel

    try:
        model = TopographicModel.from_checkpoint(args.checkpoint, args.positions, args.arch, trusted=args.trust_checkpoint)
    except (CheckpointError, PositionsError, FileNotFoundError, ValueError) as err:
        fail(prog, str(err))
    layers = args.layers or model.layers
    unknown = [name for name in layers if name not in model.layers]
    if unknown:
        fail(prog, f"--layers: {unknown} have no positions in {args.positions}; it has {model.layers}")
    info: dict[str, Any] = {"arch": args.arch, "checkpoint": str(args.checkpoint), "positions": str(args.positions), "image_size": args.image_size}
    stimuli, labels, names, parameters = _gratings(prog, args) if args.gratings else _images(prog, args)
    info["stimuli"] = "sine gratings" if args.gratings else str(args.images)
    _check_space(prog, args, model, layers, len(stimuli))
    bar = tqdm(total=len(stimuli), desc="stimuli", unit="img", disable=args.quiet)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    try:
        out = write_features(
            model, stimuli, args.out, layers, labels=labels, label_names=names, stimulus=parameters, info=info,
            batch_size=args.batch_size, workers=args.workers if args.images is not None else 0,
            device=device_of(args), progress=progress,
        )
    except (FeaturesError, PositionsError) as err:
        fail(prog, str(err))
    finally:
        bar.close()
    print(f"wrote {out}: {len(layers)} layer(s) x {len(stimuli)} stimuli")
    return 0


def _check_space(prog: str, args: argparse.Namespace, model: Any, layers: list[str], count: int) -> None:
    """The responses are float32 and uncompressed: their size is known before the first image.
    An ``.npz`` is built from the partial ``.h5``, so both are on disk at the end."""
    from spacetorch._files import check_free_space
    from spacetorch.features import partial_path

    units = sum(model.positions[name].num_units for name in layers)
    needed = count * units * 4 * (2 if args.out.suffix == ".npz" else 1)
    partial = partial_path(args.out)
    needed -= partial.stat().st_size if partial.is_file() else 0  # what an interrupted run wrote already
    try:
        check_free_space(args.out, needed, f"{count:,} stimuli x {units:,} units of float32 responses")
    except ValueError as err:
        fail(prog, f"--out {err}")


def _gratings(prog: str, args: argparse.Namespace) -> tuple[Any, Any, list[str], dict[str, Any]]:
    """The gratings, labelled by orientation, with every grating's parameters."""
    import numpy as np

    try:
        gratings = gratings_of(args)
    except ValueError as err:
        fail(prog, str(err))
    orientations = np.unique(gratings.orientation)
    parameters = {"orientation": gratings.orientation, "spatial_frequency": gratings.spatial_frequency,
                  "phase": gratings.phase, "color": gratings.color}  # fmt: skip
    return gratings, np.searchsorted(orientations, gratings.orientation), [f"{o:g} deg" for o in orientations], parameters


def _images(prog: str, args: argparse.Namespace) -> tuple[Any, Any, list[str], dict[str, Any]]:
    """The images of ``--images``, labelled by category, with each image's path."""
    import numpy as np

    from spacetorch.stimuli import ImageFolderStimuli

    try:
        images = ImageFolderStimuli(args.images, size=args.image_size)
    except (FileNotFoundError, ValueError) as err:
        fail(prog, f"--images: {err}")
    paths = np.array([str(Path(p).relative_to(args.images)) for p in images.paths])
    return images, images.labels, images.categories, {"path": paths}
