"""Shipped configs compose; bad configs and options stop with a message naming the culprit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from spacetorch.cli.train import prepare
from spacetorch.models import create_model, model_info
from spacetorch.vissl.config import ConfigError, available_configs, compose, select_gpus, validate

from train_helpers import IMAGE_SIZE

SHIPPED = [
    "demo_cpu_simclr_spatial_resnet18", "demo_cpu_supervised_spatial_resnet18", "linear_eval_resnet18", "simclr_spatial_resnet18", "supervised_spatial_resnet18",
    "simclr_spatial_tdresnet18", "demo_cpu_simclr_spatial_tdresnet18", "supervised_tdresnet50", "simclr_spatial_v1_resnet50",
    "supervised_v1_resnet50", "finetune_v1_resnet50", "simclr_spatial_topdown_cifar", "supervised_tdconvnext_tiny",
    "demo_cpu_simclr_map_resnet18", "simclr_spatial_vit_tiny", "demo_cpu_simclr_spatial_vit_tiny",
    "dino_spatial_vit_tiny", "demo_cpu_dino_spatial_vit_tiny", "simclr_spatial_vit_base_patch32",
    *(f"supervised_{kind}_{size}" for kind in ("topdown", "bottomup") for size in ("mnist", "fashion_mnist", "cifar", "imagenette")),
]


def _first_head_width(params: object) -> int:
    """The input width of a VISSL head list's first mlp (SimCLR's nested or a supervised one)."""
    if not isinstance(params, (str, dict)) and hasattr(params, "__len__"):
        items = list(params)  # type: ignore[call-overload]
        if len(items) == 2 and items[0] == "mlp":
            return int(items[1]["dims"][0])
        return _first_head_width(items[0])
    raise AssertionError(f"no mlp head in {params!r}")


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.startswith(("supervised_topdown", "supervised_bottomup", "simclr_spatial_topdown"))])
def test_the_head_takes_what_the_trunk_gives(name: str) -> None:
    cfg = compose([f"config={name}"])
    arch = cfg.MODEL.TRUNK.TRUNK_PARAMS.model
    info = model_info(arch)
    trunk = create_model(arch, headless=True).eval()
    with torch.no_grad():
        features = trunk(torch.rand(1, info.in_chans, info.input_size, info.input_size))
    assert features.shape[1] == _first_head_width(cfg.MODEL.HEAD.PARAMS), (name, arch)


def test_shipped_configs_are_listed_and_compose() -> None:
    from spacetorch.vissl.config import check_types

    assert set(SHIPPED) == set(available_configs())  # a new config is listed here, so it is checked
    for name in SHIPPED:
        cfg = compose([f"config={name}"])
        check_types(cfg)  # every value of the kind VISSL's defaults give it
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
        f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",  # the size the positions were made for
    ]


def test_valid_config_passes(small_positions: Path, small_images: Path) -> None:
    validate(compose(_good(small_positions, small_images)))


@pytest.mark.parametrize(
    "override, message",
    [
        ("+config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer5_0=1.0", r"names \['layer5_0'\], which trunk"),
        ("config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer2_0=-1", r"layer_weights.layer2_0 must be a finite number >= 0"),
        ("config.MODEL.TRUNK.TRUNK_PARAMS.position_dir=/nonexistent/positions", r"position_dir: /nonexistent/positions is not a directory"),
        ("config.DATA.TRAIN.DATA_PATHS=[/nonexistent/images]", r"DATA_PATHS\[0\]: /nonexistent/images does not exist"),
        ("config.TRAINER.TRAIN_STEP_NAME=standard_train_step", r"needs custom_train_step"),
        ("config.OPTIMIZER.use_larc=true", r"LARC needs NVIDIA apex"),
        ("config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer2_0=nan", r"layer_weights.layer2_0 must be a finite number >= 0 \(0: no topography\), got nan"),
        ("config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer2_0=inf", r"layer_weights.layer2_0 must be a finite number >= 0 \(0: no topography\), got inf"),
        ("config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=1", r"BATCHSIZE_PER_REPLICA is 1; the spatial loss .* needs at least 2"),
        ("config.LOSS.spatial_correlation_simclr_info_nce_loss.neighborhoods_per_batch=0", r"neighborhoods_per_batch must be an integer >= 1"),
        ("config.LOSS.spatial_correlation_simclr_info_nce_loss.neighborhoods_per_batch=2.5", r"neighborhoods_per_batch must be an integer >= 1 .*got 2.5"),
        ("config.MODEL.WEIGHTS_INIT.PARAMS_FILE=/no/such/weights.torch", r"PARAMS_FILE: checkpoint /no/such/weights.torch does not exist"),
        ("config.OPTIMIZER.num_epochs=abc", r"config.OPTIMIZER.num_epochs is 'abc'; expected a whole number \(VISSL's default: 90\)"),
        ("config.OPTIMIZER.num_epochs=2.5", r"config.OPTIMIZER.num_epochs is 2.5; expected a whole number"),
        ("config.OPTIMIZER.num_epochs=0", r"config.OPTIMIZER.num_epochs is 0; expected a whole number >= 1"),
        ("config.OPTIMIZER.weight_decay=lots", r"config.OPTIMIZER.weight_decay is 'lots'; expected a number"),
        ("config.DATA.TRAIN.DROP_LAST=3", r"config.DATA.TRAIN.DROP_LAST is 3; expected true or false"),
        ("config.DATA.NUM_DATALOADER_WORKERS=-1", r"config.DATA.NUM_DATALOADER_WORKERS is -1; expected a whole number >= 0"),
    ],
)
def test_bad_config_is_refused_naming_the_key(small_positions: Path, small_images: Path, override: str, message: str) -> None:
    cfg = compose(_good(small_positions, small_images) + [override])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_layer_weight_missing_for_a_trunk_layer_is_refused(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    partial = tmp_path / "positions"
    partial.mkdir()
    for path in small_positions.iterdir():  # a hand-made subset (no manifest)
        if not path.name.startswith("layer1.0") and path.name != "manifest.json":
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
            f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",
        ]
    )
    with pytest.raises(ConfigError, match="dataset 'no_such_dataset' is not in the dataset catalog"):
        validate(cfg)


def test_positions_made_for_another_image_size_are_refused(small_positions: Path, small_images: Path) -> None:
    overrides = _good(small_positions, small_images)
    cfg = compose([o for o in overrides if "TRANSFORMS" not in o])  # the config's 224 px crops
    with pytest.raises(ConfigError) as raised:
        validate(cfg)
    message = str(raised.value)
    assert f"the positions in {small_positions} were made for another image size: layer 'layer1.0' has dims (64, 16, 16)" in message
    assert "at the training size, 224 px (config.DATA.TRAIN.TRANSFORMS), resnet18 gives it (64, 56, 56)" in message
    assert message.endswith("`spacetorch positions --arch resnet18 --input-size 224`")


@pytest.mark.parametrize("images, batch, processes, found", [(0, 8, 1, 0), (5, 8, 1, 5), (12, 8, 2, 12)])
def test_a_training_folder_with_fewer_images_than_one_batch_is_refused(
    small_positions: Path, tmp_path: Path, images: int, batch: int, processes: int, found: int
) -> None:
    from PIL import Image

    (tmp_path / "train" / "cat").mkdir(parents=True)
    for i in range(images):
        Image.new("RGB", (8, 8)).save(tmp_path / "train" / "cat" / f"{i}.png")
    cfg = compose([
        "config=demo_cpu_simclr_spatial_resnet18", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}",
        f"config.DATA.TRAIN.DATA_PATHS=[{tmp_path / 'train'}]", f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}",
        f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch}", f"config.DISTRIBUTED.NUM_PROC_PER_NODE={processes}",
        "config.DATA.TRAIN.DROP_LAST=true",
    ])
    with pytest.raises(ConfigError, match=rf"holds {found} image\(s\), fewer than one batch of "
                                          rf"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA {batch} x {processes} process\(es\) = {batch * processes}"):
        validate(cfg)


def test_a_config_that_fails_its_check_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the demo config's CHECKPOINT.DIR and position_dir are relative
    with pytest.raises(SystemExit):
        prepare(["config=demo_cpu_simclr_spatial_resnet18"])
    assert "position_dir" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "no checkpoints/<config>/train_config.yaml"


def test_a_checkpoint_dir_under_a_file_is_refused(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    cfg = compose([*_good(small_positions, small_images), f"config.CHECKPOINT.DIR={tmp_path / 'notes.txt' / 'run'}"])
    with pytest.raises(ConfigError, match=r"config.CHECKPOINT.DIR: .*notes.txt/run: .*notes.txt is a file, not a folder"):
        validate(cfg)


def test_missing_identity_head_is_refused(small_positions: Path, small_images: Path) -> None:
    cfg = compose(_good(small_positions, small_images) + ["config.MODEL.HEAD.PARAMS=[[mlp,{dims:[512,128]}]]"])
    with pytest.raises(ConfigError, match=r"\[identity, \{\}\]"):
        validate(cfg)


def test_a_misspelt_key_is_named_with_the_nearest_one() -> None:
    with pytest.raises(ConfigError, match=r"did you mean config.OPTIMIZER.num_epochs\?"):
        compose(["config=demo_cpu_simclr_spatial_resnet18", "config.OPTIMIZER.num_epoch=3"])
    with pytest.raises(ConfigError, match=r"did you mean config.DATA.TRAIN.BATCHSIZE_PER_REPLICA\?"):
        compose(["config=demo_cpu_simclr_spatial_resnet18", "config.DATA.TRAIN.BATCHSIZE_PER_REPLIKA=3"])


def test_unknown_config_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="demo_cpu_simclr_spatial_resnet18"):
        compose(["config=no_such_config"])
    with pytest.raises(ConfigError, match="config=<name>"):
        compose(["config.SEED_VALUE=1"])


def test_a_users_config_folder_joins_the_shipped_ones(tmp_path: Path) -> None:
    """hydra.searchpath adds the user's folder; its config may build on a shipped one."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "my_variant.yaml").write_text(
        "# @package _global_\ndefaults:\n  - demo_cpu_simclr_spatial_resnet18\n  - _self_\nconfig:\n  SEED_VALUE: 77\n"
    )
    cfg = compose([f"hydra.searchpath=[file://{tmp_path}]", "config=my_variant"])
    assert cfg.SEED_VALUE == 77 and cfg.MODEL.TRUNK.NAME == "spatial_resnet18"
    assert compose([f"hydra.searchpath=[file://{tmp_path}]", "config=demo_cpu_simclr_spatial_resnet18"]).SEED_VALUE != 77


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


@pytest.mark.parametrize("alpha", ["nan", "inf", "-inf", "-0.5"])
def test_alpha_must_be_finite_and_non_negative(alpha: str, small_positions: Path, small_images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        prepare(_good(small_positions, small_images) + [f"--alpha={alpha}"])
    assert stop.value.code == 2
    assert f"--alpha (the spatial loss weight) must be a finite number >= 0 (0: no topography), got {float(alpha)}" in capsys.readouterr().err


def test_plain_simclr_needs_two_images_per_batch(small_images: Path) -> None:
    cfg = compose(
        [
            "config=demo_cpu_simclr_spatial_resnet18",
            "config.LOSS.name=simclr_info_nce_loss",
            "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=1",
            f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]",
        ]
    )
    with pytest.raises(ConfigError, match=r"BATCHSIZE_PER_REPLICA is 1 on 1 process\(es\): simclr_info_nce_loss contrasts"):
        validate(cfg)


def test_resnet50_positions_on_a_resnet18_trunk_say_they_are_for_another_model(
    small_images: Path, tmp_path: Path
) -> None:
    from spacetorch.models import retinotopic_positions

    positions = retinotopic_positions("resnet50", 100, input_size=64).save(tmp_path / "resnet50_positions")
    cfg = compose(_good(positions, small_images))
    with pytest.raises(ConfigError, match=r"the positions in .*resnet50_positions are for another model: \['layer1.2'"):
        validate(cfg)


def test_a_damaged_position_file_is_named_before_any_rank_starts(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "positions"
    damaged.mkdir()
    for path in small_positions.iterdir():
        (damaged / path.name).write_bytes(path.read_bytes())
    (damaged / "manifest.json").unlink()  # a set of the original code, without manifest
    data = (damaged / "layer3.1.pkl").read_bytes()
    (damaged / "layer3.1.pkl").write_bytes(data[: len(data) // 3])
    with pytest.raises(ConfigError, match=rf"position_dir: {damaged / 'layer3.1.pkl'}: not a readable position pickle"):
        validate(compose(_good(damaged, small_images)))


def test_a_damaged_resume_checkpoint_is_named(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    (checkpoints / "model_phase3.torch").write_bytes(b"PK\x03\x04 cut short")
    cfg = compose(_good(small_positions, small_images) + [f"config.CHECKPOINT.DIR={checkpoints}"])
    with pytest.raises(ConfigError, match=r"cannot resume: checkpoint .*model_phase3.torch is truncated or corrupt"):
        validate(cfg)


def test_overrides_may_follow_options_as_in_the_readme(small_positions: Path, small_images: Path, tmp_path: Path) -> None:
    first, *rest = _good(small_positions, small_images)
    cfg, _, _ = prepare([first, "--alpha", "0", f"config.CHECKPOINT.DIR={tmp_path / 'alpha0'}", *rest])
    assert cfg.CHECKPOINT.DIR == str(tmp_path / "alpha0")
    assert set(dict(cfg.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights).values()) == {0.0}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.mdist=5"],
         r"model_kwargs \(model tdresnet18\): mdist \(for the BasicBlock layer3.0\)=5 is not valid; choose one of 0, 1, 2"),
        (["+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.apply_td_at_layers_list=[6]"],
         r"model_kwargs \(model tdresnet18\): apply_td_at_layers_list: resnet18 has no layer 6"),
        (["+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.time_step=2"],
         r"model_kwargs \(model tdresnet18\): .*unexpected keyword argument 'time_step'"),
    ],
)
def test_bad_td_model_kwargs_are_refused_naming_the_key(
    small_positions: Path, small_images: Path, overrides: list[str], message: str
) -> None:
    cfg = compose(_good(small_positions, small_images) + ["config.MODEL.TRUNK.NAME=spatial_tdresnet18", *overrides])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_alpha_layers_set_alpha_on_the_named_layers_and_zero_elsewhere(
    small_positions: Path, small_images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _, _ = prepare(_good(small_positions, small_images) + ["--alpha", "25", "--alpha-layers", "layer2_0,layer2_1"])
    weights = dict(cfg.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights)
    assert weights == {key: (25.0 if key in ("layer2_0", "layer2_1") else 0.0) for key in weights} and len(weights) == 8
    for extra, message in [
        (["--alpha-layers", "layer2_0"], "--alpha-layers names the layers that get --alpha; give --alpha too"),
        (["--alpha", "1", "--alpha-layers", "layer2_9"], "--alpha-layers: ['layer2_9']; the keys of"),
    ]:
        with pytest.raises(SystemExit) as stop:
            prepare(_good(small_positions, small_images) + extra)
        assert stop.value.code == 2 and message in capsys.readouterr().err


ORIGINAL_STYLE = """config:
  CHECKPOINT:
    DIR: eshednet_checkpoint_dir
  DATA:
    TRAIN:
      BATCHSIZE_PER_REPLICA: 128
      DATA_PATHS:
      - /dataset_dir/imagenet_raw/train
      DATA_SOURCES:
      - disk_folder
      DATASET_NAMES:
      - imagenet1k_folder
  LOSS:
    name: spatial_correlation_simclr_info_nce_loss
    spatial_correlation_simclr_info_nce_loss:
      buffer_params:
        embedding_dim: 128
      layer_weights:
        layer2_0: 0.25
      neighborhoods_per_batch: 1
      temperature: 0.1
  MODEL:
    TRUNK:
      NAME: eshednet
      TRUNK_PARAMS:
        position_dir: eshednet_positions
  OPTIMIZER:
    num_epochs: 200
  TENSORBOARD_SETUP:
    USE_TENSORBOARD: true
  TRAINER:
    TRAIN_STEP_NAME: custom_train_step
"""


def test_a_config_written_as_the_original_ones_composes_as_the_original_did(tmp_path: Path) -> None:
    """No package header, keys under config:, TENSORBOARD_SETUP at the top (the seed's eshednet_config)."""
    from spacetorch.vissl.config import compose

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "eshednet_config.yaml").write_text(ORIGINAL_STYLE)
    (tmp_path / "config" / "with_header.yaml").write_text("# @package _global_\n" + ORIGINAL_STYLE)
    search = f"hydra.searchpath=[file://{tmp_path}]"
    notices: list[str] = []
    cfg = compose(["config=eshednet_config", search, "config.OPTIMIZER.num_epochs=3"], notices)
    assert cfg.DATA.TRAIN.DATA_PATHS == ["/dataset_dir/imagenet_raw/train"]
    assert cfg.LOSS.name == "spatial_correlation_simclr_info_nce_loss" and cfg.MODEL.TRUNK.NAME == "eshednet"
    assert cfg.OPTIMIZER.num_epochs == 3, "the command line still wins over the file"
    assert cfg.HOOKS.TENSORBOARD_SETUP.USE_TENSORBOARD is True and "TENSORBOARD_SETUP" not in cfg
    assert any("no '# @package _global_' header" in n for n in notices)
    assert any("HOOKS.TENSORBOARD_SETUP" in n for n in notices)
    reference = compose(["config=with_header", search, "config.OPTIMIZER.num_epochs=3"])
    for key in ("DATA", "LOSS", "MODEL", "OPTIMIZER", "CHECKPOINT", "TRAINER"):
        assert cfg[key] == reference[key], key


@pytest.mark.parametrize("begins", ["# my run, from the original repository\n\n", "\ufeff", "---\n",
                                    "# a comment\n# @package _global_\n"])
def test_an_original_layout_config_composes_as_written_however_the_file_begins(tmp_path: Path, begins: str) -> None:
    from spacetorch.vissl.config import compose

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mine.yaml").write_text(begins + ORIGINAL_STYLE, encoding="utf-8")
    cfg = compose(["config=mine", f"hydra.searchpath=[file://{tmp_path}]"])
    assert cfg.MODEL.TRUNK.NAME == "eshednet" and cfg.OPTIMIZER.num_epochs == 200


@pytest.mark.parametrize(("text", "unread"), [
    ("# @package _global_\nMODEL:\n  TRUNK:\n    NAME: eshednet\n", "MODEL"),  # the header, but no config:
    ("# @package _global_\nconfig:\n  config:\n    SEED_VALUE: 3\n", "config.config"),  # one level too deep
])
def test_a_config_whose_keys_vissl_would_not_read_is_refused_naming_the_file(tmp_path: Path, text: str, unread: str) -> None:
    from spacetorch.vissl.config import compose

    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mine.yaml").write_text(text)
    with pytest.raises(ConfigError, match=rf"config/mine.yaml: {unread} would not be read by VISSL .* its defaults would train instead"):
        compose(["config=mine", f"hydra.searchpath=[file://{tmp_path}]"])


def test_an_unknown_trunk_is_named_and_the_config_can_import_its_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vissl.models.trunks import MODEL_TRUNKS_REGISTRY

    from spacetorch.cli.train import prepare

    monkeypatch.setenv("SPACETORCH_IMPORTS", "")  # recorded, so whatever the test adds is undone after it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    yaml_text = ORIGINAL_STYLE.replace("eshednet", "config_imported_trunk")
    (tmp_path / "config" / "mine.yaml").write_text(yaml_text)
    (tmp_path / "config" / "mine_imports.yaml").write_text(yaml_text + "  IMPORTS:\n  - my_trunks.py\n")
    (tmp_path / "my_trunks.py").write_text(
        "import torch\nfrom vissl.models.trunks import register_model_trunk\n\n"
        "@register_model_trunk('config_imported_trunk')\nclass Mine(torch.nn.Module):\n"
        "    def __init__(self, model_config, model_name):\n        super().__init__()\n"
    )
    search = f"hydra.searchpath=[file://{tmp_path}]"
    with pytest.raises(SystemExit):
        prepare(["config=mine", search])
    assert "no trunk named 'config_imported_trunk' is registered with VISSL" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a later check stops it (no data here), not the trunk
        prepare(["config=mine_imports", search])
    assert "no trunk named" not in capsys.readouterr().err
    assert "config_imported_trunk" in MODEL_TRUNKS_REGISTRY


def test_the_tdam_recipe_trains_with_amp_and_pixel_random_erasing_as_the_seed_does() -> None:
    from vissl.data.ssl_transforms import get_transform

    from spacetorch.vissl.config import compose, cpu_fallback_overrides

    cfg = compose(["config=supervised_tdresnet50"])
    assert cfg.MODEL.AMP_PARAMS.USE_AMP is True and cfg.MODEL.AMP_PARAMS.AMP_TYPE == "pytorch"
    assert "config.MODEL.AMP_PARAMS.USE_AMP=false" in (cpu_fallback_overrides(cfg) or [])
    erasing = next(t for t in cfg.DATA.TRAIN.TRANSFORMS if t["name"] == "RandomErasing")
    transform = get_transform([dict(erasing, p=1.0)])
    torch.manual_seed(0)
    erased = transform({"data": [torch.zeros(3, 64, 64)], "data_valid": [1], "data_idx": [0], "label": [0]})["data"][0]
    changed = erased != 0
    assert changed.any() and erased[changed].std() > 0.5, "per-pixel normal noise, not a constant fill"


#: the TD ConvNeXt recipe on a small ConvNeXt (new model_kwargs keys need Hydra's "+")
SMALL_TD_CONVNEXT = [
    "+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.depths=[1,1,2,1]",
    "+config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs.dims=[16,32,64,128]",
]


def test_the_td_convnext_recipe_decays_only_what_the_official_convnext_decays() -> None:
    """The official recipe gives weight decay to every weight matrix and kernel, and none to
    biases and 1-D parameters (norms, layer scales); VISSL's param groups must do the same."""
    from vissl.models import build_model
    from vissl.optimizers.optimizer_helper import get_optimizer_param_groups

    from spacetorch.vissl.config import compose

    cfg = compose(["config=supervised_tdconvnext_tiny", *SMALL_TD_CONVNEXT, "config.MODEL.HEAD.PARAMS=[[mlp,{dims:[128,10]}]]"])
    assert cfg.OPTIMIZER.name == "adamw" and cfg.OPTIMIZER.weight_decay == 0.05
    assert cfg.DATA.TRAIN.COLLATE_FUNCTION == "cutmixup_collator"
    assert cfg.DATA.TRAIN.COLLATE_FUNCTION_PARAMS.label_smoothing == 0.1
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    groups = get_optimizer_param_groups(model, cfg.MODEL, cfg.OPTIMIZER, {"lr": 1.0, "lr_head": 1.0})
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    names = dict(model.named_parameters())
    assert any(".tdam." in n for n in names) and any(n.endswith("gamma") for n in names)
    for name, p in names.items():
        assert (id(p) in decayed) == (p.ndim > 1), name


def test_a_checkpoint_dir_inside_an_input_is_refused(small_positions: Path, small_images: Path) -> None:
    """Checkpoints written into the image folder would become a class; into the position set, a
    file that breaks it."""
    inside_data = compose([*_good(small_positions, small_images), f"config.CHECKPOINT.DIR={small_images / 'train' / 'run'}"])
    with pytest.raises(ConfigError, match=r"config.CHECKPOINT.DIR .*train/run lies inside config.DATA.TRAIN.DATA_PATHS\[0\]"):
        validate(inside_data)
    inside_positions = compose([*_good(small_positions, small_images), f"config.CHECKPOINT.DIR={small_positions / 'run'}"])
    with pytest.raises(ConfigError, match=r"lies inside config.MODEL.TRUNK.TRUNK_PARAMS.position_dir"):
        validate(inside_positions)


def test_a_checkpoint_dir_is_resumed_only_with_the_settings_it_was_made_with(
    small_positions: Path, small_images: Path, tmp_path: Path
) -> None:
    from spacetorch.vissl.config import save_config, set_alpha

    checkpoints = tmp_path / "run"
    first = compose([*_good(small_positions, small_images), f"config.CHECKPOINT.DIR={checkpoints}"])
    set_alpha(first, 5.0)
    save_config(first)
    torch.save({"phase_idx": 3}, checkpoints / "model_phase3.torch")  # a whole checkpoint to resume from

    again = compose([*_good(small_positions, small_images), f"config.CHECKPOINT.DIR={checkpoints}",
                     "config.OPTIMIZER.num_epochs=40", "config.DATA.NUM_DATALOADER_WORKERS=0"])
    set_alpha(again, 5.0)
    validate(again)  # the same run, trained longer and with other workers: resumed

    other = compose([*_good(small_positions, small_images), f"config.CHECKPOINT.DIR={checkpoints}"])
    set_alpha(other, 0.0)
    with pytest.raises(ConfigError, match=r"holds a run with other settings, which would be resumed "
                                          r"\(config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer1_0: 5.0 there, 0.0 now"):
        validate(other)

    (checkpoints / "model_phase3.torch").unlink()  # nothing to resume: a new run may start there
    validate(other)


def test_the_shipped_configs_are_deltas_over_shared_base_files() -> None:
    """The shared parts under _base/ are not configs of their own, every shipped config starts from
    them (directly or through its parent), and no config repeats a value its base files set."""
    import yaml

    from spacetorch.vissl.config import CONFIG_DIR, available_configs

    def flat(node: object, prefix: str = "") -> dict[str, object]:
        if not isinstance(node, dict):
            return {prefix: node}
        return {k: v for key, value in node.items() for k, v in flat(value, f"{prefix}.{key}" if prefix else str(key)).items()}

    names = available_configs()
    assert not [name for name in names if name.startswith("_")]
    bases = {path.stem: flat(yaml.safe_load(path.read_text())) for path in (CONFIG_DIR / "_base").glob("*.yaml")}
    assert {"gpu_training", "classification"} <= bases.keys()
    for name in names:
        text = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
        defaults = [entry for entry in text.get("defaults", []) if entry != "_self_"]
        assert defaults, f"{name} starts from no base file and no parent config"
        inherited: dict[str, object] = {}
        for entry in defaults:
            if entry.startswith("_base/"):
                inherited.update(bases[entry.removeprefix("_base/")])
        repeated = [key for key, value in flat(text).items() if key in inherited and inherited[key] == value]
        assert not repeated, f"{name} repeats what its base files set: {repeated}"


def test_the_topographic_vit_config_checks_against_its_positions(tmp_path: Path, small_images: Path) -> None:
    """The ViT demo passes train.py's checks on positions made for it, and names a block the
    positions lack."""
    from spacetorch.models import retinotopic_positions

    positions = tmp_path / "vit_positions"
    retinotopic_positions("vit_tiny_patch16_224", n_neighborhoods=20, input_size=112).save(positions)
    good = ["config=demo_cpu_simclr_spatial_vit_tiny", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
            f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]"]
    validate(compose(good))
    with pytest.raises(ConfigError, match="blocks_12"):
        validate(compose([*good, "+config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.blocks_12=0.25"]))
