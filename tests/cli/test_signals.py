"""SIGTERM to a command that has worker processes, as a job scheduler sends it (to the whole
process group) and as `kill PID` sends it (to the main process only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [True, False], ids=["process group", "main process"])
def test_sigterm_ends_a_command_and_its_workers_at_once(tmp_path: Path, to_group: bool) -> None:
    command = [sys.executable, "-m", "spacetorch", "demo-data", "--source", "dead-leaves", "--n-train", "3000",
               "--n-val", "0", "--workers", "2", "--out", "dl", "--quiet"]
    run = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(4)  # started, workers drawing
    assert run.poll() is None, run.communicate()[1]
    (os.killpg if to_group else os.kill)(run.pid, signal.SIGTERM)
    try:
        err = run.communicate(timeout=30)[1]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 143, err
    assert err == "spacetorch demo-data: interrupted by SIGTERM; nothing was written (dl does not exist)\n"
    assert list(tmp_path.iterdir()) == [], "no output and no temporary left"
    leftover = subprocess.run(["pgrep", "-f", "--out dl --quiet"], capture_output=True, text=True).stdout.split()
    assert leftover == [] or all(not Path(f"/proc/{pid}/cwd").exists() or Path(f"/proc/{pid}/cwd").resolve() != tmp_path
                                 for pid in leftover), "no worker left running"


def test_a_loader_worker_is_quiet_about_a_connection_its_main_process_dropped() -> None:
    """A loader worker's resource-sharer thread reports through sys.excepthook; a connection the
    stopping main process reset prints nothing there, any other error prints its traceback."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from spacetorch._workers import _loader_worker_start\n"
        "_loader_worker_start(0)\n"
        "for error in (ConnectionResetError(104, 'Connection reset by peer'), EOFError(), ValueError('a real one')):\n"
        "    try:\n"
        "        raise error\n"
        "    except BaseException:\n"
        "        sys.excepthook(*sys.exc_info())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0
    assert "ValueError: a real one" in run.stderr
    assert "ConnectionResetError" not in run.stderr and "EOFError" not in run.stderr


def test_a_signal_whose_exception_was_swallowed_is_raised_again_at_the_next_check() -> None:
    """As when the handler runs inside a ctypes callback of numba's compiler ("Exception ignored")."""
    from spacetorch.cli._signals import Interrupted, interrupts_as_exceptions, raise_if_interrupted

    raise_if_interrupted()  # outside any block: nothing to raise
    with interrupts_as_exceptions():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here
        except Interrupted:
            pass  # swallowed
        with pytest.raises(Interrupted) as again:
            raise_if_interrupted()
    assert again.value.exit_code == 130
    raise_if_interrupted()  # the block is closed: its signal is done with
