"""Every trunk, head and loss spacetorch registers with VISSL builds from a shipped config and
runs forward and backward on the CPU; a new registration is covered here by registering it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from classy_vision.losses import LOSS_REGISTRY
from vissl.models.heads import MODEL_HEADS_REGISTRY
from vissl.models.trunks import MODEL_TRUNKS_REGISTRY, get_model_trunk

from spacetorch.models import retinotopic_positions
from spacetorch.vissl.config import compose
from spacetorch.vissl.registry import SPATIAL_TRUNK_NAMES, model_from_config

from train_helpers import IMAGE_SIZE


def _ours(registry: dict) -> list[str]:
    return sorted(name for name, cls in registry.items() if cls.__module__.startswith("spacetorch."))


#: the shipped config each spacetorch loss trains with
LOSS_CONFIGS = {
    "spatial_correlation_simclr_info_nce_loss": "demo_cpu_simclr_spatial_resnet18",
    "cross_entropy_spatial_correlation_loss": "supervised_spatial_resnet18",
    "spatial_correlation_dino_loss": "demo_cpu_dino_spatial_vit_tiny",
}


def test_every_registered_loss_has_a_config_here() -> None:
    assert _ours(LOSS_REGISTRY) == sorted(LOSS_CONFIGS)
    assert _ours(MODEL_HEADS_REGISTRY) == ["identity"]  # exercised by every spatial model below


@pytest.fixture(scope="module")
def positions_of(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``positions_of(model)``: a small position set of a registered model, made once."""
    made: dict[str, Path] = {}

    def make(model: str) -> Path:
        if model not in made:
            made[model] = tmp_path_factory.mktemp(model) / "positions"
            retinotopic_positions(model, n_neighborhoods=200, input_size=IMAGE_SIZE).save(made[model])
        return made[model]

    return make


def _config(config: str, trunk: str, positions_of):  # type: ignore[no-untyped-def]
    overrides = [
        f"config={config}",
        f"config.MODEL.TRUNK.NAME={trunk}",
        "++config.MODEL.TRUNK.TRUNK_PARAMS.model=resnet18",
        "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=4",
    ]
    model = model_from_config(compose(overrides).MODEL, getattr(MODEL_TRUNKS_REGISTRY[trunk], "model_name", None))
    return compose(overrides + [f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions_of(model)}"])


def _check_gradients(module: torch.nn.Module, what: str) -> None:
    missing = [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{what}: no gradient for {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None), what


@pytest.mark.parametrize("trunk", _ours(MODEL_TRUNKS_REGISTRY))
@pytest.mark.parametrize("loss_name", sorted(LOSS_CONFIGS))
def test_registered_trunk_forward_backward(trunk: str, loss_name: str, positions_of, request) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    if "dino" in loss_name:
        request.getfixturevalue("one_process_group")
    cfg = _config(LOSS_CONFIGS[loss_name], trunk, positions_of)
    x = torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE)
    if trunk not in SPATIAL_TRUNK_NAMES:  # plain trunks: pooled features only
        module = get_model_trunk(trunk)(cfg.MODEL, trunk)
        (flat,) = module(x)
        assert flat.shape == (8, 512) and torch.isfinite(flat).all()  # resnet18
        flat.square().mean().backward()
        _check_gradients(module, trunk)
        return
    module = get_model_trunk(trunk)(cfg.MODEL, trunk)
    flat, spatial = module(x)
    # a linear task head of the loss's size (the shipped heads, built by VISSL with the identity
    # head, are tested in test_vissl_registry.py for the ResNet-18)
    loss_config = copy.deepcopy(cfg.LOSS[loss_name])
    loss_config["layer_weights"] = dict.fromkeys(spatial, 0.25)  # every layer of this trunk
    loss = LOSS_REGISTRY[loss_name].from_config(loss_config)
    if "dino" in loss_name:  # prototype scores, as a list (a swav_head's output), and the teacher's
        task_head = torch.nn.Linear(flat.shape[1], loss_config.output_dim)
        task_output: object = [task_head(flat)]
        loss.teacher_output, loss.teacher_temp = torch.randn(8, loss_config.output_dim), 0.04
    else:
        task_head = torch.nn.Linear(flat.shape[1], 128 if "simclr" in loss_name else 4)
        task_output = task_head(flat)
    total = loss([task_output, spatial], torch.arange(8) % 4)
    assert torch.isfinite(total)
    assert set(loss.last_spatial_losses) == set(spatial)
    total.backward()
    _check_gradients(module, trunk)
