"""What the machine, not the user's options, makes fail is one line too: a file grown past what the
system allows (as a full disk does mid-write), a name too long for the file system, Ctrl-C or
SIGTERM while a command still loads its libraries.  Nothing partial is left behind."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SPACETORCH = [sys.executable, "-m", "spacetorch"]


def _file_size_limit(kib: int):  # type: ignore[no-untyped-def]
    def limit() -> None:  # in the child: writes past ``kib`` KiB fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, resource.RLIM_INFINITY))

    return limit


def test_a_write_the_system_refuses_midway_is_one_line_and_leaves_no_partial(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("the user's")
    run = subprocess.run([*SPACETORCH, "positions", "--arch", "resnet18", "--input-size", "112", "--out", "pos", "--quiet"],
                         cwd=tmp_path, capture_output=True, text=True, preexec_fn=_file_size_limit(64), timeout=300)
    assert run.returncode == 2, run.stderr
    assert run.stderr == ("spacetorch positions: error: writing pos: the file grew past the largest size this "
                          "system allows (File too large)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"], "no partial set, temporary or lock left"
    assert (tmp_path / "mine.txt").read_text() == "the user's"


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path: Path) -> None:
    name = "n" * 300
    run = subprocess.run([*SPACETORCH, "demo-data", "--out", name, "--quiet"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr == f"spacetorch demo-data: error: {name}: the name is longer than the file system allows (File name too long)\n"
    assert list(tmp_path.iterdir()) == []


#: a child that stops while the command's module loads, tells the parent so, and waits for its signal
_STOPS_WHILE_LOADING = """
import importlib, os, signal, sys
from spacetorch.cli import main as front
real = importlib.import_module
def loading(name, *args):
    if name.startswith("spacetorch.cli."):
        os.write(1, b"loading\\n")
        signal.pause()
    return real(name, *args)
front.importlib.import_module = loading
sys.exit(front.main(["swapopt", "--help"]))
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_a_command_loads_is_one_line(signum: int, code: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", _STOPS_WHILE_LOADING], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "loading\n"
        child.send_signal(signum)
        err = child.communicate(timeout=60)[1]
    finally:
        child.kill()
    assert child.returncode == code
    assert err == f"spacetorch swapopt: interrupted by {signal.Signals(signum).name}\n"


def test_an_error_of_the_code_itself_still_shows_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the environment's errors become one line: a bug keeps its traceback."""
    from spacetorch.cli import main as front

    def broken(name: str) -> object:
        raise FileNotFoundError(2, "No such file or directory", "/a/file/the/code/expected")

    monkeypatch.setattr(front.importlib, "import_module", broken)
    with pytest.raises(FileNotFoundError):
        front.run("swapopt", ["--help"])
