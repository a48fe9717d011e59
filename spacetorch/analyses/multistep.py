"""Class activation maps, their boxes, and the multi-step metric of top-down attention models.

A model that runs ``T`` computation steps gives ``T`` predictions per image.  For each step the
class activation map (CAM) of its top-1 class, ``sum_c w[k, c] * F[c]`` (classifier weights
times the last feature map), is min-max normalised, upsampled to the image and thresholded at
``0.15``; the box around the largest connected region is the step's box.  The multi-step metric
(:func:`multistep_correct`) keeps one prediction per region: a step whose box overlaps a kept
prediction's box with IoU above ``0.5`` is merged with it (the more confident of the two stays);
otherwise it is kept as well.  The image counts as correct if any kept prediction is right.
This is a best-of-``T`` count, not top-1 accuracy: report it beside top-1, under its own name.

Boxes are ``(x0, y0, x1, y1)`` in pixels, corners included (``x1 >= x0``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

__all__ = [
    "CAM_THRESHOLD",
    "box_iou",
    "cam_box",
    "cam_readout",
    "class_activation_maps",
    "crop_boxes",
    "find_box_file",
    "localization_correct",
    "multistep_correct",
    "read_voc_boxes",
]

#: fraction of the normalised CAM above which pixels belong to the object
CAM_THRESHOLD = 0.15
Box = tuple[float, float, float, float]


def class_activation_maps(
    features: torch.Tensor, weights: torch.Tensor, classes: torch.Tensor, size: tuple[int, int] | None = None
) -> torch.Tensor:
    """CAMs ``(B, H, W)`` of ``classes`` (``(B,)``) from ``features`` ``(B, C, h, w)`` and the
    classifier's ``weights`` ``(K, C)``; upsampled (bilinear) to ``size`` if given."""
    maps = torch.einsum("bc,bchw->bhw", weights[classes].to(features.dtype), features)
    if size is not None and tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return maps


def cam_readout(model: torch.nn.Module) -> tuple[str, torch.Tensor]:
    """The layer whose output the CAMs are read from, and the class weights ``(K, C)`` that read it.

    * a ResNet (``layer4``, then average pooling and ``fc``): ``layer4`` and ``fc.weight``;
    * a timm ConvNeXt (``stages``, then average pooling, a LayerNorm ``head.norm`` and
      ``head.fc``): the last stage and ``head.fc.weight * head.norm.weight``.  The norm after the
      pooling maps each image's pooled features by ``(x - mu) / sigma`` with the image's own
      ``mu`` and ``sigma``, so these CAMs are the exact ones up to a positive scale and a shift
      per image, which the min-max normalised box (:func:`cam_box`) does not see.

    Raises:
        ValueError: the model has neither layout.
    """
    fc = getattr(model, "fc", None)
    if isinstance(getattr(model, "layer4", None), torch.nn.Module) and isinstance(fc, torch.nn.Linear):
        return "layer4", fc.weight
    head, stages = getattr(model, "head", None), getattr(model, "stages", None)
    norm, linear = getattr(head, "norm", None), getattr(head, "fc", None)
    pool = getattr(getattr(head, "global_pool", None), "pool_type", None)
    if (
        isinstance(stages, torch.nn.Sequential) and isinstance(norm, torch.nn.LayerNorm)
        and isinstance(linear, torch.nn.Linear) and pool == "avg"
        and isinstance(getattr(model, "norm_pre", None), torch.nn.Identity)
    ):
        return f"stages.{len(stages) - 1}", linear.weight * norm.weight
    raise ValueError(
        f"class activation maps need a ResNet (layer4, fc) or a timm ConvNeXt (stages, head.norm, head.fc); "
        f"{type(model).__name__} is neither"
    )


def cam_box(cam: np.ndarray | torch.Tensor, threshold: float = CAM_THRESHOLD) -> Box:
    """The box around the largest connected region of ``cam`` (min-max normalised) ``>= threshold``.

    A constant map gives the whole image.
    """
    c = np.asarray(cam.detach().cpu() if isinstance(cam, torch.Tensor) else cam, dtype=np.float64)
    span = c.max() - c.min()
    h, w = c.shape
    if not np.isfinite(span) or span <= 0:
        return (0.0, 0.0, float(w - 1), float(h - 1))
    labels, n = ndimage.label((c - c.min()) / span >= threshold)
    sizes = ndimage.sum_labels(np.ones_like(c), labels, index=np.arange(1, n + 1))
    ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two pixel boxes (corners included)."""
    ix = min(a[2], b[2]) - max(a[0], b[0]) + 1
    iy = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    area = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter / (area - inter))


def multistep_correct(
    predictions: Sequence[int],
    confidences: Sequence[float],
    boxes: Sequence[Sequence[float]],
    label: int,
    iou_threshold: float = 0.5,
) -> bool:
    """Whether any prediction kept after merging the steps whose boxes overlap is ``label``.

    Steps are taken in order; a step whose box has IoU ``> iou_threshold`` with a kept
    prediction's box replaces it if it is more confident, and is dropped otherwise; a step that
    overlaps no kept box is kept.
    """
    if not len(predictions) == len(confidences) == len(boxes):
        raise ValueError(f"one prediction, confidence and box per step; got {len(predictions)}, {len(confidences)}, {len(boxes)}")
    kept: list[tuple[int, float, Sequence[float]]] = []
    for pred, conf, box in zip(predictions, confidences, boxes, strict=True):
        overlapping = next((i for i, (_, _, other) in enumerate(kept) if box_iou(box, other) > iou_threshold), None)
        if overlapping is None:
            kept.append((int(pred), float(conf), box))
        elif conf > kept[overlapping][1]:
            kept[overlapping] = (int(pred), float(conf), box)
    return any(pred == label for pred, _, _ in kept)


def localization_correct(
    prediction: int, label: int, box: Sequence[float], truth: Sequence[Sequence[float]], iou_threshold: float = 0.5
) -> bool:
    """Top-1 localisation: the class is right and the box overlaps a true box with IoU ``>= iou_threshold``."""
    return prediction == label and any(box_iou(box, t) >= iou_threshold for t in truth)


def read_voc_boxes(path: str | Path) -> tuple[list[Box], tuple[int, int]]:
    """The object boxes and the ``(width, height)`` of one ImageNet / PASCAL VOC XML annotation.

    Raises:
        ValueError: naming the file, when it is not such an annotation.
    """
    try:
        root = ET.parse(path).getroot()
        size = root.find("size")
        width, height = int(size.findtext("width")), int(size.findtext("height"))  # type: ignore[union-attr, arg-type]
        boxes = []
        for obj in root.iter("object"):
            b = obj.find("bndbox")
            boxes.append(tuple(float(b.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")))  # type: ignore[union-attr, arg-type]
    except (ET.ParseError, AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not an ImageNet/VOC box annotation (size and object/bndbox with xmin...ymax): {err}") from None
    if not boxes:
        raise ValueError(f"{path}: the annotation has no object box")
    return boxes, (width, height)  # type: ignore[return-value]


def find_box_file(folder: Path, image: Path) -> Path | None:
    """The annotation ``<image stem>.xml`` of ``image`` in ``folder`` or in its class subfolder, if any."""
    for candidate in (folder / f"{image.stem}.xml", folder / image.parent.name / f"{image.stem}.xml"):
        if candidate.is_file():
            return candidate
    return None


def crop_boxes(boxes: Sequence[Sequence[float]], image_size: tuple[int, int], resize: int, crop: int) -> list[Box]:
    """Boxes of a ``(width, height)`` image after resizing its shorter side to ``resize`` and a
    centre crop of ``crop`` px (the evaluation transform), clipped to the crop."""
    w, h = image_size
    # torchvision's Resize(int): the shorter side becomes `resize`, the longer one int(resize * long / short)
    new_w, new_h = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    sx, sy = new_w / w, new_h / h
    left, top = int(round((new_w - crop) / 2.0)), int(round((new_h - crop) / 2.0))
    out = []
    for x0, y0, x1, y1 in boxes:
        box = [x0 * sx - left, y0 * sy - top, x1 * sx - left, y1 * sy - top]
        out.append(tuple(float(np.clip(v, 0, crop - 1)) for v in box))
    return out  # type: ignore[return-value]
