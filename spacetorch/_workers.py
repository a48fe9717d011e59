"""Worker processes that a signal does not leave running.

A command's forked worker processes inherit its signal handlers.  Without care, SIGTERM sent to
the command's process group reaches each worker as an exception that
``concurrent.futures`` hands back as that task's result, and the worker goes on with the next
task, while the interrupted command waits for all of them.  In a :func:`process_pool` the
workers ignore SIGINT and SIGTERM, which the main process handles: leaving the block early
cancels the tasks not yet started and waits only for the running ones.  (Workers ended by the
signal instead would break the pool, and Python 3.11's executor then trips over the cancelled
tasks in a thread of its own, printing a traceback.)  A worker whose main process is killed
ends when it next reads its task queue.  The data loaders of the commands
(:func:`data_loader`) start their workers the same way: ended by the group's signal instead,
they make the loader's clean-up in the main process print a traceback as it unwinds.  A loader
worker also prints nothing when the main process drops a connection to it as it stops (the
batch it was fetching from the worker's resource-sharer thread is no longer wanted).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["data_loader", "process_pool"]


def _leave_signals_to_the_main_process() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that leave SIGINT and SIGTERM to the
    main process; leaving the block (an interruption, an error) cancels the tasks not yet started."""
    pool = ProcessPoolExecutor(workers, initializer=_leave_signals_to_the_main_process)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _loader_worker_start(_worker_id: int) -> None:
    _leave_signals_to_the_main_process()
    sys.excepthook = _quiet_when_the_main_process_has_gone


def _quiet_when_the_main_process_has_gone(kind: type[BaseException], error: BaseException, trace: Any) -> None:
    """A loader worker's ``sys.excepthook``: a connection the main process dropped (it stopped,
    interrupted, while fetching a batch's shared memory from the worker's resource-sharer thread,
    which reports through this hook) prints nothing; anything else prints as usual."""
    if issubclass(kind, (ConnectionError, EOFError)):
        return
    sys.__excepthook__(kind, error, trace)


def data_loader(dataset: Any, *, batch_size: int, workers: int) -> Any:
    """A ``torch.utils.data.DataLoader`` over ``dataset`` in order, whose ``workers`` worker
    processes leave SIGINT and SIGTERM to the main process (which stops them as it unwinds)."""
    from torch.utils.data import DataLoader

    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False,
                      worker_init_fn=_loader_worker_start if workers > 0 else None)  # fmt: skip
