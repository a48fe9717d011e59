"""The ``spacetorch`` command (also ``python -m spacetorch``): one subcommand per job.

It is the one door to every job.  Two more names stay for users of the original TDANN code:
``python train.py ...`` (``spacetorch train``) and ``python scripts/save_retinotopic_positions.py``
(``spacetorch positions``), the same programs with the same options.
"""

from __future__ import annotations

import difflib
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from spacetorch import __version__
from spacetorch.cli import _arguments
from spacetorch.cli._signals import Interrupted, interrupts_as_exceptions

__all__ = ["COMMANDS", "RENAMED", "main", "run"]


class Command(NamedTuple):
    module: str
    summary: str


#: subcommand -> the module under ``spacetorch.cli`` that runs it (its ``main(argv)``) and what it does
COMMANDS: dict[str, Command] = {
    "train": Command("train", "train a topographic network with VISSL (config=NAME [config.KEY=VALUE ...] [--gpus 0,1])"),
    "positions": Command("save_retinotopic_positions", "write a model's retinotopic position set (LayerPositions per layer)"),
    "swapopt": Command("swapopt", "swap-optimise a position set against a trained model's responses"),
    "v1-figure": Command("v1_figure", "orientation map, smoothness and pinwheels of a layer (PNG)"),
    "compare-alpha": Command("compare_alpha", "train alpha = 0 and alpha > 0 over seeds and compare their maps"),
    "compare-methods": Command("compare_methods", "train several topography methods (TDANN, TopoLoss, lateral, local) the same way and compare their maps"),
    "features": Command("features", "write a checkpoint's layer responses to gratings or images, with positions (.h5 / .npz)"),
    "paper-panels": Command("paper_panels", "the paper's panels for a checkpoint: V1 map and tuning, category maps, wiring, dimensionality"),
    "som": Command("som", "the paper's self-organising map baselines (V1, VTC), drawn as a network's maps"),
    "training-curves": Command("training_curves", "task and per-layer spatial loss over training of run folders, overlaid (PNG)"),
    "demo-data": Command("make_demo_dataset", "write the demo image set (photographs or dead leaves), no download"),
    "convert-data": Command("convert_data", "a dataset in another layout (Tiny-ImageNet val, MNIST, Fashion-MNIST, CIFAR-10) as an ImageFolder"),
    "check-images": Command("check_images", "find the images of a folder that cannot be decoded (and move them aside)"),
    "corruptions": Command("corruptions", "make ImageNet-C style corrupted sets, evaluate a classifier on them"),
    "evaluate-tdam": Command("evaluate_td", "evaluate a top-down attention (TDAM) classifier: accuracy, CAMs, boxes"),
    "evaluate-coarse-to-fine": Command("evaluate_topdown", "evaluate coarse-to-fine Top-Down Networks: accuracy, attacks, Grad-CAM"),
}

#: names of earlier versions -> the command that does that job now (named in the error, not run)
RENAMED = {"save-positions": "positions", "evaluate-td": "evaluate-tdam", "evaluate-topdown": "evaluate-coarse-to-fine"}

#: what the environment, not the command, makes fail: reported in one line, not as a traceback
_ENVIRONMENT_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file grew past the largest size this system allows",
    errno.ENAMETOOLONG: "the name is longer than the file system allows",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "the disk reported an input/output error",
    errno.EMFILE: "too many files are open",
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: spacetorch <command> [options]     (spacetorch <command> --help for its options and examples)",
        "",
        "Topographic deep neural networks (TDANN): positions, the spatial loss, VISSL training, maps.",
        "",
        "commands:",
    ]
    lines += [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def _unknown(name: str) -> str:
    if name in RENAMED:
        return f"{name!r} is now named {RENAMED[name]!r}: spacetorch {RENAMED[name]} --help"
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown command {name!r}; {hint}the commands are {', '.join(COMMANDS)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``spacetorch ARGV``; ``train`` replaces this process (``os.execve``) with
    ``python -m spacetorch.cli.train ARGV[1:]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        print(f"spacetorch {__version__}")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(_usage(), file=sys.stderr)
        _arguments.fail("spacetorch", _unknown(name))
    if name == "train":
        # as its own main module, which the ranks and data-loader workers it spawns re-import
        # (a package's __main__ they do not), so that they get VISSL's registrations and fixes
        command = [sys.executable, "-m", "spacetorch.cli.train", *argv[1:]]
        os.execve(sys.executable, command, {**os.environ, _arguments.PROGRAM_VARIABLE: "spacetorch train"})
    return run(name, argv[1:])


def run(name: str, argv: Sequence[str], prog: str | None = None) -> int:
    """Run the command ``name`` (not ``train``) on ``argv``, reporting itself as ``prog``
    (default ``spacetorch <name>``): its own errors are one line and exit 2, as are the
    environment's (a full disk, a name too long, no permission); Ctrl-C or SIGTERM before its
    work began (while the libraries load, say) is one line and exit 130 or 143.  Each command's ``main`` releases
    the output locks it took (:func:`spacetorch.cli._arguments.command`)."""
    prog = prog or f"spacetorch {name}"
    _arguments._invoked_as = prog
    try:
        with interrupts_as_exceptions():
            module = importlib.import_module(f"spacetorch.cli.{COMMANDS[name].module}")
            return int(module.main(list(argv)) or 0)
    except BrokenPipeError:  # its output went to a reader that stopped (| head): not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit's flush is quiet
        return 128 + 13
    except Interrupted as stop:  # before its work began (within it, the command says what was kept)
        print(f"{prog}: interrupted by {stop.name}", file=sys.stderr, flush=True)
        return stop.exit_code
    except OSError as err:
        if err.errno not in _ENVIRONMENT_ERRORS:
            raise
        outputs = ", ".join(map(str, getattr(err, "outputs", [])))  # noted by _arguments.command as it released them
        where = f"{err.filename}: " if err.filename else (f"writing {outputs}: " if outputs else "")
        _arguments.fail(prog, f"{where}{_ENVIRONMENT_ERRORS[err.errno]} ({err.strerror})")
    finally:
        _arguments._invoked_as = None


