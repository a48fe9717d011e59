"""``python train.py config=<name> [config.KEY=value ...] [--gpus 0,1,2,3]``: train with VISSL.

The config is a YAML file in ``configs/config/`` composed over VISSL's defaults by Hydra;
``config.KEY=value`` arguments override it (``+config.KEY=value`` adds a key VISSL's
defaults lack).  The config is checked before any process starts.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __name__ in ("__main__", "__mp_main__"):
    # run as `python -m spacetorch.cli.train` (what `spacetorch train` runs), or re-imported by a
    # rank or data-loader worker it spawned: VISSL's registrations and fixes, as train.py does
    import spacetorch.vissl  # noqa: F401

from spacetorch._files import Output, remove_stale_temporaries
from spacetorch.cli._arguments import bounded, fail, layer_keys, open_output, program
from spacetorch.cli._signals import interrupts_as_exceptions

__all__ = ["main", "build_parser"]

EPILOG = """\
examples (spacetorch train takes the same arguments as python train.py):
  spacetorch train config=demo_cpu_supervised_spatial_resnet18        # CPU, a few minutes
  python train.py config=simclr_spatial_resnet18 --gpus 0,1,2,3
  python train.py config=simclr_spatial_resnet18 --gpus 1,3,5,7 --alpha 2.5 \\
      config.CHECKPOINT.DIR=checkpoints/simclr_spatial_resnet18_lw2.5
  python train.py config=simclr_spatial_resnet18 config.SEED_VALUE=1 \\
      config.DATA.TRAIN.DATA_PATHS=[/datasets/imagenet/train]
  python train.py config=demo_cpu_simclr_spatial_resnet18        # CPU, gloo
  python train.py config=eshednet_config --import my_trunks.py --gpus 0   # your own trunk

SLURM: python train.py config=simclr_spatial_resnet18 --slurm --nodes 2 --gpus-per-node 8 \\
      --partition gpu --time 4320    # checks the config here, submits one task per node (submitit)

multi-node by hand: on each of N nodes run the same command with --node-id 0..N-1 and
  config.DISTRIBUTED.NUM_NODES=N config.DISTRIBUTED.INIT_METHOD=tcp
  config.DISTRIBUTED.RUN_ID=<node 0 host>:<free port>

Without CUDA, a config asking for GPUs runs on the CPU with gloo (one process per
DISTRIBUTED.NUM_PROC_PER_NODE); an interrupted run resumes from its last checkpoint in
CHECKPOINT.DIR when started again (CHECKPOINT.AUTO_RESUME).
"""


def build_parser() -> argparse.ArgumentParser:
    from spacetorch.vissl.config import available_configs

    parser = argparse.ArgumentParser(
        prog=program("train.py"),
        description=(
            "Train a topographic network (TDANN) with VISSL. Shipped configs: "
            + ", ".join(available_configs())
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="config=NAME | config.KEY=VALUE",
        help="the config to train (config=NAME, a YAML file in configs/config/) and overrides of its keys",
    )
    parser.add_argument(
        "--gpus",
        help="comma-separated GPU indices to train on, one process each with NCCL (sets "
        "CUDA_VISIBLE_DEVICES and DISTRIBUTED.NUM_PROC_PER_NODE); default: the config's settings",
    )
    parser.add_argument(
        "--alpha", type=float, help="set the spatial loss weight of every layer (overrides layer_weights)"
    )
    parser.add_argument(
        "--alpha-layers", type=layer_keys, metavar="KEY,KEY...",
        help="with --alpha: only these layers (layer_weights keys, e.g. layer2_0,layer2_1) get alpha, the others 0",
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import a module or .py file that registers your own trunk (in every rank); repeatable",
    )
    parser.add_argument("--node-id", type=int, default=0, help="this node's index in a multi-node run (default 0)")
    slurm = parser.add_argument_group("SLURM (submitit): check the config here, then submit one task per node")
    slurm.add_argument("--slurm", action="store_true", help="submit the training as a SLURM job instead of running it here")
    slurm.add_argument("--nodes", type=bounded(1, 1024, "nodes"), default=1, help="nodes of the job")
    slurm.add_argument("--gpus-per-node", type=bounded(0, 64, "GPUs"), default=8, help="GPUs (training processes) per node; 0: CPU")
    slurm.add_argument("--partition", default=None, help="SLURM partition [default: the cluster's]")
    slurm.add_argument("--time", type=bounded(1, 60 * 24 * 365, "minutes"), default=72 * 60, help="time limit, minutes")
    slurm.add_argument("--mem", type=bounded(1, 100_000, "GB"), default=None, help="memory per node, GB [default: the cluster's]")
    slurm.add_argument("--cpus-per-task", type=bounded(1, 1024, "CPUs"), default=10, help="CPUs per node's task")
    slurm.add_argument("--slurm-cluster", choices=("slurm", "local"), default="slurm",
                       help="'local' runs the same job on this machine (submitit's local executor): a submission without a cluster")  # fmt: skip
    return parser


def prepare(argv: Sequence[str] | None = None) -> tuple[Any, list[str], int]:
    """Parse the command line; return the checked VISSL config, notices to print and the node id.

    Raises:
        SystemExit: with a message naming what is wrong, for any bad option or config.
    """
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)  # overrides may follow options, as in the README
    cfg, notices = checked_config(parser.prog, args)
    return cfg, notices, args.node_id


def checked_config(prog: str, args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The checked VISSL config of parsed options, and notices to print
    (:func:`spacetorch.vissl.config.prepare_config`).

    Raises:
        SystemExit: with a message naming what is wrong, for any bad option or config.
    """
    from spacetorch.vissl.config import ConfigError, prepare_config

    try:
        return prepare_config(
            args.overrides, alpha=args.alpha, alpha_layers=args.alpha_layers, gpus=args.gpus, imports=args.imports,
            slurm_gpus_per_node=args.gpus_per_node if args.slurm else None,
        )
    except ConfigError as err:
        fail(prog, str(err))


def _submit(args: argparse.Namespace, cfg: Any) -> int:
    """Submit the checked training as a SLURM job (one task per node) and say where it is."""
    from spacetorch.cli._slurm import SlurmSettings, submit

    argv = list(args.overrides)
    if args.alpha is not None:
        argv += ["--alpha", repr(args.alpha)]
    if args.alpha_layers is not None:
        argv += ["--alpha-layers", ",".join(args.alpha_layers)]
    for entry in args.imports:  # a file by its full path: the job may start elsewhere
        argv += ["--import", str(Path(entry).resolve()) if entry.endswith(".py") else entry]
    settings = SlurmSettings(nodes=args.nodes, gpus_per_node=args.gpus_per_node, partition=args.partition, time_min=args.time,
                             mem_gb=args.mem, cpus_per_task=args.cpus_per_task, cluster=args.slurm_cluster)  # fmt: skip
    folder = Path(cfg.CHECKPOINT.DIR) / "slurm"
    job = submit(main, argv, settings, folder)
    print(
        f"{program('train.py')}: submitted job {job.job_id} ({args.slurm_cluster}): {args.nodes} node(s) x "
        f"{args.gpus_per_node} GPU(s); its logs: {folder}, its checkpoints: {cfg.CHECKPOINT.DIR}",
        flush=True,
    )
    return 0


def _summary(cfg: Any) -> str:
    loss = cfg.LOSS.name
    lines = [
        f"trunk {cfg.MODEL.TRUNK.NAME}, loss {loss}, {cfg.OPTIMIZER.num_epochs} epochs",
        f"{cfg.DISTRIBUTED.NUM_NODES} node(s) x {cfg.DISTRIBUTED.NUM_PROC_PER_NODE} process(es) on "
        f"{cfg.MACHINE.DEVICE} ({cfg.DISTRIBUTED.BACKEND}), batch {cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA} per process",
        f"checkpoints and logs: {cfg.CHECKPOINT.DIR}",
    ]
    weights = cfg.LOSS.get(loss, {}).get("layer_weights")
    if weights:
        lines.insert(1, "layer weights: " + ", ".join(f"{k} {v:g}" for k, v in dict(weights).items()))
    return "\n".join("  " + line for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``train.py``; returns 0 when training finished, 128 + signal when interrupted."""
    run: dict[str, Any] = {}  # "cfg": the config, once training starts
    with interrupts_as_exceptions() as received:
        try:
            return _train(argv, run)
        except BaseException:
            if received.signum is None:
                raise
    return _report_interrupt(received.signum, run.get("cfg"))


def _train(argv: Sequence[str] | None, run: dict[str, Any]) -> int:
    from spacetorch.vissl.config import save_config

    parser = build_parser()
    args = parser.parse_intermixed_args(argv)  # overrides may follow options, as in the README
    cfg, notices = checked_config(parser.prog, args)
    for notice in notices:
        print(f"{program('train.py')}: {notice}", flush=True)
    if args.slurm:
        return _submit(args, cfg)
    if args.node_id == 0:  # one writer per checkpoint folder: a second run on it stops here (the other nodes share it)
        Path(cfg.CHECKPOINT.DIR).parent.mkdir(parents=True, exist_ok=True)  # the folder that holds the lock
        open_output(parser.prog, Output(cfg.CHECKPOINT.DIR, "config.CHECKPOINT.DIR"))
    finished = sorted(Path(cfg.CHECKPOINT.DIR).glob("model_final_checkpoint_*.torch"))
    if finished:
        print(
            f"{program('train.py')}: training already finished: {finished[-1]}; delete {cfg.CHECKPOINT.DIR} "
            "or set config.CHECKPOINT.DIR to train again",
            flush=True,
        )
        return 0
    removed = remove_stale_temporaries(cfg.CHECKPOINT.DIR)
    if removed:
        print(
            f"{program('train.py')}: removed {len(removed)} partial checkpoint file(s) of an earlier run that was killed "
            f"while saving: {', '.join(p.name for p in removed)}",
            flush=True,
        )
    run["cfg"] = cfg
    save_config(cfg)
    print(f"{program('train.py')}: starting VISSL training\n" + _summary(cfg), flush=True)

    from vissl.utils.distributed_launcher import launch_distributed

    from spacetorch.vissl.hooks import hook_generator

    launch_distributed(cfg, node_id=args.node_id, engine_name="train", hook_generator=hook_generator)
    logging.shutdown()
    return 0


def _report_interrupt(signum: int, cfg: Any) -> int:
    """Stop the ranks, say where the next run resumes from; return 128 + ``signum``."""
    import multiprocessing
    import signal

    name = signal.Signals(signum).name
    for child in multiprocessing.active_children():  # spawned ranks that did not get the signal
        if child.pid is not None:
            os.kill(child.pid, signal.SIGINT)
    for child in multiprocessing.active_children():
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
    message = f"{program('train.py')}: interrupted by {name}; training did not finish."
    if cfg is not None:
        from vissl.utils.checkpoint import get_resume_checkpoint

        resume = get_resume_checkpoint(cfg, checkpoint_folder=cfg.CHECKPOINT.DIR)
        if resume is not None:
            message += f" Run the same command again to resume from {os.path.realpath(resume)}."
        else:
            message += f" No checkpoint was written to {cfg.CHECKPOINT.DIR} yet: running it again starts over."
    print(message, file=sys.stderr, flush=True)
    logging.shutdown()
    return 128 + signum


if __name__ == "__main__":  # pragma: no cover
    from spacetorch.cli._exit import finish

    finish(main)
