"""TopoLoss and the locally connected smoothness term against hand computations, and TopoLoss
against the values of the ``topoloss`` package (0.0.2) on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spacetorch.losses import local_weight_sheet, neighbour_dissimilarity, sheet_shape, topoloss, weight_sheet


@pytest.mark.parametrize(("units", "shape"), [(64, (8, 8)), (128, (8, 16)), (12, (3, 4)), (7, (1, 7)), (1, (1, 1))])
def test_sheet_shape_is_the_largest_divisor_below_the_root(units: int, shape: tuple[int, int]) -> None:
    assert sheet_shape(units) == shape


@pytest.mark.parametrize(("out", "factor", "package_value"), [
    # topoloss 0.0.2: TopoLoss([LaplacianPyramid(layer_name="0", factor_h=f, factor_w=f)]).compute(model)
    # on nn.Sequential(nn.Conv2d(3, out, 3, bias=False)) with weight sin(0.37 * arange), float64
    (16, 2.0, 0.9603201867421526),
    (24, 2.0, 0.9926580404464045),
    (36, 3.0, 0.9703315009717891),
])
def test_topoloss_equals_the_topoloss_package(out: int, factor: float, package_value: float) -> None:
    conv = nn.Conv2d(3, out, 3, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.sin(torch.arange(conv.weight.numel(), dtype=torch.float64) * 0.37).reshape(conv.weight.shape))
    with torch.no_grad():
        assert float(topoloss(weight_sheet(conv), factor)) == pytest.approx(package_value, abs=1e-12)


def test_topoloss_by_hand_on_a_two_by_two_grid() -> None:
    """Shrunk by 2 a 2 x 2 grid is one cell, the mean of the four (bilinear at the centre); blown
    back up every cell is that mean; the loss is 1 - the mean cosine of each vector with it."""
    vectors = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 3.0]])
    mean = vectors.mean(0)
    cos = vectors @ mean / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(mean))
    sheet = torch.tensor(vectors).reshape(2, 2, 3)
    assert float(topoloss(sheet, 2.0)) == pytest.approx(1 - cos.mean(), abs=1e-12)


def test_a_smooth_weight_grid_has_a_lower_topoloss_than_the_same_grid_shuffled() -> None:
    rows, cols = np.mgrid[0:16, 0:16] / 16.0
    smooth = np.stack([np.cos(2 * rows), np.sin(3 * cols), rows * cols, np.ones_like(rows)], axis=-1)
    sheet = torch.tensor(smooth)
    shuffled = sheet.reshape(256, 4)[torch.randperm(256, generator=torch.Generator().manual_seed(0))].reshape(16, 16, 4)
    assert float(topoloss(sheet, 4.0)) < 0.05 < float(topoloss(shuffled, 4.0))
    assert float(topoloss(torch.ones(8, 8, 5), 2.0)) == pytest.approx(0.0, abs=1e-7)


def test_topoloss_refuses_a_factor_beyond_the_grid() -> None:
    with pytest.raises(ValueError, match=r"factor_h=9 is not valid for a sheet of side 8"):
        topoloss(torch.ones(8, 8, 2), 9)


def test_neighbour_dissimilarity_by_hand() -> None:
    assert float(neighbour_dissimilarity(torch.ones(4, 5, 3) * 2.5)) == pytest.approx(0.0, abs=1e-7)
    orthogonal = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one row, two cells: cos 0
    assert float(neighbour_dissimilarity(orthogonal)) == pytest.approx(1.0)
    # 2 x 2: right pairs cos(a, b) and cos(c, d); down pairs cos(a, c), cos(b, d)
    a, b, c, d = (torch.tensor(v) for v in ([1.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, 1.0]))
    sheet = torch.stack([torch.stack([a, b]), torch.stack([c, d])])
    cos = [2**-0.5, 0.0, -1.0, 2**-0.5]
    assert float(neighbour_dissimilarity(sheet)) == pytest.approx(1 - sum(cos) / 4)


def test_the_local_sheet_tiles_channels_within_each_position() -> None:
    out, h, w = 6, 2, 3  # a 2 x 3 channel grid
    weight = torch.zeros(out, 1, h, w, 1)
    for c in range(out):
        for y in range(h):
            for x in range(w):
                weight[c, 0, y, x, 0] = 100 * c + 10 * y + x
    sheet = local_weight_sheet(weight)
    assert sheet.shape == (h * 2, w * 3, 1)
    for c in range(out):
        for y in range(h):
            for x in range(w):
                assert sheet[y * 2 + c // 3, x * 3 + c % 3, 0] == 100 * c + 10 * y + x
