"""bench/bench_train_step.py runs its three variants (alpha = 0, ours, the original design's
step) and prints their figures, on the CPU and, where there is one, on a GPU with mixed
precision and channels-last; bench/bench_end_to_end.py reads VISSL's log as it is written."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_end_to_end import images_per_second, iteration_times  # noqa: E402


def _bench(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_train_step.py"), "--batch", "2", "--image-size", "64", "--steps", "1",
         "--warmup", "0", "--neighborhoods", "200", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def _check(output: str) -> None:
    for variant in ("alpha=0", "ours", "original"):
        assert any(line.strip().startswith(variant) and "images/s" in line for line in output.splitlines()), variant
    assert "ratio ours / alpha=0:" in output and "ratio original / ours:" in output


@pytest.mark.slow  # a benchmark run (6 s): make test runs it
def test_the_step_benchmark_runs_every_variant_on_the_cpu() -> None:
    _check(_bench("--device", "cpu"))


@pytest.mark.gpu
def test_the_step_benchmark_runs_every_variant_on_a_gpu_with_bf16_and_channels_last() -> None:
    _check(_bench("--device", "cuda", "--amp", "bf16", "--channels-last"))
    _check(_bench("--device", "cuda", "--amp", "fp16"))


def test_end_to_end_images_per_second_come_from_the_log_timestamps() -> None:
    log = "\n".join(
        f"INFO 2026-11-22 10:00:{second:02d},500 log_hooks.py: 277: Rank: 0; [ep: 0] iter: {i}; lr: 0.1; loss: 2.0; btime(ms): 9;"
        for i, second in enumerate([0, 5, 6, 7, 8, 9])
    ) + "\nINFO 2026-11-22 10:00:10,000 trainer_main.py: 1: something else"
    times = iteration_times(log)
    assert sorted(times) == [0, 1, 2, 3, 4, 5] and times[2] == dt.datetime(2026, 11, 22, 10, 0, 6, 500000)
    # after a 2-iteration warm-up: iterations 2 -> 5 take 3 s, 3 batches of 16
    assert images_per_second(times, batch=16, warmup=2) == pytest.approx(16.0)
    with pytest.raises(ValueError, match="too few logged iterations"):
        images_per_second(times, batch=16, warmup=5)
