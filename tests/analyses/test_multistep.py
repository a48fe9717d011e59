"""The multi-step metric, CAM boxes and box reading on hand-made inputs with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spacetorch.analyses.multistep import (
    box_iou,
    cam_box,
    class_activation_maps,
    crop_boxes,
    localization_correct,
    multistep_correct,
    read_voc_boxes,
)

LEFT, RIGHT = (0.0, 0.0, 9.0, 9.0), (20.0, 20.0, 29.0, 29.0)


def test_box_iou_known_values() -> None:
    assert box_iou(LEFT, LEFT) == 1.0
    assert box_iou(LEFT, RIGHT) == 0.0
    # two 10 x 10 boxes sharing 5 x 10 pixels: 50 / 150
    assert box_iou((0, 0, 9, 9), (5, 0, 14, 9)) == pytest.approx(1 / 3)


def test_cam_box_is_the_largest_region_above_the_threshold() -> None:
    cam = np.zeros((40, 40))
    cam[2:5, 30:33] = 1.0  # small, strongest blob
    cam[10:30, 5:15] = 0.5  # large blob, above 0.15 of the max
    cam[35, 35] = 0.1  # below the threshold
    assert cam_box(cam) == (5.0, 10.0, 14.0, 29.0)
    assert cam_box(np.ones((8, 6))) == (0.0, 0.0, 5.0, 7.0)  # constant: the whole image


def test_class_activation_maps_weight_the_features_of_each_images_class() -> None:
    features = torch.randn(2, 3, 4, 5)
    weights = torch.randn(7, 3)
    classes = torch.tensor([6, 1])
    maps = class_activation_maps(features, weights, classes)
    for b in range(2):
        expected = sum(weights[classes[b], c] * features[b, c] for c in range(3))
        torch.testing.assert_close(maps[b], expected)
    assert class_activation_maps(features, weights, classes, (8, 10)).shape == (2, 8, 10)


@pytest.mark.parametrize(
    "predictions, confidences, boxes, expected",
    [
        ([3, 5], [0.9, 0.6], [LEFT, LEFT], False),  # one region: the confident wrong step wins
        ([3, 5], [0.6, 0.9], [LEFT, LEFT], True),  # one region: the confident right step wins
        ([3, 5], [0.9, 0.2], [LEFT, RIGHT], True),  # two regions: both kept, one is right
        ([5, 3, 3], [0.5, 0.4, 0.9], [LEFT, RIGHT, LEFT], False),  # step 3 replaces step 1 in its region
        ([3], [0.9], [LEFT], False),
    ],
)
def test_multistep_correct_hand_made(predictions: list[int], confidences: list[float], boxes: list, expected: bool) -> None:
    assert multistep_correct(predictions, confidences, boxes, label=5) is expected


def test_localization_needs_the_class_and_an_overlapping_box() -> None:
    truth = [RIGHT, (0.0, 0.0, 8.0, 9.0)]
    assert localization_correct(1, 1, LEFT, truth)  # IoU 0.9 with the second box
    assert not localization_correct(2, 1, LEFT, truth)
    assert not localization_correct(1, 1, (40.0, 40.0, 50.0, 50.0), truth)


def test_voc_boxes_and_the_evaluation_crop(tmp_path: Path) -> None:
    xml = tmp_path / "ILSVRC2012_val_00000001.xml"
    xml.write_text(
        "<annotation><size><width>512</width><height>256</height><depth>3</depth></size>"
        "<object><name>n01</name><bndbox><xmin>144</xmin><ymin>16</ymin><xmax>367</xmax><ymax>239</ymax></bndbox></object>"
        "<object><name>n01</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>"
        "</annotation>"
    )
    boxes, size = read_voc_boxes(xml)
    assert size == (512, 256) and boxes[0] == (144.0, 16.0, 367.0, 239.0)
    # shorter side 256 -> 256 (no scaling), centre crop 224 starts at x 144, y 16
    assert crop_boxes(boxes, size, resize=256, crop=224) == [(0.0, 0.0, 223.0, 223.0), (0.0, 0.0, 0.0, 0.0)]
    # shorter side 256 -> 128 halves everything; the crop of 112 starts at x 72, y 8
    assert crop_boxes([(160, 24, 300, 200)], size, resize=128, crop=112) == [(8.0, 4.0, 78.0, 92.0)]
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><size><width>5</width></size></annotation>")
    with pytest.raises(ValueError, match=r"bad.xml: not an ImageNet/VOC box annotation"):
        read_voc_boxes(bad)


def _pooled_decomposition(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, CAMs of every class (B, K, h, w), the readout layer's output)."""
    from spacetorch.analyses.multistep import cam_readout
    from spacetorch.models.capture import capture_outputs

    layer, weights = cam_readout(model)
    with torch.no_grad(), capture_outputs(model, [layer]) as captured:
        logits = model(x)
    features = captured[layer]
    return logits, torch.einsum("kc,bchw->bkhw", weights, features), features


def test_a_resnets_cams_average_to_its_logits() -> None:
    from spacetorch.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=7).eval()
    logits, cams, _ = _pooled_decomposition(model, torch.rand(2, 3, 64, 64))
    torch.testing.assert_close(cams.mean((2, 3)) + model.fc.bias, logits)


def test_a_convnexts_cams_are_its_logits_through_the_heads_norm() -> None:
    """logit_k = (mean CAM_k - mu * sum_c W'_kc) / sigma + (W norm.bias + b)_k, with mu and sigma
    the mean and standard deviation of the image's pooled features: an affine map per image."""
    from spacetorch.models import create_model

    torch.manual_seed(0)
    model = create_model("tdconvnext_tiny", num_classes=7, depths=(1, 1, 1, 1), dims=(8, 16, 32, 64)).eval()
    torch.nn.init.uniform_(model.head.norm.weight, 0.5, 1.5)
    torch.nn.init.uniform_(model.head.norm.bias, -0.5, 0.5)
    logits, cams, features = _pooled_decomposition(model, torch.rand(2, 3, 64, 64))
    pooled = features.mean((2, 3))
    mu = pooled.mean(1, keepdim=True)
    sigma = (pooled.var(1, unbiased=False, keepdim=True) + model.head.norm.eps).sqrt()
    w = model.head.fc.weight * model.head.norm.weight
    expected = (cams.mean((2, 3)) - mu * w.sum(1)) / sigma + model.head.fc.weight @ model.head.norm.bias + model.head.fc.bias
    torch.testing.assert_close(expected, logits, atol=1e-5, rtol=1e-4)


def test_a_model_without_a_known_readout_is_refused_by_name() -> None:
    from spacetorch.analyses.multistep import cam_readout

    with pytest.raises(ValueError, match="need a ResNet .* or a timm ConvNeXt .*; Sequential is neither"):
        cam_readout(torch.nn.Sequential(torch.nn.Linear(2, 2)))
