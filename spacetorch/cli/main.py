"""The ``spacetorch`` command (also ``python -m spacetorch``): one subcommand per task.

Each subcommand is the same program as the script of the same job (``spacetorch swapopt`` is
``python scripts/swapopt.py``, ``spacetorch train`` is ``python train.py``), with the same
options; its messages name it ``spacetorch <subcommand>``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import NamedTuple

from spacetorch import __version__
from spacetorch._files import release_locks
from spacetorch.cli import _arguments

__all__ = ["COMMANDS", "main"]


class Command(NamedTuple):
    module: str
    summary: str
    script: str
    aliases: tuple[str, ...] = ()


#: subcommand -> what runs it; ``aliases`` are earlier names that keep working
COMMANDS: dict[str, Command] = {
    "train": Command("train", "train a topographic network with VISSL (config=NAME [config.KEY=VALUE ...] [--gpus 0,1])", "train.py"),
    "positions": Command("save_retinotopic_positions", "write a model's retinotopic position set (LayerPositions per layer)",
                         "scripts/save_retinotopic_positions.py", ("save-positions",)),
    "swapopt": Command("swapopt", "swap-optimise a position set against a trained model's responses", "scripts/swapopt.py"),
    "v1-figure": Command("v1_figure", "orientation map, smoothness and pinwheels of a layer (PNG)", "scripts/v1_figure.py"),
    "features": Command("features", "write a checkpoint's layer responses to gratings or images, with positions (.h5 / .npz)",
                        "scripts/features.py"),
    "paper-panels": Command("paper_panels", "the paper's panels for a checkpoint: V1 map and tuning, category maps, wiring, dimensionality",
                            "scripts/paper_panels.py"),
    "training-curves": Command("training_curves", "task and per-layer spatial loss over training of run folders, overlaid (PNG)",
                               "scripts/training_curves.py"),
    "som": Command("som", "the paper's self-organising map baselines (V1, VTC), drawn as a network's maps", "scripts/som.py"),
    "compare-alpha": Command("compare_alpha", "train alpha = 0 and alpha > 0 over seeds and compare their maps",
                             "scripts/compare_alpha.py"),
    "compare-methods": Command("compare_methods", "train several topography methods (TDANN, TopoLoss, lateral, local) the same way and compare their maps",
                               "scripts/compare_methods.py"),
    "demo-data": Command("make_demo_dataset", "write the demo image set (photographs or dead leaves), no download",
                         "scripts/make_demo_dataset.py"),
    "convert-data": Command("convert_data", "a dataset in another layout (Tiny-ImageNet val, MNIST, Fashion-MNIST, CIFAR-10) as an ImageFolder",
                            "scripts/convert_data.py"),
    "check-images": Command("check_images", "find the images of a folder that cannot be decoded (and move them aside)",
                            "scripts/check_images.py"),
    "corruptions": Command("corruptions", "make ImageNet-C style corrupted sets, evaluate a classifier on them",
                           "scripts/corruptions.py"),
    "evaluate-tdam": Command("evaluate_td", "evaluate a top-down attention (TDAM) classifier: accuracy, CAMs, boxes",
                             "scripts/evaluate_td.py", ("evaluate-td",)),
    "evaluate-coarse-to-fine": Command("evaluate_topdown", "evaluate coarse-to-fine Top-Down Networks: accuracy, attacks, Grad-CAM",
                                       "scripts/evaluate_topdown.py", ("evaluate-topdown",)),
}

_ALIASES = {alias: name for name, command in COMMANDS.items() for alias in command.aliases}


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
    lines += ["", "earlier names that still work: " + ", ".join(f"{a} ({n})" for a, n in _ALIASES.items())]
    return "\n".join(lines)


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
    name = _ALIASES.get(argv[0], argv[0])
    if name not in COMMANDS:
        print(_usage(), file=sys.stderr)
        _arguments.fail("spacetorch", f"unknown command {argv[0]!r}; the commands are {', '.join(COMMANDS)}")
    if name == "train":
        # as its own main module, which the ranks and data-loader workers it spawns re-import
        # (a package's __main__ they do not), so that they get VISSL's registrations and fixes
        command = [sys.executable, "-m", "spacetorch.cli.train", *argv[1:]]
        os.execve(sys.executable, command, {**os.environ, _arguments.PROGRAM_VARIABLE: "spacetorch train"})
    module = importlib.import_module(f"spacetorch.cli.{COMMANDS[name].module}")
    _arguments._invoked_as = f"spacetorch {name}"
    try:
        return int(module.main(argv[1:]) or 0)
    except BrokenPipeError:  # its output went to a reader that stopped (| head): not an error of the command
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that the exit's flush is quiet
        return 128 + 13
    finally:
        _arguments._invoked_as = None
        release_locks()  # the outputs this command locked (also released at exit when a command runs on its own)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
