"""Training on a SLURM cluster through submitit (``train.py ... --slurm``).

The config is checked where the command runs; then one task per node is submitted.  Each task
runs ``train.py`` with the same arguments on its node: node ``k`` of ``N`` as ``--node-id k``,
with ``DISTRIBUTED.NUM_NODES``, a TCP rendezvous on the first node and the GPUs per node as
processes, the way the multi-node instructions do by hand.  ``cluster="local"`` runs the same job
on this machine (submitit's local executor), to try a submission without a cluster.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["SlurmSettings", "node_arguments", "submit"]


@dataclass(frozen=True)
class SlurmSettings:
    """What the job asks the scheduler for."""

    nodes: int = 1
    gpus_per_node: int = 8
    partition: str | None = None
    time_min: int = 72 * 60
    mem_gb: int | None = None
    cpus_per_task: int = 10
    cluster: str = "slurm"  # or "local": submitit's local executor, on this machine


def node_arguments(argv: list[str], nodes: int, gpus_per_node: int, node: int, first_host: str, job_id: str) -> list[str]:
    """``train.py`` arguments for node ``node`` of a job: the user's, the GPUs as processes and,
    for several nodes, the node id and a TCP rendezvous on the first node's host."""
    extra = []
    if gpus_per_node > 0:
        extra = ["config.MACHINE.DEVICE=gpu", "config.DISTRIBUTED.BACKEND=nccl", f"config.DISTRIBUTED.NUM_PROC_PER_NODE={gpus_per_node}"]
    if nodes > 1:
        port = 20000 + zlib.crc32(job_id.encode()) % 20000  # the same on every node of the job
        extra += [f"config.DISTRIBUTED.NUM_NODES={nodes}", "config.DISTRIBUTED.INIT_METHOD=tcp",
                  f"config.DISTRIBUTED.RUN_ID={first_host}:{port}"]  # fmt: skip
    return [*argv, *extra, "--node-id", str(node)]


def _train_on_this_node(train: Callable[[list[str]], int], argv: list[str], nodes: int, gpus_per_node: int) -> int:
    """What each submitted task runs: ``train`` on this node's arguments."""
    import submitit

    env = submitit.JobEnvironment()
    return train(node_arguments(argv, nodes, gpus_per_node, env.global_rank, env.hostnames[0], str(env.job_id)))


def submit(train: Callable[[list[str]], int], argv: list[str], settings: SlurmSettings, folder: Path) -> Any:
    """Submit ``train(argv)`` (``train.py``'s ``main``, passed in so that this module imports no
    command) as a job, one task per node; returns submitit's job.

    Its logs go to ``folder``.
    """
    import submitit

    executor = submitit.AutoExecutor(folder=str(folder), cluster=settings.cluster)
    parameters: dict[str, Any] = {
        "nodes": settings.nodes, "tasks_per_node": 1, "cpus_per_task": settings.cpus_per_task,
        "gpus_per_node": settings.gpus_per_node, "timeout_min": settings.time_min, "name": "spacetorch_train",
    }  # fmt: skip
    if settings.mem_gb is not None:
        parameters["mem_gb"] = settings.mem_gb
    if settings.partition is not None:
        parameters["slurm_partition"] = settings.partition
    executor.update_parameters(**parameters)
    return executor.submit(_train_on_this_node, train, argv, settings.nodes, settings.gpus_per_node)
