"""Bad arguments, tried on every command they apply to: one line naming the option and what was
expected, exit 2, no traceback, and nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spacetorch.cli.main import main

#: the options every command needs before it gets to the one under test (paths need not exist:
#: the option under test is refused first)
REQUIRED = {
    "v1-figure": ["--checkpoint", "c.torch", "--positions", "p"],
    "swapopt": ["--checkpoint", "c.torch", "--positions", "p"],
    "compare-alpha": [],
    "corruptions evaluate": ["--checkpoint", "c.torch", "--arch", "resnet18", "--data", "d"],
    "evaluate-tdam": ["--checkpoint", "c.torch", "--data", "d"],
    "evaluate-coarse-to-fine accuracy": ["--model", "topdown_resnet32_cifar=c.torch", "--data", "d"],
    "evaluate-coarse-to-fine attack": ["--model", "topdown_resnet32_cifar=c.torch", "--data", "d"],
    "corruptions make": ["--images", "i", "--out", "o"],
    "check-images": ["root"],
    "demo-data": ["--out", "o"],
    "features": ["--checkpoint", "c.torch", "--positions", "p", "--gratings", "--out", "f.h5"],
    "paper-panels": ["--checkpoint", "c.torch", "--positions", "p", "--out", "o"],
}
DEVICE_COMMANDS = ["v1-figure", "swapopt", "compare-alpha", "features", "paper-panels", "corruptions evaluate", "evaluate-tdam",
                   "evaluate-coarse-to-fine accuracy", "evaluate-coarse-to-fine attack"]
WORKER_COMMANDS = ["corruptions make", "corruptions evaluate", "evaluate-tdam", "evaluate-coarse-to-fine accuracy",
                   "check-images", "demo-data", "features"]
FIGURE_OPTIONS = {"v1-figure": "--out", "swapopt": "--figure"}
FOLDER_OPTIONS = {"compare-alpha": "--out", "corruptions make": "--out", "corruptions evaluate": "--out", "evaluate-tdam": "--out",
                  "evaluate-coarse-to-fine accuracy": "--out", "demo-data": "--out", "positions": "--out", "swapopt": "--out",
                  "paper-panels": "--out"}
REQUIRED["positions"] = []
CASES = (
    [(c, ["--device", "banana"], "argument --device: expected a torch device such as cpu, cuda or cuda:1, got 'banana'") for c in DEVICE_COMMANDS]
    + [(c, ["--device", "cuda:7"], "argument --device: cuda:7: this machine has") for c in DEVICE_COMMANDS]
    + [(c, ["--workers", "100000"], f"argument --workers: expected {0 if c.startswith(('corruptions', 'evaluate', 'features')) else 1} to "
        f"{os.cpu_count()} processes (this machine has {os.cpu_count()} CPUs), got 100000") for c in WORKER_COMMANDS]
    + [(c, ["--workers", "-1"], "argument --workers: expected ") for c in WORKER_COMMANDS]
    + [(c, ["--workers", "two"], "argument --workers: expected a whole number, got 'two'") for c in WORKER_COMMANDS]
    + [(c, ["--limit", "-2"], "argument --limit: expected 1 to 1,000,000,000 images, got -2")
       for c in ["corruptions evaluate", "evaluate-tdam", "evaluate-coarse-to-fine accuracy"]]
    + [(c, ["--crop", "100000"], "argument --crop: expected 8 to 4,096 px, got 100000") for c in ["corruptions evaluate", "evaluate-tdam"]]
    + [(c, ["--image-size", "100000"], "argument --image-size: expected 8 to 4,096 px, got 100000")
       for c in ["v1-figure", "swapopt", "compare-alpha", "features", "paper-panels"]]
    + [(c, ["--seed", "-1"], "argument --seed: expected 0 to 4,294,967,295 (a seed), got -1")
       for c in ["positions", "demo-data", "swapopt", "corruptions make", "evaluate-coarse-to-fine attack"]]
    + [(c, ["--n-neighborhoods", "0"], "argument --n-neighborhoods: expected 1 to 1,000,000 neighborhoods, got 0") for c in ["positions", "swapopt"]]
    + [("swapopt", ["--attempts", "1e30"], "argument --attempts: expected 1 to 1,000,000,000,000 attempts, got 1e30"),
       ("positions", ["--input-size", "7"], "argument --input-size: expected 8 to 4,096 px, got 7"),
       ("demo-data", ["--n-train", "0"], "argument --n-train: expected 1 to 10,000,000 images, got 0"),
       ("evaluate-coarse-to-fine attack", ["--pgd-steps", "0"], "argument --pgd-steps: expected 1 to 10,000 steps, got 0")]
    + [(c, [o, "map.jpg"], f"argument {o}: expected a .png file (figures are written as PNG), got 'map.jpg'") for c, o in FIGURE_OPTIONS.items()]
    + [(c, [o, "a_file/x.png"], f"argument {o}: a_file/x.png: a_file is a file, not a folder") for c, o in FIGURE_OPTIONS.items()]
    + [(c, [o, "a_file"], f"argument {o}: a_file exists and is not a folder") for c, o in FOLDER_OPTIONS.items()]
    + [(c, [o, "a_file/sub"], f"argument {o}: a_file/sub: a_file is a file, not a folder") for c, o in FOLDER_OPTIONS.items()]
)


@pytest.mark.parametrize("command, bad, message", CASES, ids=[f"{c}:{' '.join(b)}" for c, b, _ in CASES])
def test_a_bad_argument_gets_one_line_and_exit_2_and_nothing_is_written(
    command: str, bad: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    if "cuda:7" in bad:
        import torch

        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has a GPU 7")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("the user's")
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), *REQUIRED[command], *bad])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"spacetorch {command}: error: {message}"), err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"], "nothing written"
    assert (tmp_path / "a_file").read_text() == "the user's"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", ["notes in the output", "output is the image set", "output inside the image set"])
def test_corruptions_make_never_replaces_what_it_did_not_write(case: str, tmp_path: Path, capsys) -> None:
    from spacetorch.data import make_demo_image_folder

    images = make_demo_image_folder(tmp_path / "images", n_train=12, n_val=0, size=32) / "train"
    out = {"notes in the output": tmp_path / "mine", "output is the image set": images,
           "output inside the image set": images / "sub"}[case]
    if case == "notes in the output":
        out.mkdir()
        (out / "notes.txt").write_text("my notes")
    before = _snapshot(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["corruptions", "make", "--images", str(images), "--out", str(out), "--overwrite", "--workers", "0", "--quiet"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spacetorch corruptions make: error: ") and len(err.splitlines()) == 1, err
    assert {"notes in the output": "it has no corruptions.json", "output is the image set": "lies inside --images",
            "output inside the image set": "lies inside --images"}[case] in err
    assert _snapshot(tmp_path) == before, "the user's files are as they were"


def test_check_images_on_a_folder_without_images_is_an_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "notes.txt").write_text("not an image")
    with pytest.raises(SystemExit) as exited:
        main(["check-images", str(tmp_path), "--quiet"])
    assert exited.value.code == 2
    assert f"ROOT {tmp_path} holds no image files" in capsys.readouterr().err


def test_check_images_refuses_to_move_images_into_the_folder_it_checks(tmp_path: Path, capsys) -> None:
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SystemExit) as exited:
        main(["check-images", str(tmp_path), "--move-to", str(tmp_path / "bad"), "--quiet"])
    assert exited.value.code == 2
    assert f"--move-to {tmp_path / 'bad'} lies inside ROOT {tmp_path}" in capsys.readouterr().err
    assert (tmp_path / "cls" / "bad.jpg").exists() and not (tmp_path / "bad").exists()


def test_a_signal_whose_exception_another_replaced_still_exits_143_in_one_line(capsys) -> None:
    """SIGTERM to a command's process group also ends its data-loader workers, and the loader in
    the main process then raises "worker exited unexpectedly" in place of the signal's exception."""
    import signal
    import time

    from spacetorch.cli._signals import Interrupted, exit_on_interrupt

    with pytest.raises(SystemExit) as exited, exit_on_interrupt("spacetorch demo", "nothing was written"):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Interrupted:
            raise RuntimeError("DataLoader worker (pid 123) exited unexpectedly") from None
    assert exited.value.code == 143
    assert capsys.readouterr().err == "spacetorch demo: interrupted by SIGTERM; nothing was written\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


def test_an_error_without_a_signal_is_not_reported_as_one() -> None:
    from spacetorch.cli._signals import exit_on_interrupt

    with pytest.raises(RuntimeError, match="a real bug"), exit_on_interrupt("spacetorch demo", "nothing was written"):
        raise RuntimeError("a real bug")
