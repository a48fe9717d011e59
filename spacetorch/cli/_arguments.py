"""What every command shares: its name (``program``), the one error style (``fail``), help with
examples, argument types that check values and paths before any work, and the options and
loading of the commands that read a checkpoint."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from torch import nn

    from spacetorch._files import Output
    from spacetorch.models import ModelInfo
    from spacetorch.stimuli import SineGratings

__all__ = [
    "HelpFormatter",
    "LOAD_ERRORS",
    "add_border_argument",
    "add_checkpoint_arguments",
    "add_classifier_arguments",
    "add_grating_arguments",
    "bounded",
    "classifier_of",
    "command",
    "device_of",
    "examples",
    "fail",
    "gratings_of",
    "image_count",
    "json_file",
    "layer_keys",
    "load_whole_classifier",
    "open_output",
    "output_folder",
    "panels_output",
    "per_batch",
    "pixels",
    "png_file",
    "positive",
    "processes",
    "program",
    "seed_value",
    "settings_of",
    "torch_device",
    "unreadable_images_fail",
    "workers",
]

#: what loading a classifier by name from a checkpoint raises for bad input (a message naming it)
LOAD_ERRORS: tuple[type[Exception], ...] = (FileNotFoundError, KeyError, TypeError, ValueError)


#: set by the ``spacetorch`` command to "spacetorch <subcommand>" before it runs one
_invoked_as: str | None = None

#: the same, for a subcommand it runs as a process of its own (``spacetorch train``)
PROGRAM_VARIABLE = "SPACETORCH_PROGRAM"


def program(name: str) -> str:
    """The name a command reports itself by: the one it was run by (``spacetorch swapopt``,
    ``save_retinotopic_positions.py``), else ``name`` (its ``main`` called from Python)."""
    return _invoked_as or os.environ.get(PROGRAM_VARIABLE) or name


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default shown once, where it says something (not for flags, not ``None``,
    not where the help already states it); text wrapped, except indented lines (examples),
    which are kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} [default: {_readable(action.default).replace('%', '%%')}]"

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith("  ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


def _readable(value: Any) -> str:
    """A default as one would type it: ``5.5 18.56``, not ``[np.float64(5.5), ...]``."""
    if isinstance(value, (list, tuple)):
        return " ".join(_readable(v) for v in value)
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):g}"
    return str(value)


def examples(*commands: str) -> str:
    """An epilog of example command lines (``spacetorch ...``; the scripts take the same options)."""
    return "examples:\n" + "\n".join(f"  {command}" for command in commands)


@contextlib.contextmanager
def unreadable_images_fail(prog: str) -> Iterator[None]:
    """A damaged image met while reading a folder (:func:`spacetorch.data.image_check.open_image`)
    ends the command with one line naming it, as any user error."""
    from spacetorch.data.image_check import UnreadableImageError, one_line

    try:
        yield
    except UnreadableImageError as err:
        fail(prog, one_line(err))


def open_output(prog: str, output: Output) -> Output:
    """Open ``output`` before any work (:meth:`spacetorch._files.Output.open`: apart from the
    inputs, replacing nothing of the user's, locked until the command ends); a refusal is one
    line naming it, exit 2."""
    from spacetorch._files import OutputError

    try:
        return output.open()
    except OutputError as err:
        fail(prog, str(err))


def settings_of(prog: str, args: argparse.Namespace) -> dict[str, Any]:
    """What an output records it was written with: the command and its arguments."""
    return {"command": prog, **{key: value for key, value in vars(args).items() if not callable(value)}}


def panels_output(
    out: Path, overwrite: bool, manifest: str, what: str, inputs: dict[str, Path | None] | None = None
) -> Output:
    """A folder of figures written whole (``--out``): replaced only with ``overwrite`` and only if
    it is a ``what`` spacetorch wrote (``manifest`` beside its PNGs and ``index.md``)."""
    from spacetorch._files import Output

    return Output(out, what=what, manifest=manifest, overwrite=overwrite, inputs=inputs,
                  ours=lambda name: name.endswith(".png") or name == "index.md")  # fmt: skip


def command(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """A command's ``main(argv)``: the output locks it took are released when it returns or
    raises (also when called from Python, not only through the ``spacetorch`` command)."""
    import functools

    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        from spacetorch._files import locked_outputs, release_locks

        try:
            return main(argv)
        except OSError as err:  # for the one-line report of spacetorch.cli.main.run: what was being written
            err.outputs = locked_outputs()  # type: ignore[attr-defined]
            raise
        finally:
            release_locks()

    return run


def fail(prog: str, message: str) -> NoReturn:
    """Print ``"<prog>: error: <message>"`` to stderr and exit 2, as argparse does for bad options."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_checkpoint_arguments(parser: argparse.ArgumentParser, *, checkpoint_help: str, positions_help: str) -> None:
    """``--checkpoint``, ``--positions``, ``--arch`` and ``--trust-checkpoint``."""
    parser.add_argument("--checkpoint", type=Path, required=True, help=checkpoint_help)
    parser.add_argument("--positions", type=Path, required=True, help=positions_help)
    parser.add_argument("--arch", default="resnet18", help="registered model the trunk was trained as (spacetorch.models.list_models())")
    parser.add_argument(
        "--trust-checkpoint", action="store_true",
        help="allow a checkpoint that needs full unpickling (runs code named in the file; trusted files only)",
    )


def add_classifier_arguments(parser: argparse.ArgumentParser, *, arch_default: str | None, arch_help: str) -> None:
    """``--checkpoint``, ``--arch``, ``--model-kwargs`` and ``--trust-checkpoint`` of a whole classifier."""
    parser.add_argument(
        "--checkpoint", type=Path, required=True,
        help="VISSL checkpoint with a linear head (supervised training, fine-tuning) or a plain state dict (.torch, .pth)",
    )
    parser.add_argument("--arch", default=arch_default, required=arch_default is None, help=arch_help)
    parser.add_argument(
        "--model-kwargs", default="{}", metavar="JSON",
        help='the model\'s settings it was trained with, e.g. \'{"time_steps": 2, "mdist": 1}\'',
    )
    parser.add_argument(
        "--trust-checkpoint", action="store_true",
        help="allow a checkpoint that needs full unpickling (runs code named in the file; trusted files only)",
    )


def classifier_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[nn.Module, ModelInfo, dict[str, Any], int]:
    """The classifier the options of :func:`add_classifier_arguments` name, in eval mode, with its
    registry entry, its keyword arguments and its number of classes; bad options exit 2 naming them."""
    try:
        kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError as err:
        fail(parser.prog, f"--model-kwargs: not JSON ({err}): {args.model_kwargs!r}")
    if not isinstance(kwargs, dict):
        fail(parser.prog, f"--model-kwargs: expected a JSON object of keyword arguments, got {args.model_kwargs!r}")
    try:
        model, info, classes = load_whole_classifier(args.checkpoint, args.arch, trusted=args.trust_checkpoint, model_kwargs=kwargs)
    except LOAD_ERRORS as err:
        fail(parser.prog, str(err))
    return model, info, kwargs, classes


def load_whole_classifier(
    path: Path, arch: str, *, trusted: bool, model_kwargs: dict[str, Any] | None = None
) -> tuple[nn.Module, ModelInfo, int]:
    """:func:`~spacetorch.models.checkpoints.load_classifier`, with the model's registry entry and its
    number of classes; raises one of :data:`LOAD_ERRORS`."""
    from spacetorch.models import model_info
    from spacetorch.models.checkpoints import load_classifier

    info = model_info(arch)
    model = load_classifier(path, arch, trusted=trusted, model_kwargs=model_kwargs)
    assert info.classifier is not None  # load_classifier refuses models without one
    return model, info, int(getattr(model.get_submodule(info.classifier), "out_features", 0))


def add_grating_arguments(parser: argparse.ArgumentParser, *, image_size: int | None = 224) -> None:
    """``--image-size``, ``--spatial-frequencies``, ``--batch-size`` and ``--device``."""
    from spacetorch.stimuli import SPATIAL_FREQUENCIES

    size_help = "grating side in px: the size the positions were made for"
    parser.add_argument(
        "--image-size", type=pixels, default=image_size,
        help=size_help if image_size is not None else f"{size_help} [default: the model's input size]",
    )
    parser.add_argument(
        "--spatial-frequencies", type=float, nargs="+", default=list(SPATIAL_FREQUENCIES),
        help="grating cycles per image (must stay below image-size / 2)",
    )
    parser.add_argument("--batch-size", type=per_batch, default=64, help="gratings per forward pass")
    parser.add_argument("--device", type=torch_device, default=None, help="torch device for the responses [default: cuda if available, else cpu]")


def gratings_of(args: argparse.Namespace, image_size: int | None = None) -> SineGratings:
    """The gratings the options ask for (``image_size`` when ``--image-size`` has no value)."""
    from spacetorch.stimuli import SineGratings

    size = args.image_size if args.image_size is not None else image_size
    if size is None:
        raise ValueError("--image-size is needed: no default image size is known here")
    return SineGratings(size, spatial_frequencies=args.spatial_frequencies)


def _count(text: str, minimum: int, maximum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not minimum <= value <= maximum:
        raise argparse.ArgumentTypeError(f"expected {minimum} to {maximum} {what}, got {value}")
    return value


#: the largest image side a command accepts, px (a 4096 px batch already needs gigabytes)
MAX_IMAGE_SIZE = 4096
#: seeds are what NumPy takes: 0 to 2**32 - 1
MAX_SEED = 2**32 - 1


def bounded(minimum: int, maximum: int, what: str, *, scientific: bool = False) -> Callable[[str], int]:
    """An argparse type for a whole number from ``minimum`` to ``maximum`` (the message names
    both and says what is counted); ``scientific`` also takes ``5e7``."""

    def parse(text: str) -> int:
        try:
            value = float(text) if scientific else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number{' like 1000000 or 5e7' if scientific else ''}, got {text!r}") from None
        if not math.isfinite(value) or value != int(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected {minimum} to {maximum:,} {what}, got {text}")
        return int(value)

    parse.__name__ = what.replace(" ", "_")
    return parse


def positive(what: str, unit: str = "") -> Callable[[str], float]:
    """An argparse type for a finite number > 0 (``what`` and ``unit`` name it in the message)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected {what} > 0{' ' + unit if unit else ''}, got {text}")
        return value

    parse.__name__ = what.replace(" ", "_")
    return parse


#: the argparse types of the sizes, seeds and counts the commands share
pixels = bounded(8, MAX_IMAGE_SIZE, "px")
seed_value = bounded(0, MAX_SEED, "(a seed)")
per_batch = bounded(1, 65_536, "images per batch")
image_count = bounded(1, 10**9, "images")


def workers(text: str) -> int:
    """``--workers`` of processes besides this one: 0 to the machine's CPU count."""
    return _count(text, 0, os.cpu_count() or 1, f"processes (this machine has {os.cpu_count() or 1} CPUs)")


def processes(text: str) -> int:
    """``--workers`` of a command that needs at least one process: 1 to the machine's CPU count."""
    return _count(text, 1, os.cpu_count() or 1, f"processes (this machine has {os.cpu_count() or 1} CPUs)")


def _writable_place(path: Path, folder: Path) -> None:
    from spacetorch._files import check_writable_folder

    try:
        check_writable_folder(folder, named=path)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def output_folder(text: str) -> Path:
    """An output folder's option: not an existing file, in a place that can be written."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} exists and is not a folder")
    _writable_place(path, path)
    return path


def _output_file(text: str, suffix: str, why: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != suffix:
        raise argparse.ArgumentTypeError(f"expected a {suffix} file ({why}), got {text!r}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; name the {suffix} file to write")
    _writable_place(path, path.parent)
    return path


def png_file(text: str) -> Path:
    """A figure's option: a ``.png`` path (figures are written as PNG), not a folder, in a place
    that can be written."""
    return _output_file(text, ".png", "figures are written as PNG")


def json_file(text: str) -> Path:
    """A JSON result's option: a ``.json`` path, not a folder, in a place that can be written."""
    return _output_file(text, ".json", "the values are written as JSON")


def torch_device(text: str) -> str:
    """``--device``: a torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda or cuda:1, got {text!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: this machine has no usable CUDA device; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text}: MPS is not available here; use cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text}: spacetorch runs on cpu, cuda or mps")
    return text


def device_of(args: argparse.Namespace) -> str:
    """``--device``, else ``cuda`` where there is one, else ``cpu``."""
    import torch

    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _border(text: str) -> int | str:
    from spacetorch.models.receptive_field import RECEPTIVE_FIELD

    if text == RECEPTIVE_FIELD:
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected {RECEPTIVE_FIELD!r} or a number of rows/columns >= 0, got {text!r}")
    return value


def add_border_argument(parser: argparse.ArgumentParser) -> None:
    """``--exclude-border {rf,N}``: which units of the map's layer are left out."""
    parser.add_argument(
        "--exclude-border", type=_border, default="rf", metavar="{rf,N}",
        help="leave out the units that see the zero padding around the image, which respond to the "
        "border itself: 'rf', those whose receptive field touches the image border (measured on the "
        "model); N, those in the N outermost feature-map rows and columns; 0 keeps every unit",
    )


def layer_keys(text: str) -> list[str]:
    """``--alpha-layers layer2_0,layer2_1`` -> ``["layer2_0", "layer2_1"]`` (spaces around keys ignored)."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise argparse.ArgumentTypeError(f"expected layer_weights keys separated by commas, e.g. layer2_0,layer2_1; got {text!r}")
    return keys
