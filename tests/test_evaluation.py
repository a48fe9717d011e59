"""The evaluation loops as a library: accuracy per group of images against a count by hand, and
the corruption summary's means against their definition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from spacetorch.evaluation import group_accuracy, summarise_corruptions


class _Brightness(nn.Module):
    """Class 1 for an image brighter than mid-grey, else class 0."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        bright = images.mean((1, 2, 3)) > 0.5
        return torch.stack([(~bright).float(), bright.float()], 1)


def test_group_accuracy_counts_each_groups_correct_predictions(tmp_path: Path) -> None:
    samples = []
    for i, (value, label, group) in enumerate([(20, 0, 0), (230, 1, 0), (230, 0, 0), (20, 0, 1), (20, 1, 1), (230, 1, 2)]):
        path = tmp_path / f"{i}.png"
        Image.new("L", (8, 8), value).save(path)
        samples.append((str(path), label, group))
    seen_progress: list[int] = []
    correct, seen = group_accuracy(_Brightness(), samples, 4, transforms.ToTensor(), batch_size=4,
                                   progress=seen_progress.append)
    np.testing.assert_array_equal(seen, [3, 2, 1, 0])
    np.testing.assert_array_equal(correct, [2, 1, 1, 0])  # group 0: the third is bright but labelled 0
    assert sum(seen_progress) == 6


def test_the_corruption_summary_is_the_unweighted_mean_of_the_folders() -> None:
    rows = [{"corruption": "gaussian_noise", "severity": 1, "accuracy": 0.8},
            {"corruption": "gaussian_noise", "severity": 2, "accuracy": 0.4},
            {"corruption": "fog", "severity": 1, "accuracy": 0.6}]
    summary = summarise_corruptions(rows)
    assert summary["mean_corruption_accuracy"] == pytest.approx(0.6)
    assert summary["per_corruption"] == pytest.approx({"gaussian_noise": 0.6, "fog": 0.6})
    assert summary["per_severity"] == pytest.approx({"1": 0.7, "2": 0.4})
    assert "fog" not in summary["missing_benchmark_corruptions"] and "contrast" in summary["missing_benchmark_corruptions"]
