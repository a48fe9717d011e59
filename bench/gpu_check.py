"""Every GPU check of spacetorch in one run, for a GPU machine held for a few minutes.

On a machine with Python 3.10+ and its own CUDA torch (and torchvision, timm, numba,
scikit-image), from the checkout's root:

    make gpu-wheels                                    # on a machine with PyPI: .whl/ (~5 MB)
    python bench/gpu_check.py --wheels .whl --out gpu_results    # on the GPU machine

Steps, in this order (the ones no GPU run has measured yet first), each with its own time limit,
each recorded in ``OUT/summary.json`` (status, exit code, seconds, the numbers it printed) and
``OUT/gpu_check.log`` (every step's whole output):

1. ``install``: the packages in ``--wheels`` (VISSL, classy-vision, fvcore, hydra-core, ... built by
   ``make gpu-wheels``) go into a target folder with ``--no-deps``, as the README's "existing
   environment" steps install them, beside the machine's torch (classy-vision last, over the older
   copy inside VISSL's wheel); then every requirement of spacetorch (``setup.py``) is checked
   against what is importable, naming what is missing;
2. ``environment``: torch, CUDA, the device, NCCL, VISSL as imported, CPU cores, ``/dev/shm``;
3. ``swapopt``: ``bench/bench_swapopt.py`` on the GPU: the Triton engine beside numba on every
   ResNet-18 layer, its decisions in float64 against numba's, its float32 agreement, and the
   whole-ResNet-18 time at 5e7 attempts per layer with its floor;
4. ``train-step``: ``bench/bench_train_step.py`` at batch 128, 224 px, 20,000 neighborhoods per
   layer, bf16 and fp16, channels-last on and off (ours vs alpha = 0 vs the original design's step);
5. ``data``: dead-leaves images at 256 px (2,048 training images) and retinotopic positions at 224 px;
6. ``train-nccl``: ``train.py config=simclr_spatial_resnet18 --gpus 0`` with AMP through NCCL on
   the dead-leaves images for 320 iterations (20 epochs), its output streamed, its process group
   killed once phase 3's checkpoint is written, then the same command again, which must go on
   from phase 4 to the end.  Over its limit, the step says how far the run's start got (the
   stages each rank prints: rendezvous, first batch, first step; :func:`startup_reached`);
7. ``pytest-gpu``: ``pytest -m gpu`` over the test files that hold GPU tests;
8. ``end-to-end``: ``bench/bench_end_to_end.py`` with 4, 8 and 16 data-loader workers (bf16);
9. ``locally-connected``: ``bench/bench_locally_connected.py`` forward + backward at batch 128;
10. ``train-step-compile``: the train-step benchmark with ``torch.compile`` (bf16, channels-last;
    ours vs alpha = 0), last, as compiling takes minutes.

``--budget SECONDS`` bounds the whole run (a lent machine's minutes): each step's limit is cut to
what is left, and a step that cannot get 20 s is recorded as skipped.  Without CUDA
(``--dry-run``, and the test suite), the steps that need no GPU run (small) and the others are
recorded as skipped with the reason, so the script cannot rot between GPU runs.  A step that
fails is recorded and the next starts; the exit code is 1 if any step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the packages `make gpu-wheels` builds: what a GPU machine with its own torch lacks
WHEEL_PACKAGES = (
    "vissl", "classy-vision", "fvcore", "iopath", "hydra-core", "omegaconf", "antlr4-python3-runtime", "yacs",
    "termcolor", "grad-cam", "ttach", "imagecorruptions", "torchattacks", "setuptools", "minisom", "h5py",
    "scikit-learn", "joblib", "threadpoolctl", "submitit", "cloudpickle",
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
        pip = _python("-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--target", str(site))
        # VISSL's wheel carries an older classy_vision: classy-vision's own wheel goes into a folder
        # of its own and then over the rest, its package replacing VISSL's copy and its
        # hydra_plugins entry joining VISSL's (pip --target --upgrade would empty the folder)
        classy = [w for w in wheels.glob("*.whl") if w.name.lower().startswith("classy_vision-")]
        steps.append(Step("install", 60, [
            pip + sorted(str(w) for w in wheels.glob("*.whl") if w not in classy),
            pip[:-1] + [str(site) + "-classy", *map(str, classy)],
            _python("-c", OVERLAY, str(site) + "-classy", str(site)),
            _python(str(Path(__file__).resolve()), "--check-requirements"),
        ], needs_cuda=False))
    steps.append(Step("environment", 45, [_python("-c", ENVIRONMENT)], needs_cuda=False))
    steps.append(Step("swapopt", 150, [
        _python("bench/bench_swapopt.py", "--device", "cuda", "--reference-windows", "10", "--windows", "300",
                "--agreement-windows", "100"),
    ]))
    bench_step = _python("bench/bench_train_step.py", "--device", "cuda", "--batch", "128", "--image-size", "224",
                         "--neighborhoods", "20000", "--steps", "30")
    steps.append(Step("train-step", 180, [
        bench_step + ["--amp", "bf16", "--channels-last"],
        bench_step + ["--amp", "bf16"],
        bench_step + ["--amp", "fp16", "--channels-last"],
        bench_step + ["--amp", "fp16"],
    ]))
    images, positions, run = data / "dead_leaves", data / "positions224", data / "nccl_run"
    cores = os.cpu_count() or 1
    steps.append(Step("data", 90, [
        _python("-m", "spacetorch", "demo-data", "--source", "dead-leaves", "--n-train", "64" if dry_run else "2048",
                "--n-val", "0", "--size", "256", "--workers", str(min(cores, 16)), "--out", str(images), "--quiet"),
        _python("-m", "spacetorch", "positions", "--arch", "resnet18", "--out", str(positions), "--quiet",
                *(["--n-neighborhoods", "200"] if dry_run else [])),
    ], needs_cuda=False))
    train = _python("train.py", "config=simclr_spatial_resnet18", "--gpus", "0",
                    f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
                    f"config.DATA.TRAIN.DATA_PATHS=[{images / 'train'}]",
                    "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=128", f"config.DATA.NUM_DATALOADER_WORKERS={min(cores, 12)}",
                    "config.MODEL.AMP_PARAMS.USE_AMP=true", "config.MODEL.AMP_PARAMS.AMP_TYPE=pytorch",
                    "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=false", "config.LOG_FREQUENCY=10",
                    "config.CHECKPOINT.CHECKPOINT_FREQUENCY=1", f"config.CHECKPOINT.DIR={run}")
    steps.append(Step("train-nccl", 200, [
        # 20 epochs of 16 iterations of 128, killed once phase 3's checkpoint is written, resumed
        _python(str(Path(__file__).resolve()), KILL_AND_RESUME, str(run), "3", *train, f"config.OPTIMIZER.num_epochs={EPOCHS}"),
    ]))
    gpu_tests = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py")
                       if "pytest.mark.gpu" in p.read_text())
    steps.append(Step("pytest-gpu", 90, [_python("-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *gpu_tests)]))
    steps.append(Step("end-to-end", 150, [
        _python("bench/bench_end_to_end.py", "--gpus", "0", "--batch", "128", "--image-size", "224",
                "--config", "simclr_spatial_resnet18", "--images", str(images), "--iterations", "30",
                "--workers", "4", "8", "16", "--amp", "bf16"),
    ]))
    steps.append(Step("locally-connected", 45, [
        _python("bench/bench_locally_connected.py", "--device", "cuda", "--batch", "128"),
    ]))
    steps.append(Step("train-step-compile", 240, [
        bench_step + ["--amp", "bf16", "--channels-last", "--compile", "--variants", "alpha=0", "ours"],
    ]))
    return steps


#: epochs of the NCCL training run (16 iterations each), killed after phase 3 and resumed
EPOCHS = 20

#: what train.py prints as each rank's start gets there, in order (spacetorch.vissl.hooks.STARTUP_STAGES:
#: a test keeps the two equal; this script runs before spacetorch's dependencies are installed)
STARTUP_STAGES = ("process group ready", "waiting for the first batch", "first batch read", "first step done")
_WHERE = ("the rendezvous (process group, NCCL) or building the model and data loaders", "the first training phase's start",
          "data loading (the data-loader workers' first batch)", "the first step (forward, backward, NCCL all-reduce)")


def startup_reached(text: str) -> str:
    """How far a ``train.py`` run got, from its output: the last start stage it printed and
    what it was doing after it, or, past its start, the last iteration VISSL logged."""
    if "starting VISSL training" not in text:
        return "train.py never reached VISSL's launch (stalled in its config check or imports)"
    seen = [stage for stage in STARTUP_STAGES if f": {stage}" in text]
    if len(seen) == len(STARTUP_STAGES):
        iterations = re.findall(r"iter: (\d+);", text)
        return f"training had started; last iteration logged: {iterations[-1] if iterations else 'none'}"
    last = seen[-1] if seen else "starting VISSL training"
    return f"stalled after '{last}', in {_WHERE[len(seen)]}"

ENVIRONMENT = """
import json, platform, torch, torchvision
info = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    info.update(device=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
                nccl=".".join(map(str, torch.cuda.nccl.version())))
import vissl, classy_vision, classy_vision.generic.util, fvcore, hydra
import spacetorch.vissl  # registers the trunks, losses and train step with VISSL
import os, shutil
info.update(vissl=vissl.__version__, classy_vision=classy_vision.__version__, classy_vision_file=classy_vision.__file__,
            hydra=hydra.__version__,
            cpu_cores=os.cpu_count(), dev_shm_gib=round(shutil.disk_usage("/dev/shm").total / 2**30, 1))
print(json.dumps(info))
"""

OVERLAY = """
import shutil, sys
from pathlib import Path
source, target = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(target / "classy_vision")
shutil.copytree(source, target, dirs_exist_ok=True)
print("classy-vision's wheel over VISSL's copy:", sorted(p.name for p in (target / "hydra_plugins").iterdir()))
"""

KILL_AND_RESUME = "--kill-and-resume"


#: process groups this process started and has not seen end (killed on SIGTERM)
_GROUPS: set[int] = set()


def run_group(command: list[str], env: dict[str, str], out: Path, limit_s: float, echo: bool = False,
              stop: Callable[[], bool] | None = None) -> tuple[int | None, str]:
    """Run ``command`` in a process group of its own, its output in the file ``out``; kill the
    whole group (data-loader workers and VISSL's ranks included) when ``stop()`` turns true or
    after ``limit_s`` seconds.  Returns ``(exit code, or None after the limit, output)``; with
    ``echo``, the output is also copied to stdout as it comes."""
    deadline = time.monotonic() + limit_s
    with open(out, "wb") as file:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=file, stderr=subprocess.STDOUT, start_new_session=True)
    _GROUPS.add(process.pid)
    shown = 0
    returncode: int | None = None
    try:
        while True:
            returncode = process.poll()
            if echo:
                text = out.read_bytes()[shown:]
                sys.stdout.write(text.decode(errors="replace"))
                sys.stdout.flush()
                shown += len(text)
            if returncode is not None or (stop is not None and stop()):
                break
            if time.monotonic() > deadline:
                _end_group(process.pid, signal.SIGTERM)  # train.py says where it would resume
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    pass
                break
            time.sleep(0.2)
    finally:
        _end_group(process.pid, signal.SIGKILL)  # whatever of the group is left
        process.wait()
        _GROUPS.discard(process.pid)
    return returncode, out.read_bytes().decode(errors="replace")


def _end_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _end_groups_and_exit(signum: int, frame: object) -> None:
    for pgid in list(_GROUPS):
        _end_group(pgid, signal.SIGKILL)
    sys.exit(128 + signum)


def kill_and_resume(run: Path, kill_after: int, command: list[str]) -> int:
    """Start ``command`` (a ``train.py`` run), kill its process group once ``run`` holds the
    checkpoint of phase ``kill_after``, run it again, and check that it went on from there to the
    end (the scaler, optimizer and schedule state come from the checkpoint).  Both runs' output
    goes to stdout as it comes; SIGTERM ends the run in progress with its whole group."""
    signal.signal(signal.SIGTERM, _end_groups_and_exit)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    checkpoint = run / f"model_phase{kill_after}.torch"
    start = time.monotonic()
    code, _ = run_group(command, env, run.parent / "first_run.log", math.inf, echo=True, stop=checkpoint.exists)
    if not checkpoint.exists():
        print(f"\nthe first run ended ({code}) before writing {checkpoint.name}")
        return 1
    print(f"\nkilled the first run {time.monotonic() - start:.0f} s after its start, once {checkpoint.name} was written; "
          "running the same command again", flush=True)
    code, text = run_group(command, env, run.parent / "second_run.log", math.inf, echo=True)
    started = sorted({int(p) for p in re.findall(r"Starting phase (\d+) \[train\]", text)})
    finals = sorted(run.glob("model_final_checkpoint_phase*.torch"))
    ok = code == 0 and bool(started) and started[0] > kill_after and bool(finals)
    print(f"resumed: {'yes' if ok else 'NO'}; the second run trained phases {started}, final checkpoint "
          f"{[f.name for f in finals]}; {time.monotonic() - start:.0f} s for both runs")
    return 0 if ok else 1


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


#: a step that cannot get this many seconds of the --budget is skipped
MIN_STEP_S = 20


def run_step(step: Step, env: dict[str, str], log: Path, cuda: bool, budget_left: float) -> None:
    if step.needs_cuda and not cuda:
        step.status, step.reason = "skipped", "no CUDA device (torch.cuda.is_available() is False)"
        return
    if budget_left < MIN_STEP_S:
        step.status, step.reason = "skipped", f"{budget_left:.0f} s of the --budget left"
        return
    step.limit_s = min(step.limit_s, budget_left)
    deadline = time.monotonic() + step.limit_s
    start = time.monotonic()
    output = []
    for number, command in enumerate(step.commands):
        remaining = deadline - time.monotonic()
        returncode, text = run_group(command, env, log.parent / f".{step.name}.{number}.out", max(remaining, 1))
        (log.parent / f".{step.name}.{number}.out").unlink()
        output.append(f"$ {' '.join(command)}\n{text}")
        if returncode is None:
            step.status, step.reason = "failed", f"over its limit of {step.limit_s:.0f} s"
            if "train.py" in " ".join(command):
                step.reason += f"; {startup_reached(text)}"
            break
        step.returncode = returncode
        if returncode != 0:
            step.status, step.reason = "failed", f"exit {returncode}: {' '.join(command[1:4])}"
            break
    else:
        step.status = "passed"
    step.seconds = round(time.monotonic() - start, 1)
    text = "\n".join(output)
    # the lines with figures in them (ratios, images/s, attempts/s, ms), for the summary
    step.numbers = [line.strip() for line in text.splitlines() if not line.startswith("$ ")
                    and re.search(r"ms/step|images/s|attempts/s|ratio|x faster|forward\+backward|passed|failed|resumed|requirements|"
                              r"^\{\"python|floor|same place|decisions|GFLOP|rank 0: ", line)][-60:]
    with open(log, "a") as f:
        f.write(f"\n===== {step.name}: {step.status} in {step.seconds} s {step.reason}\n{text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [KILL_AND_RESUME]:
        return kill_and_resume(Path(argv[1]), int(argv[2]), argv[3:])
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu_results"), help="folder for summary.json and gpu_check.log")
    parser.add_argument("--wheels", type=Path, default=None,
                        help="folder of wheels to install first (make gpu-wheels) [default: install nothing]")
    parser.add_argument("--dry-run", action="store_true", help="short settings; the CUDA steps are skipped without a GPU anyway")
    parser.add_argument("--steps", nargs="+", default=None, help="run only these steps (e.g. to rerun a failed one)")
    parser.add_argument("--budget", type=float, default=float("inf"),
                        help="seconds for the whole run: each step's limit is cut to what is left [default: no bound]")
    parser.add_argument("--check-requirements", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.check_requirements:
        return check_requirements()
    if args.wheels is not None:
        missing = [name for name in WHEEL_PACKAGES
                   if not any(w.name.lower().startswith(name.replace("-", "_") + "-") for w in args.wheels.glob("*.whl"))]
        if missing:
            parser.error(f"--wheels {args.wheels}: no wheel of {', '.join(missing)} (make gpu-wheels builds them)")
    with tempfile.TemporaryDirectory(prefix="spacetorch_gpu_check_") as tmp:
        return run_steps(parser, args, Path(tmp), started)


def run_steps(parser: argparse.ArgumentParser, args: argparse.Namespace, work: Path, started: float) -> int:
    """Run the chosen steps with installs and scratch files under ``work`` (removed by the caller)."""
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
        run_step(step, env, log, cuda, args.budget - (time.monotonic() - started))
        print(f"{step.status} ({step.seconds} s){': ' + step.reason if step.reason else ''}", flush=True)
        (args.out / "summary.json").write_text(json.dumps([asdict(s) for s in steps], indent=1) + "\n")
    print(f"wrote {args.out / 'summary.json'} and {log}")
    return 1 if any(s.status == "failed" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
