"""Ctrl-C and SIGTERM as one exception, so that commands clean up and exit with 128 + signal.

A terminal's Ctrl-C sends SIGINT to every process of the foreground group; job schedulers send
SIGTERM.  Inside :func:`interrupts_as_exceptions` either one raises :class:`Interrupted` in
the command's main process: cleanup code (``finally``, ``except BaseException``) runs, and
handlers that swallow :class:`KeyboardInterrupt` (VISSL's launcher does) let it through.
Processes forked from it (data-loader workers) get a plain :class:`KeyboardInterrupt`, on
which they exit quietly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

__all__ = ["Interrupted", "exit_on_interrupt", "interrupts_as_exceptions", "raise_if_interrupted"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; :attr:`exit_code` is 128 + the signal number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Received:
    """The first signal that arrived (``None`` until one does)."""

    signum: int | None = None


#: the signals received within the open :func:`interrupts_as_exceptions` blocks, innermost last
_OPEN: list[_Received] = []


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` again if a signal arrived within an open block: its first
    exception can be swallowed where the handler happened to run (a ctypes callback of numba's
    compiler prints "Exception ignored" and goes on).  Long work calls this between its steps
    (a progress callback), so that such a signal still stops it."""
    for received in _OPEN:
        if received.signum is not None:
            raise Interrupted(received.signum)


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[_Received]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only).

    Yields an object whose ``signum`` records the first signal, also when the exception it
    raised was replaced by another one on its way up.
    """
    owner = os.getpid()
    received = _Received()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked worker
            raise KeyboardInterrupt
        if received.signum is None:
            received.signum = signum
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    _OPEN.append(received)
    try:
        yield received
    finally:
        _OPEN.remove(received)
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def exit_on_interrupt(prog: str, consequence: str) -> Iterator[None]:
    """For a command's work: on SIGINT or SIGTERM, clean up, print
    ``"<prog>: interrupted by SIGINT; <consequence>"`` and exit with 128 + the signal number.

    Also when the signal's exception was replaced on its way up by another one: a data-loader
    worker that the same signal ended makes the loader raise "worker exited unexpectedly".  A
    signal whose exception was swallowed while the work still finished does not count."""
    stopped = False
    with interrupts_as_exceptions() as received:
        try:
            yield
        except BaseException:
            if received.signum is None:
                raise
            stopped = True
    # a signal whose exception some library code swallowed (a weakref callback, a __del__) after the
    # work was done did not stop the work: the command ends as it would have
    if stopped and received.signum is not None:
        stop = Interrupted(received.signum)
        _close_progress_bars()
        print(f"{prog}: interrupted by {stop.name}; {consequence}", file=sys.stderr, flush=True)
        raise SystemExit(stop.exit_code) from None


def _close_progress_bars() -> None:
    """Close the progress bars the interrupted work left open, so that their last redraw comes
    before the one line that says what happened (not after it, when they are collected)."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()
