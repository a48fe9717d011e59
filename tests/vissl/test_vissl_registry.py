"""The registered trunks, head and losses, built through VISSL's own registry and config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from vissl.losses.simclr_info_nce_loss import SimclrInfoNCELoss
from vissl.models import build_model
from vissl.models.heads import get_model_head
from vissl.models.trunks import get_model_trunk

from spacetorch.losses import spatial_loss
from spacetorch.models import retinotopic_positions
from spacetorch.models.layers import vissl_key
from spacetorch.models.positions import NetworkPositions
from spacetorch.vissl.config import compose
from spacetorch.vissl.registry import CrossEntropySpatialCorrelationLoss, SpatialCorrelationSimclrInfoNCELoss
from spacetorch.vissl.train_step import _describe_non_finite

from train_helpers import IMAGE_SIZE, N_HOODS


def _model_config(position_dir: Path, trunk: str = "spatial_resnet18", *extra: str):
    cfg = compose(
        [
            "config=demo_cpu_simclr_spatial_resnet18",
            f"config.MODEL.TRUNK.NAME={trunk}",
            f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={position_dir}",
            *extra,
        ]
    )
    return cfg


def test_spatial_trunk_keys_match_shipped_config_layer_weights(small_positions: Path) -> None:
    for name in ("demo_cpu_simclr_spatial_resnet18", "simclr_spatial_resnet18", "supervised_spatial_resnet18"):
        cfg = compose([f"config={name}", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={small_positions}"])
        trunk = get_model_trunk(cfg.MODEL.TRUNK.NAME)(cfg.MODEL, cfg.MODEL.TRUNK.NAME)
        _, spatial = trunk(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE))
        positions = NetworkPositions.load_from_dir(small_positions)
        assert set(spatial) == set(cfg.LOSS[cfg.LOSS.name].layer_weights), name
        assert set(spatial) == {vissl_key(k) for k in positions}, name


def test_trunk_weights_are_torchvision_resnet_weights(small_positions: Path) -> None:
    cfg = _model_config(small_positions)
    trunk = get_model_trunk("spatial_resnet18")(cfg.MODEL, "spatial_resnet18").eval()
    state = trunk.state_dict()
    assert all(k.startswith("base_model.") for k in state), "positions must not enter checkpoints"
    reference = torchvision.models.resnet18(weights=None)
    reference.fc = torch.nn.Identity()
    reference.load_state_dict({k[len("base_model."):]: v for k, v in state.items()})
    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(trunk(x)[0], reference.eval()(x))


def test_custom_resnet_and_identity_head() -> None:
    cfg = compose(["config=linear_eval_resnet18"])
    trunk = get_model_trunk("custom_resnet")(cfg.MODEL, "custom_resnet")
    (flat,) = trunk(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert flat.shape == (2, 512)
    assert all(k.startswith("base_model.") for k in trunk.state_dict())
    head = get_model_head("identity")(cfg.MODEL)
    payload = {"layer1_0": (torch.ones(1), None)}
    assert head(payload) is payload


def _fixed_neighborhood_positions(tmp_path: Path) -> Path:
    """Positions whose tables hold one neighborhood each, so the loss's draw is known."""
    out = tmp_path / "one_hood"
    positions = retinotopic_positions("resnet18", n_neighborhoods=N_HOODS, input_size=IMAGE_SIZE)
    for layer in positions.layer_positions.values():
        layer.neighborhood_indices = np.asarray(layer.neighborhood_indices)[:1]
    positions.save(out)
    return out


def test_full_model_and_simclr_spatial_loss_equal_independent_sum(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pos_dir = _fixed_neighborhood_positions(tmp_path)
    cfg = _model_config(pos_dir, "spatial_resnet18", "config.LOSS.spatial_correlation_simclr_info_nce_loss.layer_weights.layer2_0=1.5")
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    batch = torch.randn(2 * cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA, 3, IMAGE_SIZE, IMAGE_SIZE)
    embedding, spatial = model(batch)
    assert embedding.shape == (batch.shape[0], 128)

    loss_cfg = cfg.LOSS.spatial_correlation_simclr_info_nce_loss
    loss = SpatialCorrelationSimclrInfoNCELoss.from_config(loss_cfg)
    total = loss([embedding, spatial], torch.zeros(batch.shape[0]))

    expected = SimclrInfoNCELoss(loss_cfg)(embedding, None)
    for key, (features, layer) in spatial.items():
        hood = torch.as_tensor(layer.neighborhood_indices[0]).long()
        sl = spatial_loss(features, torch.as_tensor(layer.coordinates), hood)
        expected = expected + loss_cfg.layer_weights[key] * sl
        torch.testing.assert_close(loss.last_spatial_losses[key], sl.detach())
    torch.testing.assert_close(total, expected)
    total.backward()
    assert next(model.parameters()).grad is not None


def test_cross_entropy_spatial_loss(small_positions: Path) -> None:
    weights = {vissl_key(k): 0.0 for k in NetworkPositions.load_from_dir(small_positions)}
    weights["layer4_1"] = 2.0
    loss = CrossEntropySpatialCorrelationLoss.from_config({"layer_weights": weights})
    cfg = _model_config(small_positions)
    trunk = get_model_trunk("spatial_resnet18")(cfg.MODEL, "spatial_resnet18")
    flat, spatial = trunk(torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE))
    logits = torch.nn.Linear(512, 5)(flat)
    target = torch.tensor([0, 1, 2, 3])
    total = loss([logits, spatial], target)
    assert set(loss.last_spatial_losses) == set(weights)  # weight-0 layers are measured (for the log) too
    expected = torch.nn.functional.cross_entropy(logits, target) + 2.0 * loss.last_spatial_losses["layer4_1"]
    torch.testing.assert_close(total.detach(), expected.detach())


def test_loss_names_layers_missing_from_or_extra_to_layer_weights(small_positions: Path) -> None:
    cfg = _model_config(small_positions)
    trunk = get_model_trunk("spatial_resnet18")(cfg.MODEL, "spatial_resnet18")
    output = trunk(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    weights = {vissl_key(k): 0.25 for k in trunk.positions}
    del weights["layer3_1"]
    weights["layer5_0"] = 1.0
    loss = CrossEntropySpatialCorrelationLoss.from_config({"layer_weights": weights})
    with pytest.raises(KeyError) as err:
        loss([torch.randn(2, 3), output[1]], torch.tensor([0, 1]))
    assert "layer5_0" in str(err.value) and "layer3_1" in str(err.value)


def test_loss_explains_a_model_output_without_spatial_dict() -> None:
    loss = CrossEntropySpatialCorrelationLoss.from_config({"layer_weights": {"layer1_0": 1.0}})
    with pytest.raises(TypeError, match="identity"):
        loss(torch.randn(2, 3), torch.tensor([0, 1]))


def test_non_finite_loss_message_names_iteration_and_layer(small_positions: Path) -> None:
    cfg = _model_config(small_positions)
    trunk = get_model_trunk("spatial_resnet18")(cfg.MODEL, "spatial_resnet18")
    flat, spatial = trunk(torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE))
    features, layer = spatial["layer3_0"]
    spatial["layer3_0"] = (features * float("nan"), layer)
    loss = CrossEntropySpatialCorrelationLoss.from_config({"layer_weights": {k: 1.0 for k in spatial}})
    total = loss([torch.nn.Linear(512, 3)(flat), spatial], torch.tensor([0, 1, 2, 0]))
    assert not torch.isfinite(total)
    message = _describe_non_finite(SimpleNamespace(loss=loss, iteration=17), float(total.detach()))
    assert "iteration 17" in message and "layer3_0" in message and "layer2_0" not in message
