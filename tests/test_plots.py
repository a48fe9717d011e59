"""Figures: readable without the code (mm axes, colour bar, title), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spacetorch.analyses import analyze_orientation_map, category_patches
from spacetorch.plots import (
    category_map_figure,
    corruption_heatmap,
    figure_to_array,
    orientation_map_figure,
    response_map_figure,
    save_figure,
    smoothness_figure,
    v1_figure,
)


def _labels(fig):
    """(titles, x labels, y labels, colour-bar labels) of a figure's axes."""
    titles = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    titles += [ax.get_title() for ax in fig.axes]
    return titles, [ax.get_xlabel() for ax in fig.axes], [ax.get_ylabel() for ax in fig.axes]


@pytest.fixture(scope="module")
def v1_result():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 12, (3000, 2))
    theta = np.rad2deg(np.arctan2(xy[:, 1] - 6, xy[:, 0] - 6)) / 2 % 180
    orientations = np.repeat(np.arange(8) * 22.5, 2)
    distance = np.abs((orientations[:, None] - theta[None] + 90) % 180 - 90)
    responses = np.exp(-(distance / 20) ** 2)
    return analyze_orientation_map(responses, xy, orientations, window=1.5, stride=0.45)


def test_v1_figure_has_map_curve_and_pinwheel_panels(v1_result, tmp_path: Path) -> None:
    assert len(v1_result.pinwheels) == 1 and v1_result.smoothness > 0.5
    fig = v1_figure(v1_result, title="toy model - layer2.0")
    titles, xlabels, ylabels = _labels(fig)
    assert "toy model - layer2.0" in titles and "1 pinwheels" in " ".join(titles)
    assert xlabels.count("x (mm)") == 2 and "cortical distance (mm)" in xlabels
    assert "preferred orientation (deg)" in ylabels  # the colour bar
    path = save_figure(fig, tmp_path / "figs" / "v1.png")
    assert Image.open(path).size[0] > 1000


@pytest.mark.parametrize("kind", ["response", "orientation", "smoothness", "category"])
def test_each_figure_has_a_title_mm_axes_and_a_colour_bar(kind: str, v1_result, tmp_path: Path) -> None:
    xy = v1_result.coordinates
    if kind == "response":
        fig = response_map_figure(xy, xy[:, 0], title="layer2.0 responses")
        bar = "response"
    elif kind == "orientation":
        fig = orientation_map_figure(xy, v1_result.tuning.preferred, title="layer2.0 orientation")
        bar = "preferred orientation (deg)"
    elif kind == "smoothness":
        fig = smoothness_figure(v1_result.curve, shuffled=v1_result.shuffled_curve, title="layer2.0 smoothness")
        assert "|difference in preference| (deg)" in _labels(fig)[2]
        bar = None
    else:
        t = np.where(np.hypot(*(xy - 6).T) < 3, 5.0, 0.0)
        fig = category_map_figure(xy, t, category_patches(xy, t, min_area=1, sigma=0.5), title="layer4.1 faces")
        bar = "selectivity (t)"
    titles, xlabels, ylabels = _labels(fig)
    assert any(kind in title or "layer" in title for title in titles)
    assert ("x (mm)" in xlabels) or kind == "smoothness"
    if bar:
        assert bar in ylabels
    array = figure_to_array(fig)
    assert array.ndim == 3 and array.shape[2] == 3 and array.std() > 0
    save_figure(fig, tmp_path / f"{kind}.png")


def test_a_failed_save_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = response_map_figure(np.zeros((2, 2)), np.zeros(2), title="x")

    def broken(file, **kwargs):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_figures_get_the_permissions_the_umask_gives(tmp_path: Path, mask: int) -> None:
    import os

    fig = response_map_figure(np.zeros((2, 2)), np.zeros(2), title="x")
    previous = os.umask(mask)
    try:
        path = save_figure(fig, tmp_path / "out.png")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_comparison_figure_marks_an_alpha_without_a_map(v1_result, tmp_path: Path) -> None:
    from spacetorch.plots import comparison_figure

    sl = {"layer1.0": 0.5, "layer2.0": 0.49}
    nan = float("nan")
    rows = [
        {"alpha": 0.0, "seed": 0, "sl": sl, "smoothness": 0.3, "shuffled_smoothness": 0.05},
        {"alpha": 25.0, "seed": 0, "sl": sl, "smoothness": nan, "shuffled_smoothness": nan},
    ]
    fig = comparison_figure(rows, {0.0: v1_result, 25.0: None}, layer="layer2.0")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no orientation-selective unit" in texts
    assert save_figure(fig, tmp_path / "c.png").stat().st_size > 10_000


def test_corruption_heatmap_labels_every_measured_cell_and_the_means() -> None:
    grid = np.array([[0.9, 0.5, np.nan], [0.25, 0.125, 0.0]])
    fig = corruption_heatmap(grid, ["fog", "snow"], [1, 3, 5], title="t")
    ax = fig.axes[0]
    labels = sorted(text.get_text() for text in ax.texts)
    # five measured cells and two means (fog's over its two measured severities); no label for NaN
    assert labels == sorted(["90.0", "50.0", "25.0", "12.5", "0.0", "70.0", "12.5"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "5", "mean"]
    with pytest.raises(ValueError, match=r"accuracy has shape \(2, 3\), expected \(2, 2\)"):
        corruption_heatmap(grid, ["fog", "snow"], [1, 3], title="t")


def test_the_category_map_colour_range_is_not_set_by_a_few_outliers() -> None:
    from spacetorch.plots import robust_limit

    rng = np.random.default_rng(0)
    t = rng.normal(0, 2, 10_000)
    t[:5] = 500.0  # five extreme units
    assert robust_limit(t) == pytest.approx(np.percentile(np.abs(t), 99))
    assert 4 < robust_limit(t) < 7, "about 2.6 standard deviations, not 500"
    assert robust_limit(np.zeros(4)) == 1.0 and robust_limit(np.array([np.nan, 3.0, -3.0])) == pytest.approx(3.0)
