"""Shipped configs compose; bad configs and options stop with a message naming the culprit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from spacetorch.cli.train import prepare
from spacetorch.vissl.config import ConfigError, available_configs, compose, select_gpus, validate

SHIPPED = ["demo_cpu_simclr_spatial_resnet18", "linear_eval_resnet18", "simclr_spatial_resnet18", "supervised_spatial_resnet18"]


def test_shipped_configs_are_listed_and_compose() -> None:
    assert set(SHIPPED) <= set(available_configs())
    for name in SHIPPED:
        cfg = compose([f"config={name}"])
        assert not cfg.OPTIMIZER.get("use_larc", False), f"{name}: LARC needs apex"
        assert "/" not in str(cfg.DATA.TRAIN.DATA_PATHS), f"{name} must take dataset paths from the catalog"


def test_simclr_buffer_params_are_inferred_from_processes_and_batch() -> None:
    cfg = compose(["config=simclr_spatial_resnet18", "config.DISTRIBUTED.NUM_PROC_PER_NODE=3"])
    params = cfg.LOSS.spatial_correlation_simclr_info_nce_loss.buffer_params
    assert params.world_size == 3
    assert params.effective_batch_size == 2 * 128 * 3


def _good(small_positions: Path, small_images: Path) -> list[str]:
    return [
        "config=demo_cpu_simclr_spatial_resnet18",
        f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
    ]


def test_valid_config_passes(small_positions: Path, small_images: Path) -> None:
    validate(compose(_good(small_positions, small_images)))


@pytest.mark.parametrize(
    "override, message",
    [
        ("+config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer5_0=1.0", r"names \['layer5_0'\], which trunk"),
        ("config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer2_0=-1", r"layer_weights.layer2_0 must be a number >= 0"),
        ("config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=/nonexistent/positions", r"position_dir: /nonexistent/positions is not a directory"),
        ("config.DATA.TRAIN.DATA_PATHS=[/nonexistent/images]", r"DATA_PATHS\[0\]: /nonexistent/images does not exist"),
        ("config.TRAINER.TRAIN_STEP_NAME=standard_train_step", r"needs custom_train_step"),
        ("config.OPTIMIZER.use_larc=true", r"LARC needs NVIDIA apex"),
    ],
)
def test_bad_config_is_refused_naming_the_key(small_positions: Path, small_images: Path, override: str, message: str) -> None:
    cfg = compose(_good(small_positions, small_images) + [override])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_layer_weight_missing_for_a_trunk_layer_is_refused(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    partial = tmp_path / "positions"
    partial.mkdir()
    for path in small_positions.iterdir():
        if not path.name.startswith("layer1.0"):
            (partial / path.name).write_bytes(path.read_bytes())
    cfg = compose(_good(partial, small_images) + [f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={partial}"])
    with pytest.raises(ConfigError, match=r"names \['layer1_0'\], which trunk spatial_resnet18 does not output"):
        validate(cfg)


def test_dataset_missing_from_catalog_path_is_named(small_positions: Path) -> None:
    cfg = compose(
        [
            "config=demo_cpu_simclr_spatial_resnet18",
            f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
            "config.DATA.TRAIN.DATASET_NAMES=[no_such_dataset]",
        ]
    )
    with pytest.raises(ConfigError, match="dataset 'no_such_dataset' is not in the dataset catalog"):
        validate(cfg)


def test_missing_identity_head_is_refused(small_positions: Path, small_images: Path) -> None:
    cfg = compose(_good(small_positions, small_images) + ["config.MODEL.HEAD.PARAMS=[[mlp,{dims:[512,128]}]]"])
    with pytest.raises(ConfigError, match=r"\[identity, \{\}\]"):
        validate(cfg)


def test_unknown_config_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="demo_cpu_simclr_spatial_resnet18"):
        compose(["config=no_such_config"])
    with pytest.raises(ConfigError, match="config=<name>"):
        compose(["config.SEED_VALUE=1"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpus_on_a_machine_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(ConfigError, match="--gpus 0,1: this machine has no usable CUDA device"):
        select_gpus("0,1")


@pytest.mark.parametrize("spec", ["a,b", "", "1,1", "-1"])
def test_malformed_gpus_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="--gpus takes"):
        select_gpus(spec)


def test_gpus_outside_cuda_visible_devices_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with pytest.raises(ConfigError, match="names GPU 5, but CUDA_VISIBLE_DEVICES=2,3 makes only 2 visible"):
        select_gpus("0,5")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU fallback happens only without CUDA")
def test_gpu_config_falls_back_to_cpu_with_gloo(small_positions: Path, small_images: Path) -> None:
    overrides = _good(small_positions, small_images) + [
        "config.MACHINE.DEVICE=gpu",
        "config.DISTRIBUTED.BACKEND=nccl",
        "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true",
    ]
    cfg, notices, node_id = prepare(overrides + ["--alpha", "0.5"])
    assert (cfg.MACHINE.DEVICE, cfg.DISTRIBUTED.BACKEND) == ("cpu", "gloo")
    assert cfg.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN is False
    assert any("CUDA is not available" in n for n in notices) and node_id == 0
    assert set(cfg.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.values()) == {0.5}


def test_train_cli_errors_exit_2_with_the_message(capsys: pytest.CaptureFixture[str], small_images: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        prepare(["config=demo_cpu_simclr_spatial_resnet18", "config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=/no/such/dir"])
    assert exit_info.value.code == 2
    assert "train.py: error: config.MODEL.TRUNK.TRUNK_PARAMS.position_dir: /no/such/dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prepare(["config=demo_cpu_simclr_spatial_resnet18", "--import", "/no/such/trunk.py"])
    assert "--import" in capsys.readouterr().err
    assert "/no/such/trunk.py" not in os.environ.get("SPACETORCH_IMPORTS", "")
