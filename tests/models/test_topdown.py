"""Top-Down Networks: the pyramid against scipy, the stage's merge written out, shapes and bad
input, and a coarse-to-fine model that learns oriented gratings in a few dozen steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from spacetorch.models import create_model, list_models, model_info
from spacetorch.models.families.coarse_to_fine import GaussianPyramid, TopDownStage

from model_helpers import train_classifier

TOPDOWN = list_models("topdown_*")
BOTTOMUP = list_models("bottomup_*")


@pytest.mark.parametrize(("levels", "channels", "size"), [(3, 1, 28), (3, 3, 32), (5, 3, 128)])
def test_pyramid_levels_equal_scipy_blur_then_subsample(levels: int, channels: int, size: int) -> None:
    images = torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(levels), dtype=torch.float64)
    pyramid = GaussianPyramid(levels, channels)(images)
    assert len(pyramid) == levels and torch.equal(pyramid[0], images)
    for k in range(1, levels):
        sigma, step = 2.0 ** (k - 1), 2**k
        expected = scipy.ndimage.gaussian_filter(images.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror")[..., ::step, ::step]
        assert pyramid[k].shape == (2, channels, size // step, size // step)
        np.testing.assert_allclose(pyramid[k].numpy(), expected, rtol=0, atol=1e-6)


def test_the_pyramid_names_the_input_it_cannot_take() -> None:
    model = create_model("topdown_resnet32_cifar")
    with pytest.raises(ValueError, match=r"input of 30x30 px: the 3-level pyramid halves it 2 times, so height and width must be multiples of 4"):
        model(torch.rand(1, 3, 30, 30))
    with pytest.raises(ValueError, match=r"expected \(B, 3, H, W\), colour images \(convert grey images to RGB first\)"):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"expected \(B, 1, H, W\), grey images"):
        create_model("topdown_resnet20_mnist")(torch.rand(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"expected \(B, 1, H, W\)"):
        create_model("bottomup_resnet20_mnist")(torch.rand(1, 3, 28, 28))
    with pytest.raises(ValueError, match="multiples of 16"):
        create_model("topdown_resnet18_imagenette")(torch.rand(1, 3, 120, 120))


def test_a_later_stage_merges_as_the_reference_says() -> None:
    torch.manual_seed(0)
    stage = TopDownStage(in_chans=3, coarser=8, width=4, blocks=0).eval()
    image, coarse = torch.rand(2, 3, 16, 16), torch.rand(2, 8, 8, 8)
    s = stage.lateral(image)
    up = coarse.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2, written out
    bn, conv = stage.merge[0], stage.merge[2]
    expected = conv(F.relu(bn(torch.cat([up + s, s], dim=1))))
    torch.testing.assert_close(stage(image, coarse), expected)


@pytest.mark.parametrize("name", TOPDOWN + BOTTOMUP)
def test_every_variant_gives_b_by_classes_at_its_input_size(name: str) -> None:
    info = model_info(name)
    model = create_model(name, num_classes=7)
    out = model(torch.rand(3, info.in_chans, info.input_size, info.input_size))
    assert out.shape == (3, 7)


@pytest.mark.parametrize("variant", ["resnet20_mnist", "resnet32_cifar", "resnet18_imagenette"])
def test_twins_have_the_same_stages_read_the_other_way(variant: str) -> None:
    top, bottom = create_model(f"topdown_{variant}"), create_model(f"bottomup_{variant}")
    assert top.widths == bottom.widths[::-1] and top.depths == bottom.depths[::-1]
    info = model_info(f"topdown_{variant}")
    x = torch.rand(1, info.in_chans, info.input_size, info.input_size)
    # the top-down net pools at full resolution, the bottom-up one at the coarsest scale
    assert top.forward_features(x).shape[-1] == info.input_size
    assert bottom.forward_features(x).shape[-1] == info.input_size // 2 ** (len(top.widths) - 1)


def _gratings(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28 px grey gratings at 4 orientations (the class), random phase and frequency, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    y, x = np.mgrid[0:28, 0:28]
    images = []
    for label in labels:
        theta = label * math.pi / 4
        frequency = rng.uniform(0.15, 0.3)
        wave = np.sin(2 * math.pi * frequency * (x * math.cos(theta) + y * math.sin(theta)) + rng.uniform(0, 2 * math.pi))
        images.append(0.5 + 0.4 * wave + rng.normal(0, 0.1, wave.shape))
    return torch.tensor(np.array(images), dtype=torch.float32)[:, None], torch.tensor(labels)


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_a_coarse_to_fine_model_learns_gratings_in_a_few_dozen_steps() -> None:
    torch.manual_seed(0)
    model = create_model("topdown_resnet20_mnist", num_classes=4)
    train_x, train_y = _gratings(32 * 40, seed=0)
    train_classifier(model, train_x, train_y, batch=32)  # 40 steps
    test_x, test_y = _gratings(256, seed=1)
    with torch.no_grad():
        accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
    assert accuracy > 0.5, accuracy  # chance is 0.25


def test_the_docs_table_gives_each_variant_and_twin_its_parameter_count() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "docs" / "families" / "coarse-to-fine.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `topdown_")]
    assert len(rows) == len(TOPDOWN)
    for row in rows:
        cells = [c.strip().strip("`") for c in row.strip("|").split("|")]
        name, twin = cells[0], cells[4]
        assert int(cells[3].replace(",", "")) == sum(p.numel() for p in create_model(name).parameters()), name
        assert int(cells[5].replace(",", "")) == sum(p.numel() for p in create_model(twin).parameters()), twin
