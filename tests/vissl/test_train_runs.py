"""Real VISSL training runs through ``python train.py`` on the CPU (small images, few steps)."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from spacetorch.data import make_demo_image_folder
from spacetorch.models.checkpoints import load_trunk
from spacetorch.vissl.hooks import STARTUP_STAGES

from output_states import dead_pid
from train_helpers import IMAGE_SIZE, SHORT_RUN, TRAIN_PY, run_train, small_run_overrides, start_train_until

SPATIAL_LINE = re.compile(r"Iteration (\d+): task loss ([\d.]+); spatial loss (.*)")


def _spatial_log(stdout: str) -> dict[int, dict[str, float]]:
    """``{iteration: {layer: spatial loss}}`` from the train step's log lines."""
    logged = {}
    for match in SPATIAL_LINE.finditer(stdout):
        pairs = (item.split() for item in match.group(3).split(", "))
        logged[int(match.group(1))] = {key: float(value) for key, value in pairs}
    return logged


def _check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"train.py failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


@pytest.mark.slow
def test_one_process_trains_and_writes_a_vissl_checkpoint(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    ckpt_dir = tmp_path / "ckpt"
    overrides = small_run_overrides(small_positions, small_images, ckpt_dir)
    overrides.remove("config.DATA.NUM_DATALOADER_WORKERS=0")  # the real forkserver workers
    overrides.remove("config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=false")
    orientation_map = "config.HOOKS.TENSORBOARD_SETUP.ORIENTATION_MAP"
    result = run_train(
        overrides
        + [
            "config.DATA.NUM_DATALOADER_WORKERS=1",
            f"{orientation_map}.EVERY_N_ITERATIONS=3",
            f"{orientation_map}.IMAGE_SIZE={IMAGE_SIZE}",
            f"{orientation_map}.SPATIAL_FREQUENCIES=[4,8]",
        ],
        cwd=tmp_path,
    )
    _check(result)
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == list(range(6)), "6 steps (48 images, batch 8), each logging its spatial losses"
    assert set(logged[0]) == {f"layer{s}_{b}" for s in range(1, 5) for b in range(2)}
    assert (ckpt_dir / "log.txt").read_text().count("spatial loss layer1_0") == 6
    events = EventAccumulator(str(ckpt_dir / "tb_logs"), size_guidance={"images": 0})
    events.Reload()
    assert "Spatial_Loss/layer2_0" in events.Tags()["scalars"]
    maps = events.Images("Orientation_Map/layer2_0")
    assert [m.step for m in maps] == [0, 3] and maps[0].width > 100

    final = ckpt_dir / "model_final_checkpoint_phase0.torch"
    checkpoint = torch.load(final, map_location="cpu", weights_only=True)
    model_state = checkpoint["classy_state_dict"]["base_model"]["model"]
    trunk = model_state["trunk"]
    assert trunk and all(k.startswith("base_model.") for k in trunk)
    assert set(model_state["heads"])  # the projection head's weights
    resnet = torchvision.models.resnet18(weights=None)
    missing, unexpected = resnet.load_state_dict(
        {k[len("base_model."):]: v for k, v in trunk.items()}, strict=False
    )
    assert set(missing) == {"fc.weight", "fc.bias"} and not unexpected
    torch.testing.assert_close(resnet.conv1.weight, trunk["base_model.conv1.weight"])
    # the project's loader gives the same network
    resnet.fc = torch.nn.Identity()
    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(load_trunk(final)(x), resnet.eval()(x))


@pytest.mark.slow
def test_relative_checkpoint_dir_gets_a_working_latest_checkpoint_link(
    small_positions: Path, small_images: Path, tmp_path: Path
) -> None:
    overrides = small_run_overrides(small_positions, small_images, Path("ckpt"))
    overrides[overrides.index("config.OPTIMIZER.num_epochs=1")] = "config.OPTIMIZER.num_epochs=2"
    overrides.append("config.DATA.TRAIN.DATA_LIMIT=16")
    result = run_train(overrides, cwd=tmp_path)
    _check(result)
    link = tmp_path / "ckpt" / "checkpoint.torch"
    assert link.is_symlink() and link.resolve() == (tmp_path / "ckpt" / "model_final_checkpoint_phase1.torch")
    assert "Error in symlink" not in result.stdout + result.stderr
    again = run_train(overrides, cwd=tmp_path)
    _check(again)
    assert "training already finished" in again.stdout and "Starting phase" not in again.stdout


@pytest.mark.slow
def test_two_processes_train_with_gloo(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    ckpt_dir = tmp_path / "ckpt"
    overrides = small_run_overrides(small_positions, small_images, ckpt_dir)
    result = run_train(overrides + ["config.DISTRIBUTED.NUM_PROC_PER_NODE=2"], cwd=tmp_path)
    _check(result)
    assert sorted(_spatial_log(result.stdout)) == [0, 1, 2], "48 images / (2 ranks x 8) = 3 steps"
    for rank in (0, 1):  # each rank says how far its start got, in order: a stall shows where
        said = re.findall(rf"^train\.py: rank {rank}: (.+?)[ (;]*(?:\(|$)", result.stdout, flags=re.MULTILINE)
        reached = [stage for line in said for stage in STARTUP_STAGES if line.startswith(stage)]
        assert reached == list(STARTUP_STAGES), (rank, said)
    assert "rank 0: process group ready (gloo, 2 process(es))" in result.stdout
    saved = (ckpt_dir / "train_config.yaml").read_text()
    assert "effective_batch_size: 32" in saved and "world_size: 2" in saved
    assert (ckpt_dir / "model_final_checkpoint_phase0.torch").is_file()


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    ckpt_dir = tmp_path / "ckpt"
    overrides = small_run_overrides(small_positions, small_images, ckpt_dir)
    overrides[overrides.index("config.OPTIMIZER.num_epochs=1")] = "config.OPTIMIZER.num_epochs=3"
    first = start_train_until(overrides, tmp_path, ckpt_dir / "model_phase0.torch")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not (ckpt_dir / "model_final_checkpoint_phase2.torch").exists()

    # what a kill during a checkpoint save leaves: removed at the next start, never resumed from
    orphan = ckpt_dir / f".model_phase1.torch.{dead_pid()}.partial.tmp"
    orphan.write_bytes(b"PK\x03\x04 half a checkpoint")
    second = run_train(overrides, cwd=tmp_path)
    _check(second)
    assert f"removed 1 partial checkpoint file(s) of an earlier run that was killed while saving: {orphan.name}" in second.stdout
    assert not orphan.exists()
    assert "Starting phase 0 [train]" not in second.stdout, "phase 0 was trained again"
    assert "Starting phase 2 [train]" in second.stdout
    final = ckpt_dir / "model_final_checkpoint_phase2.torch"
    assert final.is_file()

    # the schedule is restored, not restarted: the learning rate goes on along the cosine of the
    # whole run (6 iterations per epoch, 18 in all) and the iteration count carries on; the
    # checkpoints hold the optimizer's momentum buffers, which a resume loads with the weights
    rates = {int(i): float(lr) for i, lr in re.findall(r"iter: (\d+); lr: ([\d.e-]+);", (tmp_path / "train.stdout").read_text())}
    resumed = {int(i): float(lr) for i, lr in re.findall(r"iter: (\d+); lr: ([\d.e-]+);", second.stdout)}
    start = rates[0]
    assert min(resumed) >= 6
    for i, lr in resumed.items():
        assert lr == pytest.approx(start * (1 + math.cos(math.pi * i / 18)) / 2, abs=1e-5), i  # logged to 5 decimals
    saved = torch.load(final, map_location="cpu", weights_only=True)
    assert saved["iteration"] == 18 and saved["phase_idx"] == 2
    momentum = saved["classy_state_dict"]["optimizer"]["optim"]["state"]
    assert momentum and all("momentum_buffer" in state for state in momentum.values())


USER_TRUNK = '''
from typing import Any, Dict, List, Union

import torch
import torch.nn as nn
from torchvision.models.resnet import resnet18
from vissl.models.model_helpers import Identity
from vissl.models.trunks import register_model_trunk

from spacetorch.models.positions import LayerPositions, NetworkPositions


@register_model_trunk("eshednet_test")
class EshedNet(nn.Module):
    def __init__(self, model_config, model_name):
        super().__init__()
        network_positions = NetworkPositions.load_from_dir(model_config.TRUNK.TRUNK_PARAMS.position_dir)
        network_positions.to_torch()
        self.positions: Dict[str, LayerPositions] = network_positions.layer_positions
        self.base_model = resnet18()
        self.base_model.fc = Identity()

    def forward(self, x, out_feat_keys: List[str] = None) -> List[Union[torch.Tensor, Dict[str, Any]]]:
        m = self.base_model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        outputs = {}
        for stage in (1, 2, 3, 4):
            for block in (0, 1):
                x = getattr(m, f"layer{stage}")[block](x)
                outputs[f"layer{stage}_{block}"] = (x, self.positions[f"layer{stage}.{block}"])
        return [torch.flatten(m.avgpool(x), 1), outputs]
'''


@pytest.mark.slow
def test_a_users_own_trunk_trains_with_the_spatial_loss(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    trunk_file = tmp_path / "my_trunks.py"
    trunk_file.write_text(USER_TRUNK)
    overrides = small_run_overrides(small_positions, small_images, tmp_path / "ckpt")
    result = run_train(
        overrides + ["config.MODEL.TRUNK.NAME=eshednet_test", "config.DISTRIBUTED.NUM_PROC_PER_NODE=2", "--import", str(trunk_file)],
        cwd=tmp_path,
    )
    _check(result)
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == [0, 1, 2] and len(logged[0]) == 8


@pytest.mark.slow
def test_spatial_loss_goes_down_with_alpha(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    overrides = small_run_overrides(small_positions, small_images, tmp_path / "ckpt")
    overrides[overrides.index("config.OPTIMIZER.num_epochs=1")] = "config.OPTIMIZER.num_epochs=6"
    overrides += [
        "config.CHECKPOINT.CHECKPOINT_FREQUENCY=100",
        "config.OPTIMIZER.param_schedulers.lr.auto_lr_scaling.auto_scale=false",
        "config.OPTIMIZER.param_schedulers.lr.start_value=0.1",
        "config.OPTIMIZER.param_schedulers.lr.end_value=0.1",
        # average 4 neighborhoods a layer and step: a less noisy log
        "config.LOSS.spatial_correlation_simclr_info_nce_loss.neighborhoods_per_batch=4",
    ]
    result = run_train(overrides + ["--alpha", "25"], cwd=tmp_path)
    _check(result)
    logged = _spatial_log(result.stdout)
    assert len(logged) == 36
    mean_sl: list[float] = [sum(v.values()) / len(v) for _, v in sorted(logged.items())]
    start, end = sum(mean_sl[:6]) / 6, sum(mean_sl[-6:]) / 6
    assert end < start - 0.02, f"mean spatial loss went from {start:.3f} to {end:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize(
    "processes, signum, to_group",
    [(1, signal.SIGINT, True), (2, signal.SIGTERM, False)],
    ids=["Ctrl-C to the terminal's process group, 1 process", "SIGTERM to train.py alone, 2 ranks"],
)
def test_interrupted_training_fails_and_says_where_it_resumes(
    small_positions: Path, small_images: Path, tmp_path: Path, processes: int, signum: int, to_group: bool
) -> None:
    ckpt_dir = tmp_path / "ckpt"
    overrides = small_run_overrides(small_positions, small_images, ckpt_dir)
    overrides[overrides.index("config.OPTIMIZER.num_epochs=1")] = "config.OPTIMIZER.num_epochs=100"
    overrides[overrides.index("config.DATA.NUM_DATALOADER_WORKERS=0")] = "config.DATA.NUM_DATALOADER_WORKERS=2"
    overrides.append(f"config.DISTRIBUTED.NUM_PROC_PER_NODE={processes}")
    run = start_train_until(overrides, tmp_path, ckpt_dir / "model_phase0.torch")
    try:
        os.killpg(run.pid, signum) if to_group else os.kill(run.pid, signum)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    stdout, stderr = (tmp_path / "train.stdout").read_text(), (tmp_path / "train.stderr").read_text()
    name = signal.Signals(signum).name
    assert run.returncode == 128 + signum, stderr[-3000:]
    assert f"train.py: interrupted by {name}; training did not finish. Run the same command again to resume from {ckpt_dir}/model_phase" in stderr
    assert "All Done" not in stdout + stderr
    assert [p.name for p in ckpt_dir.iterdir() if p.name.startswith(".")] == [], "a partial checkpoint was left"
    assert not list(ckpt_dir.glob("model_final_checkpoint_*"))


def _damage_one_image(images: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the training images in which one JPEG is cut short; returns (folder, image)."""
    import shutil

    train = tmp_path / "images" / "train"
    shutil.copytree(images / "train", train)
    bad = sorted(train.glob("*/*.jpg"))[5]
    bad.write_bytes(bad.read_bytes()[:400])
    return train, bad


@pytest.mark.slow
def test_a_damaged_training_image_is_named(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    """Read by a data-loader worker, the damaged image is named, and train.py then exits: it does
    not wait on the other worker (on a cluster, until the scheduler kills the job)."""
    train, bad = _damage_one_image(small_images, tmp_path)
    overrides = small_run_overrides(small_positions, small_images, tmp_path / "ckpt")
    overrides[overrides.index(f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]")] = f"config.DATA.TRAIN.DATA_PATHS=[{train}]"
    overrides[overrides.index("config.DATA.NUM_DATALOADER_WORKERS=0")] = "config.DATA.NUM_DATALOADER_WORKERS=2"
    result = run_train(overrides, cwd=tmp_path, timeout=150)
    assert result.returncode != 0
    assert f"UnreadableImageError: {bad}: cannot read this train image (OSError: " in result.stderr
    assert f"spacetorch check-images {train}" in result.stderr
    assert "++config.DATA.TRAIN.SKIP_UNREADABLE_IMAGES=true" in result.stderr


@pytest.mark.slow
def test_damaged_images_can_be_skipped_with_a_warning_naming_each(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    train, bad = _damage_one_image(small_images, tmp_path)
    overrides = small_run_overrides(small_positions, small_images, tmp_path / "ckpt")
    overrides[overrides.index(f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]")] = f"config.DATA.TRAIN.DATA_PATHS=[{train}]"
    result = run_train(overrides + ["++config.DATA.TRAIN.SKIP_UNREADABLE_IMAGES=true"], cwd=tmp_path)
    _check(result)
    assert f"skipping unreadable image {bad} (OSError: " in result.stdout + result.stderr
    assert sorted(_spatial_log(result.stdout)) == list(range(6)), "48 images / 8 = 6 steps, none lost"


@pytest.mark.slow
def test_trains_on_swap_optimised_positions_and_alpha_0_logs_every_layers_spatial_loss(
    small_model_files, small_images: Path, tmp_path: Path
) -> None:
    """The swapopt pipeline's last step: train.py with position_dir pointing at swapopt's output;
    with alpha 0 the spatial loss of every layer is still measured and logged."""
    from spacetorch.cli.swapopt import main as swapopt

    checkpoint, positions = small_model_files
    swapped = tmp_path / "swapped"
    assert swapopt(["--checkpoint", str(checkpoint), "--positions", str(positions), "--attempts", "5000",
                    "--out", str(swapped), "--figure", str(tmp_path / "swap.png"), "--n-neighborhoods", "400",
                    "--image-size", str(IMAGE_SIZE), "--spatial-frequencies", "2", "4", "8", "16",
                    "--device", "cpu", "--quiet", "--exclude-border", "1"]) == 0
    result = run_train(small_run_overrides(swapped, small_images, tmp_path / "ckpt") + ["--alpha", "0"], cwd=tmp_path)
    _check(result)
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == list(range(6))
    assert all(len(layers) == 8 and all(0 <= v <= 1 for v in layers.values()) for layers in logged.values())


@pytest.mark.slow
def test_the_map_demo_config_trains_the_supervised_tdann_on_layer2(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    """make run's config (112 px there; 64 px here): cross-entropy on the photograph classes and the
    spatial loss on layer2.0 and layer2.1 only; the checkpoint loads back as a ResNet-18 trunk."""
    ckpt = tmp_path / "ckpt"
    result = run_train([
        "config=demo_cpu_supervised_spatial_resnet18", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.0.size={IMAGE_SIZE}",
        "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8", "config.LOG_FREQUENCY=1", "config.OPTIMIZER.num_epochs=1",
        "config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=false", f"config.CHECKPOINT.DIR={ckpt}",
    ], cwd=tmp_path)
    _check(result)
    assert "layer weights: layer1_0 0, layer1_1 0, layer2_0 15, layer2_1 15, layer3_0 0" in result.stdout
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == list(range(6))  # 48 images, batch 8
    assert all(math.isfinite(v) for step in logged.values() for v in step.values())
    load_trunk(ckpt / "model_final_checkpoint_phase0.torch", "resnet18")



@pytest.mark.slow
def test_the_simclr_map_config_trains_on_whole_photographs(small_positions: Path, tmp_path: Path) -> None:
    """make run-simclr's config (112 px there; 64 px here): SimCLR on views cropped on the fly from
    whole photographs, the spatial loss on layer2 and layer4 only; the checkpoint loads back."""
    photos = make_demo_image_folder(tmp_path / "photos", n_train=24, n_val=0, size=96, whole=True)
    ckpt = tmp_path / "ckpt"
    result = run_train([
        "config=demo_cpu_simclr_map_resnet18", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{photos / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",
        "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8", "config.LOG_FREQUENCY=1", "config.OPTIMIZER.num_epochs=1",
        "config.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD=false", f"config.CHECKPOINT.DIR={ckpt}",
    ], cwd=tmp_path)
    _check(result)
    assert ("layer weights: layer1_0 0, layer1_1 0, layer2_0 5, layer2_1 5, layer3_0 0, layer3_1 0, layer4_0 5, "
            "layer4_1 5") in result.stdout
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == list(range(3))  # 24 photographs, batch 8
    assert all(math.isfinite(v) for step in logged.values() for v in step.values())
    load_trunk(ckpt / "model_final_checkpoint_phase0.torch", "resnet18")

def test_slurm_arguments_place_each_node_and_a_shared_rendezvous() -> None:
    from spacetorch.cli._slurm import node_arguments

    first = node_arguments(["config=x"], nodes=2, gpus_per_node=8, node=0, first_host="gpu17", job_id="4242")
    second = node_arguments(["config=x"], nodes=2, gpus_per_node=8, node=1, first_host="gpu17", job_id="4242")
    assert first[-2:] == ["--node-id", "0"] and second[-2:] == ["--node-id", "1"]
    assert first[:-2] == second[:-2], "every node gets the same rendezvous"
    assert "config.DISTRIBUTED.NUM_PROC_PER_NODE=8" in first and "config.DISTRIBUTED.NUM_NODES=2" in first
    assert any(a.startswith("config.DISTRIBUTED.RUN_ID=gpu17:") for a in first)
    assert node_arguments(["config=x"], 1, 0, 0, "h", "1") == ["config=x", "--node-id", "0"]


def _free_port_job_id() -> str:
    """A job id whose rendezvous port (as ``node_arguments`` derives it) is free here."""
    import socket
    import zlib

    for number in range(1000, 2000):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", 20000 + zlib.crc32(str(number).encode()) % 20000))
            except OSError:
                continue
            return str(number)
    raise RuntimeError("no free port")


@pytest.mark.slow
def test_two_nodes_train_one_model_through_the_rendezvous_a_slurm_job_gives_them(
    small_positions: Path, small_images: Path, tmp_path: Path
) -> None:
    """What each task of a two-node job runs, run here as two processes: node 1 joins node 0's
    rendezvous, the data is split between the two ranks, and node 0 writes the model."""
    from spacetorch.cli._slurm import node_arguments

    ckpt = tmp_path / "ckpt"
    argv = small_run_overrides(small_positions, small_images, ckpt)
    job = _free_port_job_id()
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    nodes = []
    for node in (0, 1):
        (tmp_path / f"node{node}").mkdir()
        with open(tmp_path / f"node{node}" / "out.txt", "w") as out:
            nodes.append(subprocess.Popen(
                [sys.executable, str(TRAIN_PY), *node_arguments(argv, 2, 0, node, "127.0.0.1", job)],
                cwd=tmp_path / f"node{node}", env=env, stdout=out, stderr=subprocess.STDOUT,
            ))
    try:
        codes = [run.wait(timeout=300) for run in nodes]
    finally:
        for run in nodes:
            run.kill()
    logs = [(tmp_path / f"node{node}" / "out.txt").read_text() for node in (0, 1)]
    assert codes == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert "'num_replicas': 2, 'rank': 0" in logs[0], logs[0][-3000:]
    assert sorted(_spatial_log(logs[0])) == [0, 1, 2], "48 images in batches of 8 on each of two ranks: 3 steps, not 6"
    load_trunk(ckpt / "model_final_checkpoint_phase0.torch", "resnet18")


@pytest.mark.slow
def test_a_slurm_submission_trains_through_submitits_local_executor(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    """--slurm checks the config, submits, returns at once; the job (here on this machine) trains."""
    ckpt_dir = tmp_path / "ckpt"
    result = run_train(
        [*small_run_overrides(small_positions, small_images, ckpt_dir), "--slurm", "--slurm-cluster", "local", "--gpus-per-node", "0"],
        cwd=tmp_path,
    )
    _check(result)
    assert "submitted job" in result.stdout and f"its logs: {ckpt_dir / 'slurm'}" in result.stdout
    deadline = time.monotonic() + 240
    final = ckpt_dir / "model_final_checkpoint_phase0.torch"
    while not final.exists() and time.monotonic() < deadline:
        time.sleep(2)
    logs = "".join(p.read_text() for p in (ckpt_dir / "slurm").glob("*.out")) if (ckpt_dir / "slurm").is_dir() else ""
    assert final.exists(), logs[-3000:]
    load_trunk(final, "resnet18")


@pytest.mark.slow
def test_a_checkpoint_folder_another_run_is_writing_is_refused(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    """The other run is this test's process, alive, holding the folder's lock."""
    import socket

    ckpt_dir = tmp_path / "ckpt"
    lock = tmp_path / ".ckpt.lock"
    lock.write_text(f"{os.getpid()}@{socket.gethostname()}")
    result = run_train(small_run_overrides(small_positions, small_images, ckpt_dir), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1].startswith(
        f"train.py: error: config.CHECKPOINT.DIR {ckpt_dir} is being written by another spacetorch command (process {os.getpid()}")
    assert not ckpt_dir.exists() and lock.read_text().startswith(f"{os.getpid()}@")


@pytest.mark.slow
def test_a_topographic_vit_trains_from_its_shipped_config(small_images: Path, tmp_path: Path) -> None:
    """The ViT demo config: SimCLR + the spatial loss on every block's patch tokens, one CPU
    process, a VISSL checkpoint holding the ViT's weights."""
    from spacetorch.models import retinotopic_positions

    positions = tmp_path / "vit_positions"
    retinotopic_positions("vit_tiny_patch16_224", n_neighborhoods=50, input_size=IMAGE_SIZE).save(positions)
    ckpt_dir = tmp_path / "ckpt"
    overrides = ["config=demo_cpu_simclr_spatial_vit_tiny", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
                 f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",
                 "config.HOOKS.TENSORBOARD_SETUP.ORIENTATION_MAP.IMAGE_SIZE=64", *SHORT_RUN, "config.OPTIMIZER.num_epochs=1",
                 f"config.CHECKPOINT.DIR={ckpt_dir}"]  # fmt: skip
    result = run_train(overrides, cwd=tmp_path)
    _check(result)
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == list(range(6)), "48 images / 8 = 6 steps"
    assert list(logged[0]) == [f"blocks_{i}" for i in range(12)]
    assert all(0 < value < 2 for losses in logged.values() for value in losses.values())
    state = torch.load(ckpt_dir / "model_final_checkpoint_phase0.torch", weights_only=True, map_location="cpu")
    trunk = state["classy_state_dict"]["base_model"]["model"]["trunk"]
    assert any(key.endswith("blocks.11.mlp.fc2.weight") for key in trunk)


@pytest.mark.slow
def test_a_topographic_vit_trains_with_dino_from_its_shipped_config(small_images: Path, tmp_path: Path) -> None:
    """The DINO demo config: the spatial loss on every block and DINO's loss on the class token;
    the checkpoint holds the teacher, an average of the student's weights, and DINO's centre."""
    from spacetorch.models import retinotopic_positions

    positions = tmp_path / "vit_positions"
    retinotopic_positions("vit_tiny_patch16_224", n_neighborhoods=50, input_size=IMAGE_SIZE).save(positions)
    ckpt_dir = tmp_path / "ckpt"
    overrides = ["config=demo_cpu_dino_spatial_vit_tiny", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
                 f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",
                 *SHORT_RUN, "config.OPTIMIZER.num_epochs=1", f"config.CHECKPOINT.DIR={ckpt_dir}"]  # fmt: skip
    result = run_train(overrides, cwd=tmp_path)
    _check(result)
    logged = _spatial_log(result.stdout)
    assert sorted(logged) == list(range(6)), "48 images / 8 = 6 steps"
    assert list(logged[0]) == [f"blocks_{i}" for i in range(12)]
    state = torch.load(ckpt_dir / "model_final_checkpoint_phase0.torch", weights_only=True, map_location="cpu")["classy_state_dict"]
    student = state["base_model"]["model"]["trunk"]["base_model.blocks.3.attn.qkv.weight"]
    teacher = state["loss"]["momentum_teacher.trunk.base_model.blocks.3.attn.qkv.weight"]
    assert 0 < (teacher - student).abs().max() < student.abs().max()  # moved, but only part of the way
    assert state["loss"]["center"].abs().sum() > 0
    trunk = load_trunk(ckpt_dir / "model_final_checkpoint_phase0.torch", "vit_tiny_patch16_224")
    torch.testing.assert_close(trunk.blocks[3].attn.qkv.weight.detach(), student)  # the student, not the teacher
