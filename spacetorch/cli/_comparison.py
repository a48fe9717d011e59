"""What ``compare-alpha`` and ``compare-methods`` share: their options, the checks of the
config they train, their runs (:class:`spacetorch.vissl.experiments.Run`, one folder each,
reused when its arguments match) and the results files they write."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from spacetorch.cli._arguments import (
    add_border_argument,
    add_grating_arguments,
    bounded,
    fail,
    gratings_of,
    open_output,
    output_folder,
    seed_value,
    settings_of,
)

if TYPE_CHECKING:
    from spacetorch._files import Output
    from spacetorch.methods import Training
    from spacetorch.vissl.experiments import Run

K = TypeVar("K")

#: the results a comparison writes into its ``--out``
RESULTS = ["results.json", "results.csv", "comparison.png"]
#: what a comparison writes into ``--out``: its results, and a folder per training run
ENTRIES = [*RESULTS, "runs"]


def add_run_arguments(parser: argparse.ArgumentParser, *, out: Path, positions: str, init: str) -> None:
    """``--seeds``, ``--out`` (default ``out``), ``--override``, ``--positions``, ``--init`` and
    ``--gpus``: the runs a comparison trains (``positions`` and ``init`` say what those two mean
    to it)."""
    parser.add_argument("--seeds", type=seed_value, nargs="+", default=[0, 1], help="config.SEED_VALUE of each run")
    parser.add_argument("--out", type=output_folder, default=out, help="results and runs folder")
    parser.add_argument("--override", action="append", default=[], metavar="config.KEY=VALUE",
                        help="passed to every train.py run (repeatable)")
    parser.add_argument("--positions", type=Path, default=None, metavar="DIR",
                        help=f"{positions} [default: the config's TRUNK_PARAMS.position_dir]")
    parser.add_argument("--init", type=Path, default=None, metavar="CHECKPOINT",
                        help=f"start every run from this VISSL checkpoint {init} instead of random weights [default: random "
                        "weights, seeded]")
    parser.add_argument("--gpus", default=None, help="passed to train.py")


def add_measure_arguments(parser: argparse.ArgumentParser) -> None:
    """``--layer``, the gratings, the border policy, ``--neighborhoods`` and the category maps
    (``--categories``, ``--category-layer``): what every run is measured on."""
    parser.add_argument("--layer", default="layer2.0", help="the layer whose orientation map is measured")
    add_grating_arguments(parser, image_size=None)
    add_border_argument(parser)
    parser.add_argument("--neighborhoods", type=bounded(1, 1_000_000, "neighborhoods"), default=2000,
                        help="neighborhoods per layer for the post-hoc spatial loss")
    parser.add_argument("--categories", type=Path, default=None, metavar="DIR",
                        help="also the category maps of --category-layer on this image folder (one sub-folder per category)")
    parser.add_argument("--category-layer", default=None,
                        help="the layer whose category maps are measured [default: the last layer with positions]")


def category_setting(args: argparse.Namespace, position_dir: str, image_size: int) -> tuple[Any, str] | None:
    """``(ImageFolderStimuli of --categories, the category layer)``, checked, or None without
    ``--categories``.

    Raises:
        ValueError: --categories is no image folder of at least 2 categories of at least 2
            images each, or --category-layer has no positions in ``position_dir``.
    """
    if args.categories is None:
        return None
    from spacetorch.models.positions import NetworkPositions
    from spacetorch.stimuli import ImageFolderStimuli

    if not args.categories.is_dir():
        raise ValueError(f"--categories: {args.categories} is not a folder")
    layers = list(NetworkPositions.load_from_dir(position_dir).layer_positions)
    layer = args.category_layer or layers[-1]
    if layer not in layers:
        raise ValueError(f"--category-layer {layer}: no positions in {position_dir}; layers: {layers}")
    stimuli = ImageFolderStimuli(args.categories, size=image_size)
    counts = [int((stimuli.labels == k).sum()) for k in range(len(stimuli.categories))]
    if len(counts) < 2 or min(counts) < 2:
        raise ValueError(f"--categories {args.categories}: category maps need at least 2 categories of at least 2 images "
                         f"each; it has {dict(zip(stimuli.categories, counts, strict=True))}")
    return stimuli, layer


def overrides(args: argparse.Namespace) -> list[str]:
    """``--override`` values, with ``--positions`` and ``--init`` as the config keys they set."""
    extra = list(args.override)
    if args.positions is not None:
        extra.append(f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={args.positions.resolve()}")
    if args.init is not None:
        extra += [f"config.MODEL.WEIGHTS_INIT.PARAMS_FILE={args.init.resolve()}",
                  "config.MODEL.WEIGHTS_INIT.STATE_DICT_KEY_NAME=classy_state_dict"]
    return extra


def composed(args: argparse.Namespace) -> Any:
    """``--config`` composed with :func:`overrides`."""
    from spacetorch.vissl.config import compose

    return compose([f"config={args.config}", *overrides(args)])


def setting(cfg: Any) -> tuple[str, str]:
    """The registered model a composed config trains and the position set of its runs."""
    from spacetorch.vissl.config import trunk_model_name

    return trunk_model_name(cfg), str(cfg.MODEL.TRUNK.TRUNK_PARAMS.position_dir)


def input_size(arch: str) -> int:
    from spacetorch.models import model_info

    return model_info(arch).input_size


def check_setting(args: argparse.Namespace, alpha_layers: Sequence[str] | None = None) -> None:
    """The config, its positions, ``--init``, ``--layer``, the gratings and the border policy,
    before any training: a wrong one raises ValueError / OSError naming it now, not after an hour
    of runs.  With ``alpha_layers``, those layers must be the config's ``layer_weights`` keys."""
    import torch

    from spacetorch.maps import kept_units
    from spacetorch.models import create_model
    from spacetorch.models.positions import NetworkPositions, PositionsError
    from spacetorch.models.topographic import TopographicModel
    from spacetorch.vissl.config import set_alpha

    if args.init is not None and not args.init.is_file():
        raise FileNotFoundError(f"--init {args.init}: no such checkpoint file")
    if args.positions is not None and not args.positions.is_dir():
        raise FileNotFoundError(f"--positions {args.positions}: no such position set (a directory)")
    cfg = composed(args)
    if alpha_layers is not None:
        set_alpha(cfg, 1.0, list(alpha_layers))
    arch, position_dir = setting(cfg)
    positions = NetworkPositions.load_from_dir(position_dir)
    if args.layer not in positions.layer_positions:
        raise ValueError(f"--layer {args.layer}: no positions in {position_dir}; layers: {list(positions.layer_positions)}")
    gratings = gratings_of(args, input_size(arch))
    layer = NetworkPositions({args.layer: positions[args.layer]}, version=positions.version)
    model = TopographicModel(create_model(arch, headless=True), layer)
    try:
        model(torch.zeros(1, 3, gratings.size, gratings.size), [args.layer])
    except PositionsError as err:
        raise ValueError(f"{err} (is --image-size {gratings.size} the size {position_dir} was made for?)") from None
    kept_units(model, args.layer, gratings.size, args.exclude_border)
    try:
        category_setting(args, position_dir, gratings.size)
    except FileNotFoundError as err:
        raise ValueError(f"--categories: {err}") from None


def run_of(args: argparse.Namespace, folder: Path, seed: int, training: Training) -> Run:
    """The comparison's run of ``training`` with ``seed`` in ``folder``: ``--config`` with
    :func:`overrides` and ``--gpus``."""
    from spacetorch.vissl.experiments import Run

    return Run(args.config, seed, folder, training, tuple(overrides(args)), args.gpus)


def check_training(prog: str, run: Run, what: str) -> None:
    """train.py's own checks of ``run`` (its data, positions, losses, trunk, checkpoint folder...),
    made before any run trains: a wrong setting stops the command now, named, with exit 2."""
    from spacetorch.vissl.config import ConfigError
    from spacetorch.vissl.experiments import RunError

    try:
        run.trained()  # a folder holding another run is refused now too
        run.prepare()
    except (ConfigError, RunError) as err:
        fail(f"{prog} ({what})", str(err))


def train_runs(prog: str, runs: Mapping[K, Run], what: Callable[[K], str], quiet: bool) -> dict[K, Path] | None:
    """Train each run in turn (or reuse it when its folder holds it, finished); the final
    checkpoints, or None when one failed (its log's tail printed)."""
    from tqdm.auto import tqdm

    from spacetorch.vissl.experiments import LOG, RunError

    finals: dict[K, Path] = {}
    for key, run in tqdm(runs.items(), desc="training", unit="run", disable=quiet):
        try:
            final, code = run.train()
        except RunError as err:
            fail(prog, str(err))
        if final is None:
            tail = (run.folder / LOG).read_text()[-2000:]
            print(f"{prog}: error: train.py failed for {what(key)} (exit {code}); its output is in {run.folder / LOG}:\n{tail}",
                  file=sys.stderr)  # fmt: skip
            return None
        finals[key] = final
    return finals


def write_results(output: Output, record: dict[str, Any], fields: list[str], figure: Callable[[], Any]) -> None:
    """``results.json`` (``record``, whose ``runs`` are rows with an ``sl`` mapping of layer to
    spatial loss), ``results.csv`` (the rows' ``fields``, then ``sl_<layer>`` per layer) and
    ``comparison.png`` (``figure()``) in the comparison's output, each written whole."""
    from spacetorch.plots import save_figure

    rows = record["runs"]
    layers = list(dict.fromkeys(name for row in rows for name in row["sl"]))
    table = io.StringIO()
    writer = csv.DictWriter(table, [*fields, *(f"sl_{name}" for name in layers)], extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **{f"sl_{name}": value for name, value in row["sl"].items()}})
    text = json.dumps(record, indent=1, default=float)
    save_figure(figure(), output.path("comparison.png"))
    output.write_text("results.csv", table.getvalue())
    output.write_text("results.json", text)


def open_comparison(prog: str, args: argparse.Namespace, inputs: dict[str, Path | None]) -> Output:
    """The comparison's ``--out``, opened before any work (:func:`~spacetorch.cli._arguments.open_output`)
    for its results and run folders, with what an earlier version left there noted first."""
    from spacetorch._files import Output

    note_earlier_results(args.out)
    return open_output(prog, Output(args.out, inputs=inputs, entries=ENTRIES, settings=settings_of(prog, args)))


def note_earlier_results(out: Path) -> None:
    """Results and runs that earlier versions wrote into ``out`` before they kept a record (a
    ``results.json`` with a comparison's ``layer`` and ``runs``; a ``runs`` folder whose every run
    has its ``command.json``) are noted as spacetorch's, so that the same command goes on there."""
    from spacetorch._files import RESULTS_RECORD, record_results

    if not out.is_dir() or (out / RESULTS_RECORD).exists():
        return
    earlier = []
    with contextlib.suppress(ValueError, OSError, TypeError):
        record = json.loads((out / "results.json").read_text())
        if isinstance(record, dict) and {"layer", "runs"} <= record.keys():
            earlier += [name for name in RESULTS if (out / name).is_file()]
    runs = out / "runs"
    if runs.is_dir() and not runs.is_symlink() and all((run / "command.json").is_file() for run in runs.iterdir()):
        earlier.append("runs")
    if earlier:
        record_results(out, earlier)
