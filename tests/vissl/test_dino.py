"""The spatial DINO loss, its teacher hook and its config check, against an independent
computation of DINO's cross-entropy and of the spatial loss."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from vissl.models import build_model

from spacetorch.losses import spatial_loss
from spacetorch.models import retinotopic_positions
from spacetorch.vissl.config import ConfigError, compose, validate
from spacetorch.vissl.hooks import SpatialDinoTeacher, hook_generator
from spacetorch.vissl.registry import SpatialCorrelationDinoLoss

from train_helpers import IMAGE_SIZE

DEMO = "demo_cpu_dino_spatial_vit_tiny"
LOSS = "spatial_correlation_dino_loss"


@pytest.fixture(scope="module")
def vit_positions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ViT-Tiny positions at the tests' image size, one neighborhood per block (a known draw)."""
    out = tmp_path_factory.mktemp("vit") / "one_hood"
    positions = retinotopic_positions("vit_tiny_patch16_224", n_neighborhoods=20, input_size=IMAGE_SIZE)
    for layer in positions.layer_positions.values():
        layer.neighborhood_indices = np.asarray(layer.neighborhood_indices)[:1]
    positions.save(out)
    return out


def _config(positions: Path, *extra: str):
    return compose([f"config={DEMO}", f"config.MODEL.TRUNK.TRUNK_PARAMS.position_dir={positions}",
                    f"config.DATA.TRAIN.TRANSFORMS.1.size={IMAGE_SIZE}", *extra])  # fmt: skip


def test_the_prototypes_and_views_are_taken_from_the_head_and_the_transforms(vit_positions: Path) -> None:
    cfg = _config(vit_positions, "config.DATA.TRAIN.TRANSFORMS.0.num_times=3", "config.LOSS.spatial_correlation_dino_loss.crops_for_teacher=[0,1,2]")
    assert cfg.LOSS[LOSS].output_dim == cfg.MODEL.HEAD.PARAMS[0][1]["num_clusters"][0] == 1024
    assert cfg.LOSS[LOSS].num_crops == 3
    assert [type(hook) for hook in hook_generator(cfg)].count(SpatialDinoTeacher) == 1


def test_loss_is_dino_cross_entropy_plus_the_weighted_spatial_losses(vit_positions: Path, one_process_group: None) -> None:
    torch.manual_seed(0)
    cfg = _config(vit_positions, f"config.LOSS.{LOSS}.layer_weights.blocks_4=1.5")
    settings = cfg.LOSS[LOSS]
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    batch = torch.randn(2 * 4, 3, IMAGE_SIZE, IMAGE_SIZE)  # 2 views x 4 images, view-major
    output = model(batch)
    (student,), spatial = output
    assert student.shape == (8, 1024) and len(spatial) == 12

    loss = SpatialCorrelationDinoLoss.from_config(settings)
    with pytest.raises(RuntimeError, match="SpatialDinoTeacher"):
        loss(output, torch.zeros(8))
    teacher = torch.randn(8, 1024)
    loss.teacher_output, loss.teacher_temp = teacher, 0.05
    total = loss(output, torch.zeros(8))

    # DINO: each view's student against the other view's sharpened teacher, averaged
    targets = torch.softmax(teacher / 0.05, dim=-1).chunk(2)
    logs = torch.log_softmax(student / settings.student_temp, dim=-1).chunk(2)
    expected = (-(targets[0] * logs[1]).sum(-1).mean() - (targets[1] * logs[0]).sum(-1).mean()) / 2
    for key, (features, layer) in spatial.items():
        hood = torch.as_tensor(layer.neighborhood_indices[0]).long()
        expected = expected + settings.layer_weights[key] * spatial_loss(features, torch.as_tensor(layer.coordinates), hood)
    torch.testing.assert_close(total, expected)
    # the centre moves towards the teacher's mean output, at DINO's rate
    torch.testing.assert_close(loss.center, (1 - settings.ema_center) * teacher.mean(0, keepdim=True))
    total.backward()
    assert model.trunk.base_model.blocks[4].mlp.fc2.weight.grad is not None


def test_the_teacher_sees_the_students_views_and_moves_towards_the_student(vit_positions: Path) -> None:
    torch.manual_seed(0)
    cfg = _config(vit_positions)
    model = build_model(cfg.MODEL, cfg.OPTIMIZER)
    loss = SpatialCorrelationDinoLoss.from_config(cfg.LOSS[LOSS])
    batch = torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE)
    task = SimpleNamespace(loss=loss, model=model, config=cfg, device=torch.device("cpu"), iteration=0,
                           max_iteration=10, last_batch=SimpleNamespace(sample={"input": batch}))  # fmt: skip
    hook = SpatialDinoTeacher()
    hook.on_start(task)
    hook.on_forward(task)
    with torch.no_grad():
        torch.testing.assert_close(loss.teacher_output, model(batch)[0][-1])  # built as a copy of the student
    assert loss.teacher_temp == pytest.approx(cfg.LOSS[LOSS].teacher_temp_min)
    prototypes = model.heads[0].prototypes0.weight
    torch.testing.assert_close(prototypes.norm(dim=1), torch.ones(1024))  # normalize_last_layer, as configured

    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    students = {name: p.clone() for name, p in model.named_parameters()}
    before = {name: p.clone() for name, p in loss.momentum_teacher.named_parameters()}
    hook.on_update(task)
    m = cfg.LOSS[LOSS].momentum  # at iteration 0 the cosine schedule gives the configured momentum
    for name, teacher in loss.momentum_teacher.named_parameters():
        expected = m * before[name] + (1 - m) * students[name]
        if "prototypes" in name:  # normalised after the update
            expected = torch.nn.functional.normalize(expected, dim=1)
        torch.testing.assert_close(teacher, expected, msg=name)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("config.DATA.TRAIN.COLLATE_FUNCTION=multicrop_collator", "simclr_collator"),
        (f"config.LOSS.{LOSS}.crops_for_teacher=[0]", r"crops_for_teacher \[0, 1\]"),
        ("config.MODEL.HEAD.PARAMS=[[mlp,{dims:[192,128]}],[identity,{}]]", "swav_head"),
    ],
)
def test_views_the_teacher_cannot_see_are_refused(vit_positions: Path, small_images: Path, override: str, message: str) -> None:
    cfg = _config(vit_positions, f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]", override)
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_the_demo_config_passes_its_check(vit_positions: Path, small_images: Path) -> None:
    validate(_config(vit_positions, f"config.DATA.TRAIN.DATA_PATHS=[{small_images / 'train'}]"))
