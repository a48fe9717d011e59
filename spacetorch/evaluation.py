"""Evaluation loops over a classifier and a set of images, shared by the commands that report
accuracy: the multi-step readout of top-down attention models (accuracy per step, the
IoU-merged multi-step metric, CAM boxes) and accuracy per group of images (the folders of a
corrupted set).  The commands (``spacetorch evaluate-tdam``, ``spacetorch corruptions
evaluate``) parse, check, call these and write; the loops themselves are usable from Python."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["group_accuracy", "multistep_evaluation", "summarise_corruptions"]


def multistep_evaluation(
    model: Any, loader: Any, device: str, *, boxes: dict[int, Any], crop: int, resize: int, keep: set[int], progress: Any
) -> dict[str, Any]:
    """Per-step predictions, CAM boxes and the metrics over ``loader`` (images in dataset order)
    of a top-down attention model; ``progress`` is a tqdm-like bar (``update``, ``close``)."""
    import torch

    from spacetorch.analyses.multistep import (
        cam_box,
        cam_readout,
        class_activation_maps,
        crop_boxes,
        localization_correct,
        multistep_correct,
    )
    from spacetorch.models.capture import capture_outputs
    from spacetorch.models.families.tdam.blocks import limited_steps, time_steps_of

    steps = time_steps_of(model)
    layer, class_weights = cam_readout(model)
    class_weights = class_weights.detach().float()
    correct_steps = np.zeros(steps)
    top5 = multistep = located = 0.0
    seen = 0
    cams: dict[int, list[tuple[np.ndarray, int, float, tuple[float, ...]]]] = {}
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(device)
            per_step = []
            for t in range(1, steps + 1):
                with limited_steps(model, t), capture_outputs(model, [layer]) as captured:
                    logits = model(images)
                probs = logits.float().softmax(1)
                confidence, prediction = probs.max(1)
                maps = class_activation_maps(captured[layer].float(), class_weights, prediction, (crop, crop))
                per_step.append((prediction.cpu(), confidence.cpu(), maps.cpu(), probs))
            last_probs = per_step[-1][3]
            top5 += float((last_probs.topk(min(5, last_probs.shape[1]), 1).indices.cpu() == labels[:, None]).any(1).sum())
            for i, label in enumerate(labels.tolist()):
                index = seen + i
                preds = [int(p[0][i]) for p in per_step]
                confs = [float(p[1][i]) for p in per_step]
                step_boxes = [cam_box(p[2][i]) for p in per_step]
                correct_steps += np.array(preds) == label
                multistep += multistep_correct(preds, confs, step_boxes, label)
                if index in boxes:
                    truth, size = boxes[index]
                    located += localization_correct(preds[-1], label, step_boxes[-1], crop_boxes(truth, size, resize, crop))
                if index in keep:
                    cams[index] = [(p[2][i].numpy(), preds[t], confs[t], step_boxes[t]) for t, p in enumerate(per_step)]
            seen += len(labels)
            progress.update(len(labels))
    progress.close()
    n = max(seen, 1)
    metrics: dict[str, Any] = {
        "top1": float(correct_steps[-1] / n),
        "top5": top5 / n,
        "top1_per_step": [float(c / n) for c in correct_steps],
        "multistep_iou_merged_top1": multistep / n,
        "localization_top1": located / n if boxes else None,
        "time_steps": steps,
    }
    return {"metrics": metrics, "cams": cams}



class _Samples:
    """Map-style dataset of ``(image, label, folder index)`` for a DataLoader."""

    def __init__(self, samples: list[tuple[str, int, int]], transform: Any) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        from spacetorch.data.image_check import open_image

        path, label, group = self.samples[index]
        return self.transform(open_image(path)), label, group



def group_accuracy(
    model: Any, samples: list[tuple[str, int, int]], groups: int, transform: Any, *, device: str = "cpu",
    batch_size: int = 64, workers: int = 0, progress: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Correct top-1 predictions and images per group, over ``samples`` of ``(path, label,
    group)`` read through ``transform`` (each image is read by
    :func:`spacetorch.data.image_check.open_image`, which names a damaged file).

    Returns:
        ``(correct, seen)``, two integer arrays of length ``groups``.
    """
    import torch

    from spacetorch._workers import data_loader

    model.to(device)
    loader = data_loader(_Samples(samples, transform), batch_size=batch_size, workers=workers)
    correct = torch.zeros(groups, dtype=torch.long)
    seen = torch.zeros(groups, dtype=torch.long)
    with torch.no_grad():
        for images, labels, group in loader:
            predicted = model(images.to(device)).argmax(1).cpu()
            correct += torch.bincount(group, weights=(predicted == labels).double(), minlength=groups).long()
            seen += torch.bincount(group, minlength=groups)
            if progress is not None:
                progress(len(labels))
    return correct.numpy(), seen.numpy()


def summarise_corruptions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means of the per-folder accuracies: over all, per corruption, per severity (unweighted by
    the folders' image counts, as the mean corruption accuracy of the benchmarks)."""
    from spacetorch.data.corruptions import CORRUPTIONS

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    corruptions = list(dict.fromkeys(r["corruption"] for r in rows))
    severities = sorted({r["severity"] for r in rows})
    return {
        "mean_corruption_accuracy": mean([r["accuracy"] for r in rows]),
        "per_corruption": {c: mean([r["accuracy"] for r in rows if r["corruption"] == c]) for c in corruptions},
        "per_severity": {str(s): mean([r["accuracy"] for r in rows if r["severity"] == s]) for s in severities},
        "missing_benchmark_corruptions": [c for c in CORRUPTIONS if c not in corruptions],
    }
