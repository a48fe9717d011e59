"""A finished command's exit without the interpreter's teardown.

Once a command is done, Python would tear down every module it imported before the process
ends: about 2 s after torch and torchvision (which imports ``torch._dynamo`` and Triton), per
command, for nothing a finished command needs.  :func:`finish` ends the process at once, after
what an exit must still do, in Python's own order: the threads that are not daemons joined, the
``atexit`` handlers run (temporary folders removed, child processes joined), the log handlers
flushed and closed, stdout and stderr flushed.  Files a command
writes are closed by the command itself (``with`` blocks, atomic writes); TensorBoard writers by
a hook at the end of training (:class:`spacetorch.vissl.hooks.CloseTensorboard`).

Only the entry points call it (``train.py``, ``python -m spacetorch``, the installed
``spacetorch``), never library code.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

__all__ = ["finish"]


def finish(command: Callable[[], int | None]) -> NoReturn:
    """Run ``command`` and end the process with its exit status (``None``: 0; a ``SystemExit``'s
    code as Python would give it), skipping the module teardown.  An exception other than
    ``SystemExit`` propagates, for Python to print and exit as it does."""
    try:
        code = command()
    except SystemExit as stop:
        code = _status(stop.code)
    status = 0 if code is None else int(code)
    join_threads = getattr(threading, "_shutdown", None)  # the interpreter's first exit step (CPython)
    if join_threads is None:
        sys.exit(status)  # elsewhere, the ordinary exit
    join_threads()  # the threading exit hooks (executors stop their workers), then every non-daemon thread joined
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status)


def _status(code: object) -> int:
    """The exit status Python gives ``sys.exit(code)``: a message is printed and means 1."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1
