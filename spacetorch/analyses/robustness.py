"""Adversarial robustness and Grad-CAM of classifiers, through maintained libraries.

* :func:`attack_accuracy`: top-1 accuracy under FGSM and PGD (`torchattacks
  <https://github.com/Harry24k/adversarial-attacks-pytorch>`_) at a list of L-infinity budgets.
* :func:`minimal_perturbations`: the smallest L2 perturbation that flips each image (DeepFool,
  from torchattacks), and :func:`accuracy_curve`, the accuracy it implies at each size.
* :func:`scale_ablation`: a coarse-to-fine network's accuracy with each level of its image
  pyramid removed in turn.
* :func:`grad_cam`: Grad-CAM maps (`pytorch-grad-cam <https://github.com/jacobgil/pytorch-grad-cam>`_)
  and :func:`cam_peak` / the CAM box of :mod:`spacetorch.analyses.multistep` to score them.

The attacks work on images in ``[0, 1]``; :class:`Normalized` puts a model's normalisation in
front of it so that the budget ``eps`` is in those units (``8/255``: eight grey levels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ATTACKS", "Normalized", "accuracy_curve", "attack_accuracy", "cam_peak", "check_epsilons", "grad_cam",
    "minimal_perturbations", "scale_ablation",
]


class Normalized(nn.Module):
    """``model((x - mean) / std)``: a model taking images in ``[0, 1]``."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model((x - self.mean) / self.std)
        return out


def _fgsm(model: nn.Module, eps: float, **_: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torchattacks

    attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torchattacks.FGSM(model, eps=eps)
    return attack


def _pgd(model: nn.Module, eps: float, *, steps: int = 10, **_: Any) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    import torchattacks

    # step 2.5 * eps / steps, as Madry et al.: the budget's edge is reachable from a random start
    attack: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torchattacks.PGD(
        model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True
    )
    return attack


#: attack name -> ``factory(model, eps, steps=...)`` returning ``attack(images, labels) -> adversarial images``
ATTACKS: dict[str, Callable[..., Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {"fgsm": _fgsm, "pgd": _pgd}


def check_epsilons(epsilons: Sequence[float]) -> list[float]:
    """The budgets, sorted; ``ValueError`` for an empty list or a negative or non-finite value."""
    if len(epsilons) == 0:
        raise ValueError("expected at least one epsilon (an L-infinity budget in [0, 1] image units, e.g. 8/255)")
    bad = [e for e in epsilons if not (np.isfinite(e) and 0 <= e <= 1)]
    if bad:
        raise ValueError(f"epsilons must lie in [0, 1] (image units, e.g. 8/255), got {bad}")
    return sorted(set(float(e) for e in epsilons))


def attack_accuracy(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    epsilons: Sequence[float],
    *,
    attacks: Sequence[str] = ("fgsm", "pgd"),
    pgd_steps: int = 10,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> dict[tuple[str, float], float]:
    """Top-1 accuracy of ``model`` (taking ``[0, 1]`` images, see :class:`Normalized`) under each
    attack at each budget, over ``batches`` of ``(images, labels)``.

    Returns ``{(attack, eps): accuracy}``, with ``("clean", 0.0)``; budget 0 of an attack is the
    clean accuracy without running it.  ``progress(n)`` is called after every batch.

    Raises:
        ValueError: see :func:`check_epsilons`; an unknown attack name.
    """
    budgets = check_epsilons(epsilons)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {unknown}; expected some of {sorted(ATTACKS)}")
    model = model.to(device).eval()
    torch.manual_seed(seed)  # PGD's random start
    correct: dict[tuple[str, float], float] = {("clean", 0.0): 0.0}
    correct.update({(a, e): 0.0 for a in attacks for e in budgets})
    seen = 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            clean = (model(images).argmax(1) == labels).sum().item()
        correct["clean", 0.0] += clean
        for name in attacks:
            for eps in budgets:
                if eps == 0:
                    correct[name, eps] += clean
                    continue
                adversarial = ATTACKS[name](model, eps, steps=pgd_steps)(images, labels)
                with torch.no_grad():
                    correct[name, eps] += (model(adversarial).argmax(1) == labels).sum().item()
        seen += len(labels)
        if progress is not None:
            progress(len(labels))
    return {key: value / max(seen, 1) for key, value in correct.items()}


def minimal_perturbations(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    steps: int = 50,
    overshoot: float = 0.02,
    device: str | torch.device = "cpu",
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Per image, the L2 norm (``[0, 1]`` image units) of the smallest perturbation DeepFool finds
    that changes the model's prediction: 0 for an image already misclassified, ``inf`` where
    ``steps`` iterations did not flip it.  For a linear model DeepFool's answer is exact (up to
    its ``overshoot``): the distance to the nearest decision boundary.
    """
    import torchattacks

    model = model.to(device).eval()
    norms: list[np.ndarray] = []
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            right = model(images).argmax(1) == labels
        adversarial = torchattacks.DeepFool(model, steps=steps, overshoot=overshoot)(images, labels)
        with torch.no_grad():
            flipped = model(adversarial).argmax(1) != labels
        size = (adversarial - images).flatten(1).norm(dim=1)
        norms.append(torch.where(~right, 0.0, torch.where(flipped, size, torch.inf)).cpu().numpy())
        if progress is not None:
            progress(len(labels))
    return np.concatenate(norms) if norms else np.zeros(0)


def accuracy_curve(norms: np.ndarray, sizes: Sequence[float] | np.ndarray) -> np.ndarray:
    """The accuracy under perturbations of each L2 size: the fraction of images whose minimal
    perturbation is larger (``norms`` from :func:`minimal_perturbations`)."""
    n = np.asarray(norms, dtype=np.float64)
    return np.array([float(np.mean(n > size)) if n.size else float("nan") for size in sizes])


def scale_ablation(
    model: nn.Module,
    pyramid: Any,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Top-1 accuracy of a coarse-to-fine network with each level of its image pyramid replaced
    by that level's mean grey (per image and channel: no structure, the same brightness), in turn.

    Args:
        model: the classifier (taking ``[0, 1]`` images, see :class:`Normalized`).
        pyramid: its :class:`~spacetorch.models.families.coarse_to_fine.GaussianPyramid`, whose
            output (finest level first) is changed while a level is ablated.

    Returns:
        ``{"none": clean accuracy, "level 0 (1/1)": ..., "level 1 (1/2)": ...}``, finest first.
    """
    levels = int(pyramid.levels)
    ablate: list[int | None] = [None]

    def replace(_module: nn.Module, _inputs: Any, output: list[torch.Tensor]) -> list[torch.Tensor]:
        if ablate[0] is None:
            return output
        changed = list(output)
        level = changed[ablate[0]]
        changed[ablate[0]] = level.mean(dim=(2, 3), keepdim=True).expand_as(level)
        return changed

    model = model.to(device).eval()
    batches = list(batches)
    handle = pyramid.register_forward_hook(replace)
    accuracy: dict[str, float] = {}
    try:
        for setting in [None, *range(levels)]:
            ablate[0] = setting
            correct = seen = 0
            with torch.no_grad():
                for images, labels in batches:
                    correct += int((model(images.to(device)).argmax(1) == labels.to(device)).sum())
                    seen += len(labels)
            accuracy["none" if setting is None else f"level {setting} (1/{2**setting})"] = correct / max(seen, 1)
    finally:
        handle.remove()
    return accuracy


def grad_cam(model: nn.Module, layer: nn.Module, images: torch.Tensor, targets: Sequence[int] | None = None) -> np.ndarray:
    """Grad-CAM of ``model`` at ``layer`` for ``images`` ``(B, C, H, W)``: ``(B, H, W)`` maps in
    ``[0, 1]`` at the input's size, for the classes ``targets`` (default: each image's top-1)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    was_training = model.training
    model.eval()
    try:
        with GradCAM(model=model, target_layers=[layer]) as cam:
            chosen = None if targets is None else [ClassifierOutputTarget(int(t)) for t in targets]
            maps: np.ndarray = cam(input_tensor=images, targets=chosen)
    finally:
        model.train(was_training)
    return maps


def cam_peak(cam: np.ndarray) -> tuple[int, int]:
    """``(row, column)`` of a map's maximum."""
    row, column = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(row), int(column)
