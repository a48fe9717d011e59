"""Attack curves and Grad-CAM on a tiny coarse-to-fine model trained here to tell a filled
bright square (class 1) from a hollow one (class 0), planted in noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spacetorch.analyses.robustness import Normalized, attack_accuracy, cam_peak, check_epsilons, grad_cam
from spacetorch.models import create_model

from model_helpers import train_classifier

SIZE, SQUARE = 28, 8


def _planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Grey noise images with a bright square at a random place (its corner returned): filled
    (class 1) or hollow (class 0, the same brightness and place, another shape)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.5, (n, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    corners = rng.integers(0, SIZE - SQUARE + 1, (n, 2))
    for i, (r, c) in enumerate(corners):
        images[i, 0, r : r + SQUARE, c : c + SQUARE] = 1.0
        if labels[i] == 0:
            images[i, 0, r + 2 : r + SQUARE - 2, c + 2 : c + SQUARE - 2] = rng.uniform(0.0, 0.5, (SQUARE - 4, SQUARE - 4))
    return torch.from_numpy(images), torch.from_numpy(labels), corners


@pytest.fixture(scope="module")
def trained() -> Normalized:
    torch.manual_seed(0)
    model = Normalized(create_model("topdown_resnet20_mnist", num_classes=2), mean=(0.5,), std=(0.25,))
    images, labels, _ = _planted(16 * 40, seed=0)
    train_classifier(model, images, labels, batch=16)
    return model.eval()


def test_the_tiny_model_finds_the_square(trained: Normalized) -> None:
    images, labels, _ = _planted(128, seed=1)
    with torch.no_grad():
        assert float((trained(images).argmax(1) == labels).float().mean()) > 0.9


@pytest.mark.slow  # seconds of model runs end to end; `make test` runs it
def test_attack_accuracy_falls_with_the_budget(trained: Normalized) -> None:
    images, labels, _ = _planted(48, seed=2)
    batches = [(images[:24], labels[:24]), (images[24:], labels[24:])]
    budgets = [0.0, 0.02, 0.05, 0.1, 0.2]
    result = attack_accuracy(trained, batches, budgets, pgd_steps=10)
    assert result["clean", 0.0] > 0.9
    for attack in ("fgsm", "pgd"):
        curve = [result[attack, eps] for eps in budgets]
        assert curve[0] == result["clean", 0.0]
        assert all(later <= earlier for earlier, later in zip(curve, curve[1:], strict=False)), (attack, curve)
        assert curve[-1] < curve[0] - 0.3, (attack, curve)  # the attack does something
    assert result["pgd", 0.1] <= result["fgsm", 0.1]  # the iterated attack is at least as strong


def test_epsilons_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one epsilon"):
        check_epsilons([])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*got \[-0.1\]"):
        check_epsilons([0.0, -0.1])
    assert check_epsilons([0.1, 0.0, 0.1]) == [0.0, 0.1]


def test_grad_cam_peaks_on_the_filled_square(trained: Normalized) -> None:
    images, labels, corners = _planted(32, seed=3)
    chosen = np.flatnonzero(labels.numpy())[:8]  # Grad-CAM of class 1 on images of class 1
    maps = grad_cam(trained, trained.model.norm, images[chosen], targets=[1] * len(chosen))
    assert maps.shape == (len(chosen), SIZE, SIZE) and maps.min() >= 0 and maps.max() <= 1
    for cam, (r, c) in zip(maps, corners[chosen], strict=True):
        row, column = cam_peak(cam)
        assert r - 1 <= row <= r + SQUARE and c - 1 <= column <= c + SQUARE, ((row, column), (r, c))


def test_minimal_perturbations_of_a_linear_model_are_the_distances_to_its_boundaries() -> None:
    """A linear classifier's smallest L2 flip is analytic: min over other classes k of
    (f_y - f_k) / ||w_y - w_k||; DeepFool finds it, larger only by its overshoot."""
    from spacetorch.analyses.robustness import accuracy_curve, minimal_perturbations

    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    images = 0.4 + 0.2 * torch.rand(16, 3, 2, 2)  # well inside [0, 1]: no clipping
    with torch.no_grad():
        logits = linear(images)
    labels = logits.argmax(1)
    labels[0] = (labels[0] + 1) % 3  # one image already wrong
    w, b = linear[1].weight.detach(), linear[1].bias.detach()
    expected = []
    for x, y in zip(images.flatten(1), labels, strict=True):
        f = w @ x + b
        if f.argmax() != y:
            expected.append(0.0)
            continue
        expected.append(min(float((f[y] - f[k]) / (w[y] - w[k]).norm()) for k in range(3) if k != y))
    norms = minimal_perturbations(linear, [(images, labels)], overshoot=0.02)
    assert norms[0] == 0.0
    np.testing.assert_allclose(norms[1:], np.array(expected[1:]) * 1.02, rtol=0.02)
    curve = accuracy_curve(norms, [0.0, np.median(norms), np.inf])
    assert curve[0] == 15 / 16 and curve[-1] == 0.0 and 0 < curve[1] < 1


def test_removing_the_only_level_a_model_reads_leaves_it_at_chance_and_the_others_change_nothing() -> None:
    from spacetorch.analyses.robustness import scale_ablation
    from spacetorch.models.families.coarse_to_fine import GaussianPyramid

    class ReadsTheCoarseLevel(torch.nn.Module):
        """Class 0 while the 1/2-scale image has any structure, class 1 once it is flat."""

        def __init__(self) -> None:
            super().__init__()
            self.pyramid = GaussianPyramid(3, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            structure = self.pyramid(x)[1].flatten(1).std(1)
            return torch.stack([structure, torch.full_like(structure, 1e-4)], 1)

    model = ReadsTheCoarseLevel()
    images = torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    accuracy = scale_ablation(model, model.pyramid, [(images, torch.zeros(6, dtype=torch.long))])
    assert accuracy == {"none": 1.0, "level 0 (1/1)": 1.0, "level 1 (1/2)": 0.0, "level 2 (1/4)": 1.0}
    assert not model.pyramid._forward_hooks, "the hook is removed afterwards"
