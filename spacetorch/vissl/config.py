"""Compose a VISSL config for ``train.py`` and check it before any process starts.

Every check names the config key, layer, path or GPU at fault (:class:`ConfigError`), so a
wrong config stops in a second instead of after the ranks have spawned.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spacetorch._files import RUN_MARK
from spacetorch.configs import CONFIG_DIR
from spacetorch.losses import check_weight, layer_weight_mismatch
from spacetorch.models.layers import vissl_key
from spacetorch.models.positions import NetworkPositions, PositionsError, UnsafePickleError
from spacetorch.vissl.registry import (
    PLAIN_TRUNK_NAMES,
    SPATIAL_LOSS_NAMES,
    SPATIAL_TRUNK_NAMES,
    SpatialCorrelationDinoLoss,
    trunk_model_kwargs,
)

__all__ = [
    "CONFIG_DIR",
    "ConfigError",
    "available_configs",
    "check_types",
    "compose",
    "save_config",
    "cpu_fallback_overrides",
    "select_gpus",
    "nearest_keys",
    "prepare_config",
    "set_alpha",
    "trunk_model_name",
    "validate",
]

#: where Hydra finds the shipped configs (:data:`~spacetorch.configs.CONFIG_DIR`), beside VISSL's own
SEARCH_PATH = f"file://{CONFIG_DIR.parent}"


class ConfigError(ValueError):
    """The training config (or a command-line option) cannot work; the message says why."""


def available_configs(config_dir: Path = CONFIG_DIR) -> list[str]:
    """Names usable as ``config=<name>`` (not the shared parts under ``_base/``, which the configs start from)."""
    names = (p.relative_to(config_dir).with_suffix("") for p in config_dir.rglob("*.yaml"))
    return sorted(str(name) for name in names if not name.parts[0].startswith("_"))


def compose(overrides: Sequence[str], notices: list[str] | None = None) -> Any:
    """Compose VISSL's defaults with ``overrides`` (``config=<name>``, ``config.KEY=value``).

    Returns VISSL's ``AttrDict`` with its inferred settings (world size, batch sizes...).

    A config written as the original TDANN's are (no ``# @package _global_`` header, its keys
    under ``config:``) is composed as the original composed it: as if it had the header (Hydra
    1.3 would otherwise nest it under ``config.config`` and train VISSL's defaults).  Its
    top-level ``TENSORBOARD_SETUP`` goes where VISSL reads it, ``HOOKS.TENSORBOARD_SETUP``.  Each
    such step adds a line to ``notices``.

    Raises:
        ConfigError: no ``config=`` given, an unknown config name, or an override Hydra rejects.
    """
    from vissl.utils.hydra_config import convert_to_attrdict

    names = [o.split("=", 1)[1] for o in overrides if o.startswith("config=")]
    if not names:
        raise ConfigError(f"name a config with config=<name>; shipped configs: {', '.join(available_configs())}")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides look like config.KEY=value, got {bad}")
    searchpath = [o for o in overrides if o.startswith("hydra.searchpath=")]
    user_paths = searchpath[-1].split("=", 1)[1].strip("[]") if searchpath else ""
    overrides = [o for o in overrides if o not in searchpath]
    found = _config_file(names[-1], user_paths)
    with tempfile.TemporaryDirectory(prefix="spacetorch_config_") as scratch:
        copy = _with_package_header(found, names[-1], Path(scratch), notices)
        if copy:  # compose the copy, under a name nothing else on the search path has
            overrides = [f"config={copy}" if o == f"config={names[-1]}" else o for o in overrides]
        paths = ",".join(filter(None, [f"file://{scratch}" if copy else "", user_paths, SEARCH_PATH]))
        hydra_cfg = _compose_hydra([*overrides, f"hydra.searchpath=[{paths}]"], names[-1])
    _check_all_read(hydra_cfg, found, names[-1])
    tensorboard = hydra_cfg.config.get("TENSORBOARD_SETUP")
    if tensorboard is not None:  # the original's place for it, which VISSL does not read
        from omegaconf import OmegaConf, open_dict

        with open_dict(hydra_cfg.config):
            hydra_cfg.config.HOOKS.TENSORBOARD_SETUP = OmegaConf.merge(hydra_cfg.config.HOOKS.TENSORBOARD_SETUP, tensorboard)
            del hydra_cfg.config["TENSORBOARD_SETUP"]
        if notices is not None:
            notices.append("config.TENSORBOARD_SETUP is read as config.HOOKS.TENSORBOARD_SETUP, where VISSL looks for it")
    _, cfg = convert_to_attrdict(hydra_cfg, dump_config=False)  # written once checked (save_config)
    _infer_dino(cfg)
    return cfg


#: the spatial DINO loss's registered name
DINO_LOSS: str = SpatialCorrelationDinoLoss._loss_name


def _infer_dino(cfg: Any) -> None:
    """What VISSL infers for its ``dino_loss``, for the spatial one: the prototypes' number
    (``output_dim``) from head 0, the number of views (``num_crops``) from ``ImgReplicatePil``."""
    if cfg.LOSS.name != DINO_LOSS:
        return
    loss = cfg.LOSS[DINO_LOSS]
    head = cfg.MODEL.HEAD.PARAMS[0]
    if _head_name(head) == "swav_head" and head[1].get("num_clusters"):
        loss.output_dim = int(head[1]["num_clusters"][0])
    views = [t.get("num_times") for t in cfg.DATA.TRAIN.TRANSFORMS if t.get("name") == "ImgReplicatePil"]
    if views and isinstance(views[0], int):
        loss.num_crops = views[0]


def _check_dino(cfg: Any) -> None:
    """The spatial DINO loss's views: same-size copies in one batch, every one shown to the teacher."""
    loss = cfg.LOSS[DINO_LOSS]
    where = f"config.LOSS.{DINO_LOSS}"
    head = cfg.MODEL.HEAD.PARAMS[0]
    if _head_name(head) != "swav_head":
        raise ConfigError(
            f"config.MODEL.HEAD.PARAMS[0] is a {_head_name(head)!r} head; {DINO_LOSS} needs DINO's projection "
            "and prototypes there: [swav_head, {dims: [...], num_clusters: [K], use_bn: false, ...}]"
        )
    if cfg.DATA.TRAIN.COLLATE_FUNCTION != "simclr_collator":
        raise ConfigError(
            f"config.DATA.TRAIN.COLLATE_FUNCTION is {cfg.DATA.TRAIN.COLLATE_FUNCTION!r}; {DINO_LOSS} takes the views "
            "of ImgReplicatePil in one batch: simclr_collator (multi-crop's smaller local crops would give the "
            "blocks another token grid than their positions')"
        )
    crops = int(loss.get("num_crops", 0) or 0)
    teacher = [int(c) for c in loss.get("crops_for_teacher", [])]
    if crops < 2 or teacher != list(range(crops)):
        raise ConfigError(
            f"{where}: num_crops is {crops} (ImgReplicatePil num_times) and crops_for_teacher {teacher}; the "
            f"teacher sees every view, so give at least 2 views and crops_for_teacher {list(range(max(crops, 2)))}"
        )


def _compose_hydra(overrides: list[str], name: str) -> Any:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from vissl.utils.hydra_config import compose_hydra_configuration

    try:
        return compose_hydra_configuration(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        hint = ""
        if "Could not find" in str(err):
            raise ConfigError(
                f"no config named {name!r} in {CONFIG_DIR}; shipped configs: {', '.join(available_configs())}"
            ) from None
        if "Could not override '" in str(err) or ("Key '" in str(err) and "not in struct" in str(err)):
            key = str(err).split("'")[1]
            near = nearest_keys(key)
            hint = (f"; did you mean {' or '.join(near)}?" if near else "") + (
                "; a key that is not in VISSL's defaults is added with a leading '+' (+config.KEY=value)")
        raise ConfigError(f"cannot compose the config: {err}{hint}") from None


def _vissl_defaults() -> Any:
    """VISSL's own ``defaults.yaml`` (the schema of every key a run reads), as plain containers."""
    import vissl
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(Path(vissl.__file__).parent / "config" / "defaults.yaml"))


def nearest_keys(key: str) -> list[str]:
    """The keys of VISSL's defaults closest in spelling to ``key`` (``config.OPTIMIZER.num_epoch``
    -> ``config.OPTIMIZER.num_epochs``), at the level where ``key`` stops matching."""
    import difflib

    parts = key.lstrip("+~").split(".")
    node: Any = _vissl_defaults()
    for depth, name in enumerate(parts):
        if not isinstance(node, dict):
            return []
        if name not in node:
            close = difflib.get_close_matches(name, [str(k) for k in node], n=2, cutoff=0.6)
            return [".".join([*parts[:depth], match]) for match in close]
        node = node[name]
    return []


#: keys a run reads that must be whole numbers of at least the given value
_AT_LEAST = {
    "OPTIMIZER.num_epochs": 1, "DATA.TRAIN.BATCHSIZE_PER_REPLICA": 1, "DATA.NUM_DATALOADER_WORKERS": 0,
    "LOG_FREQUENCY": 1, "CHECKPOINT.CHECKPOINT_FREQUENCY": 1, "SEED_VALUE": 0, "DISTRIBUTED.NUM_NODES": 1,
    "DISTRIBUTED.NUM_PROC_PER_NODE": 1,
}


def check_types(cfg: Any) -> None:
    """Every value whose key VISSL's defaults give a number or a truth value is of that kind
    (a whole number where the default is one), and the counts a run reads are in range.

    Raises:
        ConfigError: naming the key, what its default is and the value given.
    """

    def walk(default: Any, value: Any, path: str) -> None:
        if isinstance(default, dict):
            if hasattr(value, "items"):
                for name, sub in default.items():
                    if name in value:
                        walk(sub, value[name], f"{path}.{name}")
            return
        if default is None or value is None:
            return
        expected = ""
        if isinstance(default, bool):
            expected = "" if isinstance(value, bool) else "true or false"
        elif isinstance(default, int):
            whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            expected = "" if whole and not isinstance(value, bool) else "a whole number"
        elif isinstance(default, float):
            expected = "" if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
        if expected:
            raise ConfigError(f"{path} is {value!r}; expected {expected} (VISSL's default: {default!r})")

    walk(_vissl_defaults()["config"], cfg, "config")
    for key, low in _AT_LEAST.items():
        value: Any = cfg
        for name in key.split("."):
            value = value[name]
        if value < low:
            raise ConfigError(f"config.{key} is {value}; expected a whole number >= {low}")


def _config_file(name: str, user_paths: str) -> Path | None:
    """The file config ``name`` composes from: in the user's folders, ``./configs`` or the shipped ones."""
    folders = [Path(p.removeprefix("file://")) for p in user_paths.split(",") if p.startswith("file://")]
    folders += [Path("configs"), CONFIG_DIR.parent]
    return next((f / "config" / f"{name}.yaml" for f in folders if (f / "config" / f"{name}.yaml").is_file()), None)


def _with_package_header(found: Path | None, name: str, scratch: Path, notices: list[str] | None) -> str:
    """The name of a copy of config file ``found`` (config ``name``) with the ``_global_``
    package header, in ``scratch/config/``, when the file has no package header among its
    leading comments but its keys under ``config:``, as the original TDANN's configs are
    written; ``""`` otherwise."""
    from omegaconf import OmegaConf

    if found is None:
        return ""
    text = found.read_text(encoding="utf-8-sig")
    # Hydra reads the header from the leading '# @key value' lines only (blank lines skipped): a
    # '# @package' after any other line, a plain comment say, is not a header
    header = itertools.takewhile(lambda line: not line.strip() or re.match(r"\s*#\s*@", line), text.splitlines())
    if any(re.match(r"\s*#\s*@package\s", line) for line in header):
        return ""
    try:
        keys = OmegaConf.to_container(OmegaConf.create(text))
    except Exception as err:  # not YAML, or not a mapping
        raise ConfigError(f"{found}: not a YAML config ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(keys, dict) or "config" not in keys:
        return ""
    copy = f"spacetorch_global_{name.replace('/', '_')}"
    target = scratch / "config" / f"{copy}.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("# @package _global_\n" + text)
    if notices is not None:
        notices.append(f"{found} has no '# @package _global_' header (as the original TDANN's configs): composed as the "
                       "original did; add the header to the file to silence this")  # fmt: skip
    return copy


#: the top-level keys of a composed config that VISSL reads (its settings are all under ``config``)
_ROOT_KEYS = ("VERSION", "node_id", "engine_name", "config")


def _check_all_read(hydra_cfg: Any, found: Path | None, name: str) -> None:
    """Every key of the config file lands where VISSL reads it: none at the top level beside
    ``config``, no ``config.config`` (a file with the header nested one level too deep)."""
    unread = [str(key) for key in hydra_cfg if key not in _ROOT_KEYS]
    if "config" in hydra_cfg.config:
        unread.append("config.config")
    if unread:
        raise ConfigError(
            f"{found or name}: {', '.join(unread)} would not be read by VISSL (it reads only the keys under "
            "'config:'), so its defaults would train instead: put every setting under 'config:' and begin the file "
            "with '# @package _global_'"
        )


def prepare_config(
    overrides: Sequence[str],
    *,
    alpha: float | None = None,
    alpha_layers: Sequence[str] | None = None,
    gpus: str | None = None,
    imports: Sequence[str] = (),
    slurm_gpus_per_node: int | None = None,
) -> tuple[Any, list[str]]:
    """The config a training run trains, checked before any process starts, and notices to print.

    ``overrides`` are ``train.py``'s (``config=NAME``, ``config.KEY=VALUE``); ``imports`` the user
    modules that register trunks (``--import``), imported first, then the config's ``IMPORTS``.
    The machine decides the rest: ``gpus`` (``"0,1"``) trains one NCCL process per GPU; without it
    and without CUDA, a GPU config runs on the CPU with gloo (SyncBN and AMP off).  With
    ``slurm_gpus_per_node`` the config is checked as the job's nodes will run it.  ``alpha`` sets
    the spatial loss weight of every layer, or of ``alpha_layers`` only (the others 0).

    Raises:
        ConfigError: naming the option, file or key that is wrong.
    """
    import torch

    from spacetorch.vissl import compat, import_user_modules

    notices: list[str] = []
    if imports:
        try:
            import_user_modules(list(imports))
        except ImportError as err:
            raise ConfigError(f"--import: {err}") from None
    overrides = list(overrides)
    cfg = compose(overrides, notices)
    if cfg.get("IMPORTS"):  # the config's own modules to import, as --import names them
        try:
            import_user_modules([str(entry) for entry in cfg.IMPORTS])
        except ImportError as err:
            raise ConfigError(f"config.IMPORTS: {err}") from None
    extra: list[str] = []
    if slurm_gpus_per_node is not None:
        if gpus is not None:
            raise ConfigError("--gpus names this machine's GPUs; with --slurm give --gpus-per-node")
        if slurm_gpus_per_node > 0:
            extra = ["config.MACHINE.DEVICE=gpu", "config.DISTRIBUTED.BACKEND=nccl",
                     f"config.DISTRIBUTED.NUM_PROC_PER_NODE={slurm_gpus_per_node}"]  # fmt: skip
        else:
            extra = cpu_fallback_overrides(cfg) or []
    elif gpus is not None:
        extra = ["config.MACHINE.DEVICE=gpu", "config.DISTRIBUTED.BACKEND=nccl",
                 f"config.DISTRIBUTED.NUM_PROC_PER_NODE={len(select_gpus(gpus))}"]  # fmt: skip
        notices.append(f"training on GPU(s) {gpus}, one process each, NCCL")
    elif not torch.cuda.is_available():
        extra = cpu_fallback_overrides(cfg) or []
        if extra:
            notices.append(
                "CUDA is not available: training on the CPU with the gloo backend "
                f"({cfg.DISTRIBUTED.NUM_PROC_PER_NODE} process(es) per node, SyncBN and AMP off)"
            )
    if cfg.MACHINE.DEVICE == "cpu" and cfg.MODEL.AMP_PARAMS.USE_AMP:  # a CPU run of a config with AMP
        extra.append("config.MODEL.AMP_PARAMS.USE_AMP=false")
        notices.append("mixed precision (MODEL.AMP_PARAMS.USE_AMP) needs CUDA: off for this CPU run")
    if extra:  # again, so that VISSL infers world size and batch sizes from them
        cfg = compose(overrides + extra)
    compat.fix_config(cfg)
    if alpha_layers is not None and alpha is None:
        raise ConfigError("--alpha-layers names the layers that get --alpha; give --alpha too")
    if alpha is not None:
        set_alpha(cfg, alpha, alpha_layers)
    validate(cfg)
    return cfg, notices


def select_gpus(spec: str) -> list[int]:
    """Make the GPUs named by ``--gpus`` (e.g. ``"1,3,5,7"``) the only visible ones.

    Indices refer to the GPUs visible to this process (``CUDA_VISIBLE_DEVICES`` if set).
    Sets ``CUDA_VISIBLE_DEVICES`` before CUDA is initialised and returns the physical ids.

    Raises:
        ConfigError: a malformed list, no CUDA, or a GPU that is not there.
    """
    try:
        ids = [int(part) for part in spec.split(",") if part.strip() != ""]
    except ValueError:
        raise ConfigError(f"--gpus takes comma-separated GPU indices like 0,1,2,3, got {spec!r}") from None
    if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
        raise ConfigError(f"--gpus takes distinct non-negative GPU indices like 0,1,2,3, got {spec!r}")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() != "":
        listed = [v.strip() for v in visible.split(",") if v.strip()]
        outside = [i for i in ids if i >= len(listed)]
        if outside:
            raise ConfigError(
                f"--gpus names GPU {outside[0]}, but CUDA_VISIBLE_DEVICES={visible} makes only "
                f"{len(listed)} visible (indices 0..{len(listed) - 1})"
            )
        physical = [listed[i] for i in ids]
    else:
        physical = [str(i) for i in ids]
    # set before the first CUDA call of this process, so that it applies here as well
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(physical)
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"--gpus {spec}: this machine has no usable CUDA device (torch.cuda.is_available() is False); "
            "leave out --gpus to train on the CPU"
        )
    found = torch.cuda.device_count()  # CUDA stops at the first id that does not exist
    if found < len(physical):
        raise ConfigError(
            f"--gpus {spec}: GPU {ids[found]} is not there (CUDA_VISIBLE_DEVICES={','.join(physical)} "
            f"gives {found} usable device(s))"
        )
    return ids


def set_alpha(cfg: Any, alpha: float, layers: Sequence[str] | None = None) -> None:
    """Set every layer weight of the configured spatial loss to ``alpha``; with ``layers`` (keys
    of ``layer_weights``), only those, and the others to 0."""
    name = cfg.LOSS.name
    if name not in SPATIAL_LOSS_NAMES:
        raise ConfigError(f"--alpha needs a spatial loss ({', '.join(SPATIAL_LOSS_NAMES)}), config.LOSS.name is {name!r}")
    try:
        alpha = check_weight(alpha, "--alpha (the spatial loss weight)")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    weights = _layer_weights(cfg)
    if layers is not None:
        unknown = [key for key in layers if key not in weights]
        if unknown or not layers:
            raise ConfigError(
                f"--alpha-layers: {unknown or 'no layer given'}; the keys of config.LOSS.{name}.layer_weights are {list(weights)}"
            )
    for key in weights:
        cfg.LOSS[name].layer_weights[key] = float(alpha) if layers is None or key in layers else 0.0


def _layer_weights(cfg: Any) -> dict[str, Any]:
    name = cfg.LOSS.name
    loss_cfg = cfg.LOSS.get(name)
    weights = None if loss_cfg is None else loss_cfg.get("layer_weights")
    if not weights:
        raise ConfigError(f"config.LOSS.{name}.layer_weights is missing or empty: give an alpha per spatial layer")
    return dict(weights)


def validate(cfg: Any) -> None:
    """Check a composed config: spatial loss vs trunk and positions, heads, data paths.

    Raises:
        ConfigError: naming the key, layer or path and what was expected.
    """
    check_types(cfg)
    _check_trunk_registered(cfg)
    _check_topography(cfg)
    if cfg.LOSS.name in SPATIAL_LOSS_NAMES:
        _check_spatial(cfg)
    if cfg.LOSS.name == DINO_LOSS:
        _check_dino(cfg)
    if "simclr" in cfg.LOSS.name:
        world = cfg.DISTRIBUTED.NUM_NODES * cfg.DISTRIBUTED.NUM_PROC_PER_NODE
        if cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA * world < 2:
            raise ConfigError(
                f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA is {cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA} on {world} "
                f"process(es): {cfg.LOSS.name} contrasts each image with the others of the batch, so the "
                "batch must hold at least 2 images"
            )
    if cfg.OPTIMIZER.get("use_larc", False):
        raise ConfigError("config.OPTIMIZER.use_larc is true, but LARC needs NVIDIA apex: set config.OPTIMIZER.use_larc=false")
    splits = ["TRAIN"] + (["TEST"] if cfg.TEST_MODEL or cfg.TEST_ONLY else [])
    for split in splits:
        _check_data_paths(cfg, split)
    _check_checkpoints(cfg)


def _check_topography(cfg: Any) -> None:
    """A topography method (``TRUNK_PARAMS.topography``) is known, its settings fit the trunk's
    model, and the trunk and train step are the ones that apply it."""
    import torch

    from spacetorch.models.registry import create_model
    from spacetorch.vissl.registry import _prepared, topography_of

    try:
        method = topography_of(cfg.MODEL)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if method is None:
        return
    key = "config.MODEL.TRUNK.TRUNK_PARAMS.topography"
    trunks = [*SPATIAL_TRUNK_NAMES, *PLAIN_TRUNK_NAMES]  # the trunks that build the method in (topography_of)
    if cfg.MODEL.TRUNK.NAME not in trunks:
        raise ConfigError(f"{key} is set, but trunk {cfg.MODEL.TRUNK.NAME!r} does not apply it; use one of {', '.join(trunks)}")
    if cfg.TRAINER.TRAIN_STEP_NAME != "custom_train_step":
        raise ConfigError(
            f"{key} ({method.name}) needs config.TRAINER.TRAIN_STEP_NAME=custom_train_step, which adds its penalties "
            f"to the loss; it is {cfg.TRAINER.TRAIN_STEP_NAME!r}"
        )
    name = trunk_model_name(cfg)
    try:
        with torch.device("meta"):
            _prepared(create_model(name, headless=True, **trunk_model_kwargs(cfg.MODEL)), name, method, cfg.MODEL)
    except ValueError as err:
        raise ConfigError(f"{err} (model {name})") from None


def _check_trunk_registered(cfg: Any) -> None:
    from vissl.models.trunks import MODEL_TRUNKS_REGISTRY

    name = cfg.MODEL.TRUNK.NAME
    if name not in MODEL_TRUNKS_REGISTRY:
        raise ConfigError(
            f"config.MODEL.TRUNK.NAME: no trunk named {name!r} is registered with VISSL. Register it with "
            f"@register_model_trunk({name!r}) in a module, and name the module with --import my_trunks.py or in "
            f"the config (IMPORTS: [my_trunks.py]); registered trunks: {', '.join(sorted(MODEL_TRUNKS_REGISTRY))}"
        )


def _plain(value: Any) -> Any:
    """A config's values as YAML holds them (VISSL turns FSDP_CONFIG.compute_dtype into a torch
    dtype after its own dump)."""
    import torch

    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value).removeprefix("torch.") if isinstance(value, torch.dtype) else value


def save_config(cfg: Any) -> Path:
    """Write the checked config to ``CHECKPOINT.DIR/train_config.yaml`` (making the folder), all
    or nothing, as VISSL would; :func:`compose` writes nothing, so a config that fails its
    check leaves no file."""
    from omegaconf import OmegaConf

    from spacetorch._files import atomic_write

    path = Path(cfg.CHECKPOINT.DIR) / RUN_MARK
    text = OmegaConf.to_yaml(OmegaConf.create(_plain(cfg.to_dict())))
    atomic_write(path, lambda file: file.write(text.encode()))
    return path


def _check_checkpoints(cfg: Any) -> None:
    """The checkpoint folder can be written; the weights to start from and the checkpoint to
    resume from are whole torch files."""
    from vissl.utils.checkpoint import get_resume_checkpoint

    from spacetorch._files import check_apart, check_writable_folder
    from spacetorch.models.checkpoints import CheckpointError, check_checkpoint_file

    try:
        check_writable_folder(cfg.CHECKPOINT.DIR)
    except ValueError as err:
        raise ConfigError(f"config.CHECKPOINT.DIR: {err}") from None
    try:
        check_apart(cfg.CHECKPOINT.DIR, "config.CHECKPOINT.DIR", _inputs(cfg))
    except ValueError as err:  # its message names both keys
        raise ConfigError(str(err)) from None

    params_file = cfg.MODEL.WEIGHTS_INIT.PARAMS_FILE
    if params_file:
        try:
            check_checkpoint_file(params_file)
        except (CheckpointError, FileNotFoundError) as err:
            raise ConfigError(f"config.MODEL.WEIGHTS_INIT.PARAMS_FILE: {err}") from None
    if Path(cfg.CHECKPOINT.DIR).is_dir():
        resume = get_resume_checkpoint(cfg, checkpoint_folder=cfg.CHECKPOINT.DIR)
        if resume is not None:
            try:
                check_checkpoint_file(resume)
            except (CheckpointError, FileNotFoundError) as err:
                raise ConfigError(
                    f"config.CHECKPOINT.DIR: cannot resume: {err}. Delete that file to resume from an earlier "
                    "checkpoint, or set config.CHECKPOINT.DIR to start a new run"
                ) from None
            _check_same_run(cfg, Path(cfg.CHECKPOINT.DIR) / RUN_MARK)


def _inputs(cfg: Any) -> dict[str, str]:
    """The folders a run reads, by key: its image folders and its position set."""
    found = {f"config.DATA.{split}.DATA_PATHS[{i}]": str(path)
             for split in ("TRAIN", "TEST") for i, path in enumerate(cfg.DATA[split].DATA_PATHS or [])}
    position_dir = cfg.MODEL.TRUNK.get("TRUNK_PARAMS", {}).get("position_dir")
    if position_dir:
        found["config.MODEL.TRUNK.TRUNK_PARAMS.position_dir"] = str(position_dir)
    return found


#: the keys that make a run what it is: resuming a checkpoint folder with other values would go on
#: training another model (CHECKPOINT, MACHINE, DISTRIBUTED, logging, workers and the number of
#: epochs may change between starts)
RUN_KEYS = ("MODEL", "LOSS", "SEED_VALUE", "DATA.TRAIN.DATA_PATHS", "DATA.TRAIN.DATA_SOURCES", "DATA.TRAIN.DATASET_NAMES",
            "DATA.TRAIN.TRANSFORMS", "DATA.TRAIN.BATCHSIZE_PER_REPLICA", "OPTIMIZER.name", "OPTIMIZER.weight_decay",
            "OPTIMIZER.momentum", "OPTIMIZER.nesterov", "OPTIMIZER.param_schedulers.lr.base_value")


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def _run_settings(config: Mapping[Any, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key in RUN_KEYS:
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        found.update(_flat(value, f"config.{key}"))
    # inferred from the number of processes, which may change between starts
    return {key: value for key, value in found.items() if ".buffer_params." not in key}


def _check_same_run(cfg: Any, saved: Path) -> None:
    """A checkpoint folder is resumed only by the run that made it: the keys :data:`RUN_KEYS`
    equal those of its ``train_config.yaml`` (a folder without one is resumed as VISSL would)."""
    from omegaconf import OmegaConf

    if not saved.is_file():
        return
    try:
        before = OmegaConf.to_container(OmegaConf.load(saved))
    except Exception as err:  # unreadable or not YAML
        raise ConfigError(f"config.CHECKPOINT.DIR: {saved} cannot be read ({type(err).__name__}); it records the "
                          "run to resume: restore it, or set config.CHECKPOINT.DIR to start a new run") from None
    now = _run_settings(_plain(cfg.to_dict()))
    was = _run_settings(before if isinstance(before, dict) else {})
    differ = [key for key in sorted(set(now) | set(was)) if now.get(key) != was.get(key)]
    if differ:
        shown = "; ".join(f"{key}: {was.get(key)!r} there, {now.get(key)!r} now" for key in differ[:3])
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise ConfigError(
            f"config.CHECKPOINT.DIR: {cfg.CHECKPOINT.DIR} holds a run with other settings, which would be resumed "
            f"({shown}{more}); set config.CHECKPOINT.DIR to start a new run, or give that run's settings to continue it"
        )


def _check_spatial(cfg: Any) -> None:
    loss = cfg.LOSS.name
    weights = _layer_weights(cfg)
    for key, value in weights.items():
        try:
            check_weight(value, f"config.LOSS.{loss}.layer_weights.{key}")
        except ValueError as err:
            raise ConfigError(str(err)) from None
    count = cfg.LOSS[loss].get("neighborhoods_per_batch", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"config.LOSS.{loss}.neighborhoods_per_batch must be an integer >= 1 (neighborhoods per layer and step), got {count!r}")
    batch = cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA
    if batch < 2:
        raise ConfigError(
            f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA is {batch}; the spatial loss {loss} correlates "
            "responses over the samples of each process's batch, so it needs at least 2"
        )
    if cfg.TRAINER.TRAIN_STEP_NAME != "custom_train_step":
        raise ConfigError(
            f"config.TRAINER.TRAIN_STEP_NAME is {cfg.TRAINER.TRAIN_STEP_NAME!r}; the spatial loss {loss} "
            "needs custom_train_step (VISSL's standard step cannot handle spatial outputs)"
        )
    head_names = [_head_name(head) for head in cfg.MODEL.HEAD.PARAMS]
    if "identity" not in head_names:
        raise ConfigError(
            f"config.MODEL.HEAD.PARAMS has heads {head_names}; the spatial loss {loss} needs the spatial "
            "outputs passed through by a second head: [identity, {}]"
        )
    trunk = cfg.MODEL.TRUNK.NAME
    if trunk not in SPATIAL_TRUNK_NAMES:
        return  # a user's trunk: its layers are checked against layer_weights at the first step
    params = cfg.MODEL.TRUNK.TRUNK_PARAMS
    position_dir = params.get("position_dir")
    if not position_dir:
        raise ConfigError(f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir is not set (trunk {trunk})")
    path = Path(position_dir)
    if not path.is_dir():
        raise ConfigError(
            f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir: {path} is not a directory "
            f"(relative to {Path.cwd()}); make one with `make run` or spacetorch positions"
        )
    try:  # every file read once here, so that a damaged one is named before any rank starts
        positions = NetworkPositions.load_from_dir(path)
    except (PositionsError, UnsafePickleError) as err:
        raise ConfigError(f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir: {err}") from None
    layers = params.get("layers") or list(positions.layer_positions)
    _check_model_layers(cfg, trunk, list(layers), path, positions)
    outputs = {vissl_key(name) for name in layers}
    problem = layer_weight_mismatch(weights, outputs, trunk=f"trunk {trunk}")
    if problem:
        raise ConfigError(f"config.LOSS.{loss}.{problem} (its layers, from {path}: {sorted(outputs)})")


def trunk_model_name(cfg: Any) -> str:
    """The registered model a composed config's spatial trunk builds.

    Raises:
        KeyError: the trunk names no model (see :func:`~spacetorch.vissl.registry.model_from_config`).
    """
    from vissl.models.trunks import get_model_trunk

    from spacetorch.vissl.registry import model_from_config

    trunk = cfg.MODEL.TRUNK.NAME
    return model_from_config(cfg.MODEL, getattr(get_model_trunk(trunk), "model_name", None))


#: the transforms whose ``size`` is the size of the images the trunk sees in training
_CROPS = ("RandomResizedCrop", "CenterCrop", "RandomCrop", "Resize", "ImgPilRandomResizedCrop")


def _training_size(cfg: Any) -> int | None:
    """The side of the training images the trunk sees, from the last crop or resize of
    ``DATA.TRAIN.TRANSFORMS`` (``None`` when no transform says)."""
    sizes = [t.get("size") for t in cfg.DATA.TRAIN.TRANSFORMS if t.get("name") in _CROPS and isinstance(t.get("size"), int)]
    return sizes[-1] if sizes else None


def _check_model_layers(cfg: Any, trunk: str, layers: list[str], path: Path, positions: NetworkPositions) -> None:
    """The trunk's model is registered, has a submodule for every layer with positions, and
    each of them has the positions' dims at the training image size."""
    import torch

    from spacetorch.models.capture import output_dims
    from spacetorch.models.registry import create_model, model_info

    try:
        name = trunk_model_name(cfg)
        info = model_info(name)
    except KeyError as err:
        raise ConfigError(f"config.MODEL.TRUNK.TRUNK_PARAMS.model: {err.args[0]}") from None
    try:
        with torch.device("meta"):
            model = create_model(name, headless=True, **trunk_model_kwargs(cfg.MODEL))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config.MODEL.TRUNK.TRUNK_PARAMS.model_kwargs (model {name}): {err}") from None
    modules = {module_name for module_name, _ in model.named_modules()}
    foreign = [layer for layer in layers if layer not in modules]
    if foreign:
        raise ConfigError(
            f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir: the positions in {path} are for another model: "
            f"{foreign[:4]} are not modules of {name} (trunk {trunk}), whose layers with positions are "
            f"{info.layer_names(model)[:4]}...; make positions for {name} with "
            f"spacetorch positions --arch {name}"
        )
    size = _training_size(cfg)
    if size is None:
        return
    try:
        dims = output_dims(model, layers, input_size=size, in_chans=info.in_chans)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"config.DATA.TRAIN.TRANSFORMS: {size} px images are too small for {name} ({err})") from None
    for layer in layers:
        if tuple(positions[layer].dims) != dims[layer]:
            raise ConfigError(
                f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir: the positions in {path} were made for another image "
                f"size: layer {layer!r} has dims {tuple(positions[layer].dims)} there, but at the training size, "
                f"{size} px (config.DATA.TRAIN.TRANSFORMS), {name} gives it {dims[layer]}; make positions for it with "
                f"`spacetorch positions --arch {name} --input-size {size}`"
            )


def _head_name(head: Any) -> str:
    first = head[0]
    return str(first[0]) if isinstance(first, (list, tuple)) else str(first)


def _check_data_paths(cfg: Any, split: str) -> None:
    data = cfg.DATA[split]
    sources, names, paths = list(data.DATA_SOURCES), list(data.DATASET_NAMES), list(data.DATA_PATHS)
    if len(sources) != len(names) or (paths and len(paths) != len(sources)):
        raise ConfigError(
            f"config.DATA.{split}: DATA_SOURCES {sources}, DATASET_NAMES {names} and DATA_PATHS {paths} "
            "must have one entry per dataset (DATA_PATHS may be empty to use the dataset catalog)"
        )
    for i, (source, name) in enumerate(zip(sources, names, strict=False)):
        if source not in ("disk_folder", "disk_filelist"):
            continue
        if paths:
            path, where = paths[i], f"config.DATA.{split}.DATA_PATHS[{i}]"
        else:
            path, where = _catalog_path(name, split), f"dataset {name!r} in {_catalog_file()}"
        if not Path(path).exists():
            raise ConfigError(
                f"{where}: {path} does not exist (relative paths start at {Path.cwd()}); set "
                f"config.DATA.{split}.DATA_PATHS=[/path/to/images] or edit {_catalog_file()}"
            )
        if source == "disk_folder" and Path(path).is_dir():
            _check_enough_images(cfg, split, path, where)


def _check_enough_images(cfg: Any, split: str, path: str, where: str) -> None:
    """A training folder holds at least one batch for every process (VISSL drops the last,
    incomplete batch; with none left it stops with "No batches to read")."""
    from spacetorch.data.image_check import IMAGE_SUFFIXES

    data = cfg.DATA[split]
    world = cfg.DISTRIBUTED.NUM_NODES * cfg.DISTRIBUTED.NUM_PROC_PER_NODE
    needed = data.BATCHSIZE_PER_REPLICA * world if split == "TRAIN" and data.get("DROP_LAST", False) else 1
    found = 0
    for _, _, names in os.walk(path, followlinks=True):  # stops as soon as there are enough
        found += sum(name.lower().endswith(IMAGE_SUFFIXES) for name in names)
        if found >= needed:
            break
    limit = data.get("DATA_LIMIT", -1)
    usable = found if limit is None or limit < 0 else min(found, limit)
    if usable < needed:
        held = f"holds {found} image(s)" + (f", DATA_LIMIT keeps {usable}" if usable < found else "")
        raise ConfigError(
            f"{where}: {path} {held}, fewer than one batch of config.DATA.{split}.BATCHSIZE_PER_REPLICA "
            f"{data.BATCHSIZE_PER_REPLICA} x {world} process(es) = {needed}; add images or make the batch smaller"
            if needed > 1 else f"{where}: {path} holds no image files (expected <class>/<image>)"
        )


def _catalog_file() -> str:
    from vissl.utils.misc import get_json_data_catalog_file

    return str(get_json_data_catalog_file())


def _catalog_path(name: str, split: str) -> str:
    from vissl.data.dataset_catalog import VisslDatasetCatalog

    if not VisslDatasetCatalog.has_data(name):
        raise ConfigError(
            f"dataset {name!r} is not in the dataset catalog {_catalog_file()}; add it there or set "
            f"config.DATA.{split}.DATA_PATHS"
        )
    entry = VisslDatasetCatalog.get(name)
    key = "train" if split == "TRAIN" else "val"
    if key not in entry:
        raise ConfigError(f"dataset {name!r} in {_catalog_file()} has no {key!r} entry")
    return str(entry[key][0])


def cpu_fallback_overrides(cfg: Any) -> list[str] | None:
    """Overrides that move a GPU config to the CPU (gloo, no SyncBN, no AMP); ``None`` if on CPU."""
    if cfg.MACHINE.DEVICE != "gpu":
        return None
    return [
        "config.MACHINE.DEVICE=cpu",
        "config.DISTRIBUTED.BACKEND=gloo",
        "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=false",
        "config.MODEL.AMP_PARAMS.USE_AMP=false",
    ]
