"""The user's files, tried on every command that reads or writes folders, through whole runs on
tiny models and image sets: nothing of the user's is replaced (class 1), no output lies inside
an input (class 2), and a damaged image is named in one line (class 6).  Each case expects one
line, exit 2, no traceback and every file of the user's unchanged (a snapshot before and after);
the cases that must succeed keep the user's other files and replace only their own."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spacetorch.cli.main import main
from spacetorch.models import create_model
from tests.output_states import snapshot

TD = {"time_steps": 2, "mdist": 1}
# whole runs of every command: the slow tier (make test); tests/test_files.py checks the rules themselves in the fast one
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, small_model_files: tuple[Path, Path]) -> Path:
    """A folder of everything the commands read: images, a damaged copy, checkpoints, sets."""
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / "images" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "images" / label / f"{label}{i}.png")
    shutil.copytree(root / "images", root / "damaged")
    bad = root / "damaged" / "b" / "truncated.jpg"
    Image.new("RGB", (32, 32), "red").save(bad)
    bad.write_bytes(bad.read_bytes()[:200])
    torch.manual_seed(0)
    torch.save(create_model("tdresnet18", num_classes=2, **TD).state_dict(), root / "tdam.pth")
    torch.save(create_model("topdown_resnet20_mnist", num_classes=2).state_dict(), root / "c2f.pth")
    torch.save(create_model("resnet18", num_classes=2).state_dict(), root / "resnet18.pth")
    for images, out in (("images", "set"), ("images", "damaged_set")):
        assert main(["corruptions", "make", "--images", str(root / images), "--out", str(root / out), "--corruptions",
                     "gaussian_noise", "--severities", "1", "--workers", "0", "--quiet"]) == 0  # fmt: skip
    shutil.copy(bad, root / "damaged_set" / "gaussian_noise" / "1" / "b" / bad.name)
    checkpoint, positions = small_model_files
    shutil.copy(checkpoint, root / checkpoint.name)
    shutil.copytree(positions, root / "positions")
    return root


def command(name: str, root: Path, data: str = "images", out: str = "out") -> list[str]:
    """A whole, quick run of a command on ``root``'s files, reading ``data`` and writing ``out``."""
    d, o = str(root / data), str(root / out)
    quick = ["--device", "cpu", "--quiet"]
    return {
        "evaluate-tdam": ["evaluate-tdam", "--checkpoint", str(root / "tdam.pth"), "--arch", "tdresnet18", "--model-kwargs",
                          json.dumps(TD), "--data", d, "--resize", "32", "--crop", "32", "--workers", "0", "--out", o, *quick],
        "evaluate-coarse-to-fine accuracy": ["evaluate-coarse-to-fine", "accuracy", "--model", f"topdown_resnet20_mnist={root / 'c2f.pth'}",
                                             "--data", d, "--workers", "0", "--out", o, *quick],
        "evaluate-coarse-to-fine attack": ["evaluate-coarse-to-fine", "attack", "--model", f"topdown_resnet20_mnist={root / 'c2f.pth'}",
                                           "--data", d, "--eps", "0", "2/255", "--pgd-steps", "1", "--workers", "0", "--out", o, *quick],
        "evaluate-coarse-to-fine gradcam": ["evaluate-coarse-to-fine", "gradcam", "--model", f"topdown_resnet20_mnist={root / 'c2f.pth'}",
                                            "--data", d, "--images", "b/b0.png", *(["b/truncated.jpg"] if "damaged" in data else []),
                                            "--out", o, *quick],
        "corruptions evaluate": ["corruptions", "evaluate", "--checkpoint", str(root / "resnet18.pth"), "--arch", "resnet18",
                                 "--data", d, "--corruptions", "gaussian_noise", "--severities", "1", "--resize", "32", "--crop", "32",
                                 "--workers", "0", "--out", o, *quick],
        "corruptions evaluate --clean": ["corruptions", "evaluate", "--checkpoint", str(root / "resnet18.pth"), "--arch", "resnet18",
                                         "--data", str(root / "set"), "--clean", d, "--corruptions", "gaussian_noise", "--severities", "1",
                                         "--resize", "32", "--crop", "32", "--workers", "0", "--out", o, *quick],
        "corruptions make": ["corruptions", "make", "--images", d, "--out", o, "--corruptions", "gaussian_noise",
                             "--severities", "1", "--workers", "0", "--quiet"],
        "check-images": ["check-images", d, "--move-to", o, "--workers", "1"],
        "swapopt": ["swapopt", "--checkpoint", str(root / "model_final_checkpoint_phase199.torch"), "--positions", d, "--image-size",
                    "64", "--spatial-frequencies", "2", "4", "--exclude-border", "0", "--layers", "layer2.0", "--attempts", "100", "--out", o, *quick],
        "v1-figure": ["v1-figure", "--checkpoint", str(root / "model_final_checkpoint_phase199.torch"), "--positions", d,
                      "--image-size", "64", "--spatial-frequencies", "2", "4", "--exclude-border", "0", "--out", o, *quick],
        "positions": ["positions", "--arch", "resnet18", "--input-size", "64", "--n-neighborhoods", "50", "--out", o],
        "demo-data": ["demo-data", "--out", o, "--n-train", "2", "--n-val", "1"],
    }[name]


def refused(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``argv``; check exit 2, one line, no traceback and every file under ``root`` unchanged."""
    before = snapshot(root)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"spacetorch {argv[0]}"), err
    assert snapshot(root) == before, "the user's files changed"
    return line


# class 2: an output inside an input, or an input inside an output
INSIDE = [
    ("evaluate-tdam", "images", "images/results", "--out"),
    ("evaluate-coarse-to-fine accuracy", "images", "images/results", "--out"),
    ("evaluate-coarse-to-fine attack", "images", "images/results", "--out"),
    ("evaluate-coarse-to-fine gradcam", "images", "images/results", "--out"),
    ("corruptions evaluate", "set", "set/results", "--out"),
    ("corruptions evaluate --clean", "images", "images/results", "--out"),
    ("corruptions make", "images", "images/sub", "--out"),
    ("corruptions make", "images/a", "images", "--images"),  # the reverse: the input inside the output
    ("check-images", "images", "images/bad", "--move-to"),
    ("swapopt", "positions", "positions/swapped", "--out"),
    ("v1-figure", "positions", "positions/v1.png", "--out"),
]


@pytest.mark.parametrize(("name", "data", "out", "first"), INSIDE, ids=[f"{c[0]}:{c[2]}" for c in INSIDE])
def test_an_output_inside_an_input_is_refused_before_any_work(
    world: Path, name: str, data: str, out: str, first: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(command(name, world, data, out), world, capsys)
    assert f"error: {first} " in line and " lies inside " in line, line


def test_a_figure_inside_the_positions_it_reads_is_refused(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*command("swapopt", world, "positions", "swapped"), "--figure", str(world / "positions" / "map.png")]
    line = refused(argv, world, capsys)
    assert "error: --figure " in line and "lies inside --positions" in line


# class 1: an output that holds a file of the user's with an output's name, or a folder to replace that holds more
FOREIGN = [
    ("evaluate-tdam", "results.json"),
    ("evaluate-coarse-to-fine accuracy", "accuracy.csv"),
    ("evaluate-coarse-to-fine attack", "robustness.png"),
    ("evaluate-coarse-to-fine gradcam", "gradcam"),
    ("corruptions evaluate", "summary.json"),
]


@pytest.mark.parametrize(("name", "entry"), FOREIGN, ids=[c[0] for c in FOREIGN])
def test_a_result_file_of_the_users_is_not_replaced(
    world: Path, tmp_path: Path, name: str, entry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / entry).write_text("the user's")
    data = "set" if name.startswith("corruptions") else "images"
    line = refused(command(name, world, data, str(out)), tmp_path, capsys)
    assert f"already holds {entry}, which spacetorch did not write there" in line, line


REPLACED_ONLY_IF_OURS = ["positions", "swapopt", "corruptions make"]


@pytest.mark.parametrize("name", REPLACED_ONLY_IF_OURS)
def test_overwrite_replaces_only_a_folder_spacetorch_wrote(
    world: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    data = {"swapopt": "positions", "corruptions make": "images"}.get(name, "images")
    line = refused([*command(name, world, data, str(out)), "--overwrite"], tmp_path, capsys)
    assert str(out) in line, line


def test_demo_data_refuses_an_existing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("the user's")
    refused(command("demo-data", tmp_path), tmp_path, capsys)


SUCCEEDS = ["evaluate-tdam", "evaluate-coarse-to-fine accuracy", "corruptions evaluate"]


@pytest.mark.parametrize("name", SUCCEEDS)
def test_results_go_beside_the_users_files_and_replace_only_their_own(
    world: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    argv = command(name, world, "set" if name.startswith("corruptions") else "images", str(out))
    assert main(argv) == 0
    first = snapshot(out)
    assert main(argv) == 0, capsys.readouterr().err  # its own results, replaced
    assert (out / "notes.txt").read_text() == "the user's"
    assert set(first) == set(snapshot(out)) and len(first) > 2


# class 6: a damaged image in an evaluation or source folder
DAMAGED = [
    ("evaluate-tdam", "damaged"),
    ("evaluate-coarse-to-fine accuracy", "damaged"),
    ("evaluate-coarse-to-fine attack", "damaged"),
    ("evaluate-coarse-to-fine gradcam", "damaged"),
    ("corruptions evaluate", "damaged_set"),
    ("corruptions evaluate --clean", "damaged"),
    ("corruptions make", "damaged"),
]


# class 3: two commands on one output at once
WRITERS = ["evaluate-tdam", "evaluate-coarse-to-fine accuracy", "evaluate-coarse-to-fine attack", "evaluate-coarse-to-fine gradcam",
           "corruptions evaluate", "corruptions make", "check-images", "swapopt", "v1-figure", "positions", "demo-data"]


@pytest.mark.parametrize("name", WRITERS)
def test_an_output_another_command_is_writing_is_refused_before_any_work(
    world: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other command is this test's process, alive, holding the output's lock."""
    import socket

    data = "positions" if name in ("swapopt", "v1-figure") else "images"
    out = tmp_path / ("out.png" if name == "v1-figure" else "out")
    lock = tmp_path / f".{out.name}.lock"
    lock.write_text(f"{os.getpid()}@{socket.gethostname()}")
    before = snapshot(world)
    line = refused(command(name, world, data, str(out)), tmp_path, capsys)
    assert f"{out} is being written by another spacetorch command (process {os.getpid()} on " in line
    assert snapshot(world) == before and lock.read_text().startswith(f"{os.getpid()}@"), "its lock is left to it"


@pytest.mark.parametrize(("name", "data"), DAMAGED, ids=[c[0] for c in DAMAGED])
def test_a_damaged_image_is_named_in_one_line_and_nothing_is_written(
    world: Path, tmp_path: Path, name: str, data: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    line = refused(command(name, world, data, str(out)), world, capsys)
    assert "truncated.jpg: cannot read this image" in line and "check-images" in line, line
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()], "nothing written"


# class 8: interrupted mid-work, a command exits 128 + the signal with one line and leaves the user's files as they were
@pytest.fixture(scope="module")
def many(world: Path) -> Path:
    """3,000 images of 384 px (hard links to two), so that every command below is still working when stopped."""
    root = world.parent / "many"
    rng = np.random.default_rng(1)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        source = root / f"{label}.png"
        Image.fromarray(rng.integers(0, 255, (384, 384, 3), dtype=np.uint8)).save(source)
        for i in range(1500):
            os.link(source, root / label / f"{label}{i}.png")
        source.unlink()
    return root


LONG = [
    ("evaluate-tdam", ["--batch-size", "4", "--workers", "2"], signal.SIGINT),
    ("evaluate-coarse-to-fine attack", ["--workers", "2", "--pgd-steps", "20"], signal.SIGTERM),  # with data-loader workers
    ("corruptions evaluate --clean", ["--batch-size", "4", "--workers", "2"], signal.SIGTERM),
    ("corruptions make", ["--workers", "2", "--corruptions", "glass_blur"], signal.SIGTERM),
    ("check-images", ["--workers", "2"], signal.SIGINT),
    ("swapopt", ["--attempts", "100000000", "--n-neighborhoods", "50"], signal.SIGINT),
    ("v1-figure", ["--batch-size", "1"], signal.SIGTERM),
]


@pytest.mark.parametrize(("name", "extra", "signum"), LONG, ids=[c[0] for c in LONG])
def test_a_signal_mid_work_exits_128_plus_it_in_one_line(
    world: Path, many: Path, tmp_path: Path, name: str, extra: list[str], signum: signal.Signals
) -> None:
    data = "positions" if name in ("swapopt", "v1-figure") else str(many)
    out = tmp_path / ("out.png" if name == "v1-figure" else "out")
    argv = _replace_options([a for a in command(name, world, data, str(out)) if a != "--quiet"], extra)
    before = snapshot(world), snapshot(many)
    run = subprocess.Popen([sys.executable, "-m", "spacetorch", *argv], cwd=tmp_path, stderr=subprocess.PIPE,
                           start_new_session=True)  # fmt: skip
    try:
        seen = _until_progress(run)
        os.killpg(run.pid, signum)  # as a scheduler or Ctrl-C in a terminal: the whole process group
        err = seen + run.communicate(timeout=60)[1].decode()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 128 + signum, err
    last = err.strip().splitlines()[-1].split("\r")[-1]
    assert last.startswith(f"spacetorch {argv[0]}") and f": interrupted by {signum.name}; " in last, err
    assert "Traceback" not in err
    assert (snapshot(world), snapshot(many)) == before, "the user's files changed"
    if name not in ("swapopt", "corruptions make", "check-images"):  # those leave what resumes them, as they say
        assert not out.exists() or not any(out.rglob("*.*")), "nothing written"


def _replace_options(argv: list[str], extra: list[str]) -> list[str]:
    """``argv`` with each ``--option VALUE`` of ``extra`` set to its value there."""
    argv = list(argv)
    i = 0
    while i < len(extra):
        option, value = extra[i], extra[i + 1]
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
        i += 2
    return argv


def _until_progress(run: subprocess.Popen[bytes]) -> str:
    """What the command printed until its first progress bar (the work has begun)."""
    assert run.stderr is not None
    seen = b""
    deadline = time.monotonic() + 120
    while b"%|" not in seen and b"it/s" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([run.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(run.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    time.sleep(0.5)  # well into the work
    assert run.poll() is None, f"it ended before the signal: {seen.decode()}"
    return seen.decode()
