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
