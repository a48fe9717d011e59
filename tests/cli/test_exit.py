"""spacetorch.cli._exit.finish: a command's exit without the module teardown keeps everything an
exit must do (its status, the output, atexit handlers, threads that are not daemons)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_COMMAND = """
import atexit, sys, threading, time
from spacetorch.cli._exit import finish
out = sys.argv[1]
atexit.register(lambda: open(out + "/atexit", "w").write("ran"))

def later():
    time.sleep(0.5)
    open(out + "/thread", "w").write("joined")

def command():
    threading.Thread(target=later).start()
    sys.stdout.write("buffered, no newline")  # a pipe's stdout is block-buffered
    BODY

finish(command)
raise AssertionError("finish returned")
"""


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "command.py"
    script.write_text(_COMMAND.replace("BODY", body))
    return subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize(("body", "status", "stderr"), [
    ("return 3", 3, ""),
    ("return None", 0, ""),
    ("sys.exit('a message')", 1, "a message\n"),
    ("raise SystemExit(130)", 130, ""),
])  # fmt: skip
def test_finish_exits_with_the_commands_status_after_what_an_exit_must_do(
    body: str, status: int, stderr: str, tmp_path: Path
) -> None:
    result = _run(body, tmp_path)
    assert (result.returncode, result.stderr) == (status, stderr)
    assert result.stdout == "buffered, no newline"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "joined"


def test_an_exception_is_left_to_python(tmp_path: Path) -> None:
    result = _run("raise ValueError('broken')", tmp_path)
    assert result.returncode == 1 and "ValueError: broken" in result.stderr


def test_an_executor_left_open_does_not_hold_the_exit(tmp_path: Path) -> None:
    """A thread pool never shut down: Python's exit tells its idle workers to stop, and so must finish."""
    body = "global pool; import concurrent.futures; pool = concurrent.futures.ThreadPoolExecutor(2); pool.submit(time.sleep, 0.1); return 0"
    result = _run(body, tmp_path)
    assert result.returncode == 0 and (tmp_path / "thread").read_text() == "joined"
