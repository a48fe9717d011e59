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
}
DEVICE_COMMANDS = ["v1-figure", "swapopt", "compare-alpha", "corruptions evaluate", "evaluate-tdam",
                   "evaluate-coarse-to-fine accuracy", "evaluate-coarse-to-fine attack"]
WORKER_COMMANDS = ["corruptions make", "corruptions evaluate", "evaluate-tdam", "evaluate-coarse-to-fine accuracy",
                   "check-images", "demo-data"]
CASES = (
    [(c, ["--device", "banana"], "argument --device: expected a torch device such as cpu, cuda or cuda:1, got 'banana'") for c in DEVICE_COMMANDS]
    + [(c, ["--device", "cuda:7"], "argument --device: cuda:7: this machine has") for c in DEVICE_COMMANDS]
    + [(c, ["--workers", "100000"], f"argument --workers: expected {0 if c.startswith(('corruptions', 'evaluate')) else 1} to "
        f"{os.cpu_count()} processes (this machine has {os.cpu_count()} CPUs), got 100000") for c in WORKER_COMMANDS]
    + [(c, ["--workers", "-1"], "argument --workers: expected ") for c in WORKER_COMMANDS]
    + [(c, ["--workers", "two"], "argument --workers: expected a whole number, got 'two'") for c in WORKER_COMMANDS]
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
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), *REQUIRED[command], *bad])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"spacetorch {command}: error: {message}"), err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "nothing written"
