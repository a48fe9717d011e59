"""Every GPU check of spacetorch in one run, for a GPU machine held for a few minutes.

On a machine with Python 3.10+ and its own CUDA torch (and torchvision, timm, numba,
scikit-image), from the checkout's root:

    make gpu-wheels                                    # on a machine with PyPI: .whl/ (~5 MB)
    python bench/gpu_check.py --wheels .whl --out gpu_results    # on the GPU machine

Steps, each with its own time limit, each recorded in ``OUT/summary.json`` (status, exit code,
seconds, the numbers it printed) and ``OUT/gpu_check.log`` (every step's whole output):

1. ``install``: the packages in ``--wheels`` (VISSL, classy-vision, fvcore, hydra-core, ... built by
   ``make gpu-wheels``) go into a target folder with ``--no-deps``, as the README's "existing
   environment" steps install them, beside the machine's torch; then every requirement of
   spacetorch (``setup.py``) is checked against what is importable, naming what is missing;
2. ``environment``: torch, CUDA, the device, NCCL, VISSL as imported;
3. ``pytest-gpu``: ``pytest -m gpu``;
4. ``train-step``: ``bench/bench_train_step.py`` at batch 128, 224 px, 20,000 neighborhoods per
   layer: bf16 and fp16, channels-last on and off, and ``torch.compile`` with bf16 + channels-last
   (ours vs alpha = 0 vs the original design's step);
5. ``train-nccl``: ``train.py config=simclr_spatial_resnet18 --gpus 0`` with AMP through NCCL on
   generated dead-leaves images at 224 px, then the same command with two more epochs, which must
   resume from the checkpoint;
6. ``end-to-end``: ``bench/bench_end_to_end.py`` with 4, 8 and 16 data-loader workers (bf16);
7. ``swapopt``: ``bench/bench_swapopt.py`` (swapopt runs on the CPU: its rate on this machine);
8. ``locally-connected``: ``bench/bench_locally_connected.py`` forward + backward at batch 128.

Without CUDA (``--dry-run``, and the test suite), steps 1, 2 and 7 run (7 small) and the others
are recorded as skipped with the reason, so the script cannot rot between GPU runs.  A step that
fails is recorded and the next starts; the exit code is 1 if any step failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the packages `make gpu-wheels` builds: what a GPU machine with its own torch lacks
WHEEL_PACKAGES = (
    "vissl", "classy-vision", "fvcore", "iopath", "hydra-core", "omegaconf", "antlr4-python3-runtime", "yacs",
    "termcolor", "grad-cam", "ttach", "imagecorruptions", "torchattacks", "setuptools",
)


@dataclass
class Step:
    name: str
    limit_s: float
    commands: list[list[str]]
    needs_cuda: bool = True
    status: str = "not run"
    reason: str = ""
    returncode: int | None = None
    seconds: float = 0.0
    numbers: list[str] = field(default_factory=list)


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def build_steps(wheels: Path | None, site: Path, data: Path, dry_run: bool) -> list[Step]:
    steps = []
    if wheels is not None:
        steps.append(Step("install", 120, [
            _python("-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target", str(site),
                    *sorted(str(w) for w in wheels.glob("*.whl"))),
            _python(str(Path(__file__).resolve()), "--check-requirements"),
        ], needs_cuda=False))
    steps.append(Step("environment", 60, [_python("-c", ENVIRONMENT)], needs_cuda=False))
    steps.append(Step("pytest-gpu", 150, [_python("-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider")]))
    bench_step = _python("bench/bench_train_step.py", "--device", "cuda", "--batch", "128", "--image-size", "224",
                         "--neighborhoods", "20000")
    steps.append(Step("train-step", 240, [
        bench_step + ["--amp", "bf16", "--channels-last"],
        bench_step + ["--amp", "bf16"],
        bench_step + ["--amp", "fp16", "--channels-last"],
        bench_step + ["--amp", "fp16"],
        bench_step + ["--amp", "bf16", "--channels-last", "--compile"],
    ]))
    positions = data / "positions224"
    run = data / "nccl_run"
    train = _python("train.py", "config=simclr_spatial_resnet18", "--gpus", "0",
                    f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
                    f"config.DATA.TRAIN.DATA_PATHS=[{data / 'dead_leaves' / 'train'}]",
                    "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=128", "config.DATA.NUM_DATALOADER_WORKERS=8",
                    "config.MODEL.AMP_PARAMS.USE_AMP=true", "config.MODEL.AMP_PARAMS.AMP_TYPE=pytorch",
                    "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=false", "config.LOG_FREQUENCY=10",
                    "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1", f"config.CHECKPOINT.DIR={run}")
    steps.append(Step("train-nccl", 300, [
        _python("scripts/make_demo_dataset.py", "--source", "dead-leaves", "--n-train", "1536", "--n-val", "16",
                "--size", "256", "--out", str(data / "dead_leaves"), "--quiet"),
        _python("scripts/save_retinotopic_positions.py", "--arch", "resnet18", "--out", str(positions), "--quiet"),
        train + ["config.OPTIMIZER.num_epochs=20"],  # 12 iterations of 128 an epoch: 240 iterations
        train + ["config.OPTIMIZER.num_epochs=22"],  # resumes from phase 19: two more epochs
        _python("-c", RESUMED, str(run)),
    ]))
    steps.append(Step("end-to-end", 240, [
        _python("bench/bench_end_to_end.py", "--gpus", "0", "--batch", "128", "--image-size", "224",
                "--config", "simclr_spatial_resnet18", "--workers", "4", "8", "16", "--amp", "bf16"),
    ]))
    steps.append(Step("swapopt", 120, [
        _python("bench/bench_swapopt.py", *(["--reference-windows", "2", "--fast-windows", "4"] if dry_run else
                                            ["--reference-windows", "40", "--fast-windows", "2000"])),
    ], needs_cuda=False))
    steps.append(Step("locally-connected", 90, [
        _python("bench/bench_locally_connected.py", "--device", "cuda", "--batch", "128"),
    ]))
    return steps


ENVIRONMENT = """
import json, platform, torch, torchvision
info = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    info.update(device=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                nccl=".".join(map(str, torch.cuda.nccl.version())))
import vissl, classy_vision, fvcore, hydra
import spacetorch.vissl  # registers the trunks, losses and train step with VISSL
info.update(vissl=vissl.__version__, hydra=hydra.__version__)
print(json.dumps(info))
"""

RESUMED = """
import re, sys
from pathlib import Path
log = (Path(sys.argv[1]) / "log.txt").read_text()
phases = sorted({int(p) for p in re.findall(r"model_final_checkpoint_phase(\\d+)", log)})
assert re.search(r"[Rr]esum", log), "the second run did not say it resumed"
assert Path(sys.argv[1], "model_final_checkpoint_phase21.torch").is_file(), "no final checkpoint of the resumed run"
print(f"resumed: yes; final checkpoints logged for phases {phases}")
"""


def check_requirements() -> int:
    """Every requirement in setup.py, checked against what is importable now (names what is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    text = (REPO / "setup.py").read_text()
    block = text[text.index("install_requires=[") : text.index("],", text.index("install_requires=["))]
    requirements = [Requirement(r) for r in re.findall(r'"([^"]+)"', block)]
    problems = []
    for requirement in requirements:
        try:
            found = version(requirement.name)
        except PackageNotFoundError:
            problems.append(f"{requirement}: not installed")
            continue
        if not requirement.specifier.contains(found, prereleases=True):
            problems.append(f"{requirement}: found {found}")
    print(f"{len(requirements) - len(problems)} of {len(requirements)} requirements of spacetorch met")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


def run_step(step: Step, env: dict[str, str], log: Path, cuda: bool) -> None:
    if step.needs_cuda and not cuda:
        step.status, step.reason = "skipped", "no CUDA device (torch.cuda.is_available() is False)"
        return
    deadline = time.monotonic() + step.limit_s
    start = time.monotonic()
    output = []
    for command in step.commands:
        remaining = deadline - time.monotonic()
        try:
            result = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, timeout=max(remaining, 1), errors="replace")
        except subprocess.TimeoutExpired as err:
            text = err.stdout if isinstance(err.stdout, str) else (err.stdout or b"").decode(errors="replace")
            output.append(f"$ {' '.join(command)}\n{text}")
            step.status, step.reason = "failed", f"over its limit of {step.limit_s:.0f} s"
            break
        output.append(f"$ {' '.join(command)}\n{result.stdout}")
        step.returncode = result.returncode
        if result.returncode != 0:
            step.status, step.reason = "failed", f"exit {result.returncode}: {' '.join(command[1:4])}"
            break
    else:
        step.status = "passed"
    step.seconds = round(time.monotonic() - start, 1)
    text = "\n".join(output)
    # the lines with figures in them (ratios, images/s, attempts/s, ms), for the summary
    step.numbers = [line.strip() for line in text.splitlines() if not line.startswith("$ ")
                    and re.search(r"ms/step|images/s|attempts/s|ratio|x faster|passed|failed|resumed|requirements|\{\"python", line)][-40:]
    with open(log, "a") as f:
        f.write(f"\n===== {step.name}: {step.status} in {step.seconds} s {step.reason}\n{text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu_results"), help="folder for summary.json and gpu_check.log")
    parser.add_argument("--wheels", type=Path, default=None,
                        help="folder of wheels to install first (make gpu-wheels) [default: install nothing]")
    parser.add_argument("--dry-run", action="store_true", help="short settings; the CUDA steps are skipped without a GPU anyway")
    parser.add_argument("--steps", nargs="+", default=None, help="run only these steps (e.g. to rerun a failed one)")
    parser.add_argument("--check-requirements", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check_requirements:
        return check_requirements()
    if args.wheels is not None:
        missing = [name for name in WHEEL_PACKAGES
                   if not any(w.name.lower().startswith(name.replace("-", "_") + "-") for w in args.wheels.glob("*.whl"))]
        if missing:
            parser.error(f"--wheels {args.wheels}: no wheel of {', '.join(missing)} (make gpu-wheels builds them)")
    work = Path(tempfile.mkdtemp(prefix="spacetorch_gpu_check_"))
    site = work / "site"
    steps = build_steps(args.wheels, site, work, args.dry_run)
    if args.steps:
        unknown = sorted(set(args.steps) - {s.name for s in steps})
        if unknown:
            parser.error(f"--steps: unknown {unknown}; the steps are {[s.name for s in steps]}")
        steps = [s for s in steps if s.name in args.steps]
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "gpu_check.log"
    log.write_text("")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    import torch

    cuda = torch.cuda.is_available()
    for step in steps:
        print(f"{step.name} ...", end=" ", flush=True)
        run_step(step, env, log, cuda)
        print(f"{step.status} ({step.seconds} s){': ' + step.reason if step.reason else ''}", flush=True)
        (args.out / "summary.json").write_text(json.dumps([asdict(s) for s in steps], indent=1) + "\n")
    print(f"wrote {args.out / 'summary.json'} and {log}")
    return 1 if any(s.status == "failed" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
