"""Pictures of cortical maps: every figure has axes in mm, a colour bar and a title.

Figures are built with matplotlib's object API (no global pyplot state, no backend
switching), returned as :class:`matplotlib.figure.Figure` and written with
:func:`save_figure`, which never leaves a half-written file behind.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from spacetorch._files import atomic_write
from spacetorch.analyses.category import CategoryPatches
from spacetorch.analyses.dimensionality import Spectrum
from spacetorch.analyses.orientation_map import OrientationMap
from spacetorch.analyses.smoothness import DistanceCurve
from spacetorch.analyses.v1_statistics import V1Statistics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "cam_steps_figure",
    "category_map_figure",
    "category_maps_figure",
    "comparison_figure",
    "corruption_heatmap",
    "dimensionality_figure",
    "figure_to_array",
    "gradcam_figure",
    "minimal_perturbation_figure",
    "orientation_map_figure",
    "response_map_figure",
    "robustness_figure",
    "save_figure",
    "smoothness_figure",
    "swapopt_figure",
    "training_curves_figure",
    "v1_figure",
    "v1_statistics_figure",
    "wiring_figure",
]

_ORIENTATION_CMAP = "hsv"  # cyclic: 0 and 180 deg get the same colour


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _sheet_axes(ax: Axes, title: str) -> None:
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_aspect("equal")
    ax.set_title(title)


def _marker_size(n_points: int) -> float:
    return float(np.clip(4e4 / max(n_points, 1), 0.5, 20.0))


def _scatter(
    ax: Axes,
    coordinates: np.ndarray,
    values: np.ndarray,
    *,
    label: str,
    title: str,
    cmap: str,
    vmin: float | None = None,
    vmax: float | None = None,
) -> None:
    xy = np.asarray(coordinates)
    points = ax.scatter(
        xy[:, 0], xy[:, 1], c=values, s=_marker_size(len(xy)), linewidths=0, cmap=cmap, vmin=vmin, vmax=vmax
    )
    ax.figure.colorbar(points, ax=ax, label=label, shrink=0.85)
    _sheet_axes(ax, title)


def response_map_figure(coordinates: np.ndarray, responses: np.ndarray, *, title: str) -> Figure:
    """Each unit's response to one image at its cortical position.

    Args:
        coordinates: ``(N, 2)`` mm.  responses: ``(N,)``.
    """
    fig = _figure(5.5, 4.6)
    _scatter(fig.add_subplot(), coordinates, np.asarray(responses, dtype=np.float64), label="response", title=title, cmap="viridis")
    return fig


def orientation_map_figure(coordinates: np.ndarray, preferred: np.ndarray, *, title: str) -> Figure:
    """Units coloured by preferred orientation (NaN units, e.g. unselective ones, in grey)."""
    fig = _figure(5.5, 4.6)
    ax = fig.add_subplot()
    _orientation_panel(ax, coordinates, preferred, title)
    return fig


def _orientation_panel(ax: Axes, coordinates: np.ndarray, preferred: np.ndarray, title: str) -> None:
    xy = np.asarray(coordinates)
    preferred = np.asarray(preferred, dtype=np.float64)
    missing = ~np.isfinite(preferred)
    if missing.any():
        ax.scatter(xy[missing, 0], xy[missing, 1], c="0.85", s=_marker_size(len(xy)), linewidths=0)
    _scatter(
        ax, xy[~missing], preferred[~missing], label="preferred orientation (deg)", title=title,
        cmap=_ORIENTATION_CMAP, vmin=0.0, vmax=180.0,
    )


def smoothness_figure(curve: DistanceCurve, *, title: str, shuffled: DistanceCurve | None = None) -> Figure:
    """Preference difference vs cortical distance (and the shuffled chance level)."""
    fig = _figure(5.0, 4.0)
    _smoothness_panel(fig.add_subplot(), curve, shuffled, title)
    return fig


def _smoothness_panel(ax: Axes, curve: DistanceCurve, shuffled: DistanceCurve | None, title: str) -> None:
    ok = curve.pairs > 0
    ax.plot(curve.distances[ok], curve.mean_difference[ok], "o-", color="k", label=f"model (smoothness {curve.smoothness:.2f})")
    if shuffled is not None:
        ok_s = shuffled.pairs > 0
        ax.plot(shuffled.distances[ok_s], shuffled.mean_difference[ok_s], "--", color="0.5",
                label=f"shuffled ({shuffled.smoothness:.2f})")
    ax.set_xlabel("cortical distance (mm)")
    ax.set_ylabel("|difference in preference| (deg)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title)


def v1_figure(result: OrientationMap, *, title: str) -> Figure:
    """The standard V1 figure: orientation map, smoothness curve, gridded map with pinwheels."""
    fig = _figure(16.0, 4.8)
    left, middle, right = fig.subplots(1, 3)
    _orientation_panel(left, result.coordinates, result.selective_preferred,
                       f"orientation map ({int(result.selective.sum())} selective units)")
    near = result.near
    _smoothness_panel(middle, result.curve, result.shuffled_curve, "smoothness" if near is None else (
        f"pairs < {near.radius:g} mm: {near.mean:.1f} deg [{near.ci_low:.1f}, {near.ci_high:.1f}]\n"
        f"vs {near.shuffled_mean:.1f} shuffled (z {near.z:.1f})"))
    grid = result.grid
    half = grid.stride / 2
    image = right.imshow(
        grid.angle, origin="lower", cmap=_ORIENTATION_CMAP, vmin=0, vmax=180, interpolation="nearest",
        extent=(grid.x[0] - half, grid.x[-1] + half, grid.y[0] - half, grid.y[-1] + half),
    )
    fig.colorbar(image, ax=right, label="mean preferred orientation (deg)", shrink=0.85)
    pw = result.pinwheels
    right.scatter(pw.x[pw.sign > 0], pw.y[pw.sign > 0], marker="o", facecolors="white", edgecolors="k", s=18, label="+")
    right.scatter(pw.x[pw.sign < 0], pw.y[pw.sign < 0], marker="o", facecolors="k", edgecolors="white", s=18, label="-")
    density = (f"{result.pinwheel_density:.2f} per spacing² (spacing {result.spacing:.2f} mm)"
               if np.isfinite(result.spacing) else "no dominant column spacing")
    _sheet_axes(right, f"{len(pw)} pinwheels, {density}")
    fig.suptitle(title)
    return fig


def swapopt_figure(before: OrientationMap, after: OrientationMap, *, title: str) -> Figure:
    """One layer before and after swap optimisation: each unit's preferred orientation at its
    old and new position (the units and their tuning are the same), and both smoothness curves."""
    fig = _figure(16.0, 4.8)
    left, middle, right = fig.subplots(1, 3)
    _orientation_panel(left, before.coordinates, before.tuning.preferred, "before: preferred orientation")
    _orientation_panel(middle, after.coordinates, after.tuning.preferred, "after: preferred orientation")
    ok_b, ok_a = before.curve.pairs > 0, after.curve.pairs > 0
    right.plot(before.curve.distances[ok_b], before.curve.mean_difference[ok_b], "o-", color="0.55",
               label=f"before (smoothness {before.smoothness:.2f})")
    right.plot(after.curve.distances[ok_a], after.curve.mean_difference[ok_a], "o-", color="k",
               label=f"after ({after.smoothness:.2f})")
    right.set_xlabel("cortical distance (mm)")
    right.set_ylabel("|difference in preference| (deg)")
    right.set_ylim(bottom=0)
    right.legend(loc="lower right", fontsize="small")
    right.set_title(f"smoothness ({int(after.selective.sum())} selective units)")
    fig.suptitle(title)
    return fig


def _map_row(fig: Any, panels: list[tuple[str, OrientationMap | None]], *, selective: str) -> None:
    """One orientation map per ``(title, map)`` side by side in ``fig``; the title gets ``selective``
    with the selective units' count; a missing map says there is no orientation-selective unit."""
    for ax, (title, result) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels, strict=True):
        if result is None:
            ax.text(0.5, 0.5, "no orientation-selective unit", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(title)
            ax.set_axis_off()
            continue
        _orientation_panel(ax, result.coordinates, result.selective_preferred, title + selective.format(int(result.selective.sum())))


def comparison_figure(rows: list[dict[str, Any]], maps: dict[float, OrientationMap | None], *, layer: str) -> Figure:
    """An alpha comparison: the orientation map of each alpha (first seed), the post-hoc spatial
    loss of every layer, the map's smoothness and how much closer in preference than chance its
    pairs under 1 mm are, per alpha, each seed a point; with category maps measured, also their
    patches per category and how alike neighbours' category selectivity is against chance.

    Args:
        rows: one per run, with ``alpha``, ``seed``, ``sl`` (``{layer: SL}``), ``smoothness``,
            ``shuffled_smoothness`` and the ``near_*`` statistics (as ``compare-alpha`` measures
            them), and ``category_*`` ones where category maps were measured.
        maps: alpha -> the orientation map of its first seed that has one (None: no run of that
            alpha has an orientation-selective unit).
    """
    alphas = sorted(maps)
    with_categories = any("category_patches" in row for row in rows)
    fig = _figure(max(4.2 * len(alphas), 20.0 if with_categories else 14.0), 9.0)
    top, bottom = fig.subfigures(2, 1)  # type: ignore[misc]  # matplotlib types one subfigure or an array
    _map_row(top, [(f"alpha {alpha:g}: {layer}", maps[alpha]) for alpha in alphas], selective=" ({} selective)")
    axes = bottom.subplots(1, 5 if with_categories else 3)
    left, right, near = axes[:3]
    layers = list(rows[0]["sl"])
    colours = {alpha: f"C{i}" for i, alpha in enumerate(alphas)}
    for i, alpha in enumerate(alphas):
        runs = [row for row in rows if row["alpha"] == alpha]
        values = np.array([[row["sl"][name] for name in layers] for row in runs])
        for run in values:
            left.plot(range(len(layers)), run, "o", color=colours[alpha], alpha=0.5, markersize=4)
        left.plot(range(len(layers)), values.mean(0), "-", color=colours[alpha], label=f"alpha {alpha:g} (n={len(runs)})")
        smooth = [row["smoothness"] for row in runs]
        shuffled = [row["shuffled_smoothness"] for row in runs]
        right.plot([i] * len(smooth), smooth, "o", color=colours[alpha], alpha=0.7)
        right.plot([i], [np.mean(smooth)], "_", color="k", markersize=24)
        right.plot([i] * len(shuffled), shuffled, "x", color="0.55", label="shuffled map" if i == 0 else None)
        # how much closer in preference pairs under 1 mm are than chance, with the interval over pairs
        gain = np.array([row.get("near_shuffled", np.nan) - row.get("near_difference", np.nan) for row in runs])
        spread = np.array([(row.get("near_ci_high", np.nan) - row.get("near_ci_low", np.nan)) / 2 for row in runs])
        offsets = i + np.linspace(-0.15, 0.15, len(runs)) if len(runs) > 1 else np.array([i])
        near.errorbar(offsets, gain, yerr=spread, fmt="o", color=colours[alpha], alpha=0.8, capsize=3)
        if with_categories:
            for ax, key in ((axes[3], "category_patches"), (axes[4], "category_near_ratio")):
                per_seed = [row.get(key, np.nan) for row in runs]
                ax.plot([i] * len(per_seed), per_seed, "o", color=colours[alpha], alpha=0.7)
                ax.plot([i], [np.nanmean(per_seed)], "_", color="k", markersize=24)
    near.axhline(0, color="0.55", linestyle="--", linewidth=1)
    near.set_xticks(range(len(alphas)), [f"{alpha:g}" for alpha in alphas])
    near.set_xlim(-0.5, len(alphas) - 0.5)
    near.set_xlabel("alpha")
    near.set_ylabel("shuffled - observed difference (deg)")
    near.set_title(f"{layer} pairs < 1 mm: closer than chance by\n(points: seeds, bars: 95% CI over pairs)")
    if with_categories:
        category_layer = next(row["category_layer"] for row in rows if "category_layer" in row)
        for ax, label, title in ((axes[3], "patches per category", f"{category_layer} category patches"),
                                 (axes[4], "|t difference| of pairs < 2.4 mm / shuffled",
                                  f"{category_layer} category maps: 1 = no order")):
            ax.set_xticks(range(len(alphas)), [f"{alpha:g}" for alpha in alphas])
            ax.set_xlim(-0.5, len(alphas) - 0.5)
            ax.set_xlabel("alpha")
            ax.set_ylabel(label)
            ax.set_title(f"{title}\n(points: seeds, bar: mean)")
        axes[4].axhline(1, color="0.55", linestyle="--", linewidth=1)
    left.set_xticks(range(len(layers)), layers, rotation=45)
    left.set_ylabel("spatial loss on the gratings (post hoc)")
    left.set_title("SL per layer (points: seeds, line: mean)")
    left.legend(fontsize="small")
    right.set_xticks(range(len(alphas)), [f"{alpha:g}" for alpha in alphas])
    right.set_xlim(-0.5, len(alphas) - 0.5)
    right.set_xlabel("alpha")
    right.set_ylabel(f"{layer} smoothness")
    right.set_title("smoothness (points: seeds, bar: mean)")
    right.legend(fontsize="small")
    return fig


def methods_figure(rows: list[dict[str, Any]], maps: dict[str, OrientationMap | None], *, layer: str) -> Figure:
    """A methods comparison: the orientation map of each method on its sheet (first seed), then
    the map's smoothness (and the shuffled map's), the selective fraction, the post-hoc spatial
    loss of ``layer`` on that sheet and the final task loss, each seed a point, the mean a bar.

    Args:
        rows: one per run and sheet, with ``method``, ``sheet``, ``seed``, ``sl``, ``smoothness``,
            ``shuffled_smoothness``, ``selective_fraction`` and ``task_loss``.
        maps: ``"method (sheet)"`` -> the map of its first seed (None: no selective unit).
    """
    labels = list(maps)
    fig = _figure(max(3.6 * len(labels), 12.0), 9.5)
    top, bottom = fig.subfigures(2, 1)  # type: ignore[misc]  # matplotlib types one subfigure or an array
    _map_row(top, [(label, maps[label]) for label in labels], selective="\n{} selective")
    panels = bottom.subplots(1, 4)
    metrics = [
        ("smoothness", f"{layer} smoothness (x: shuffled map)"),
        ("selective_fraction", "orientation-selective fraction"),
        ("sl", f"{layer} spatial loss (post hoc)"),
        ("task_loss", "final task loss"),
    ]
    for ax, (key, title) in zip(panels, metrics, strict=True):
        for i, label in enumerate(labels):
            runs = [row for row in rows if f"{row['method']} ({row['sheet']})" == label]
            values = np.array([row["sl"].get(layer, np.nan) if key == "sl" else row[key] for row in runs], dtype=np.float64)
            ax.plot([i] * len(values), values, "o", color=f"C{i % 10}", alpha=0.7)
            if np.isfinite(values).any():
                ax.plot([i], [np.nanmean(values)], "_", color="k", markersize=20)
            if key == "smoothness":
                shuffled = [row["shuffled_smoothness"] for row in runs]
                ax.plot([i] * len(shuffled), shuffled, "x", color="0.55")
        if key == "task_loss" and not any(np.isfinite(row["task_loss"]) for row in rows):
            ax.text(0.5, 0.5, "no run trained here", transform=ax.transAxes, ha="center", color="0.4")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize="small")
        ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set_title(title, fontsize="small")
    return fig


def robust_limit(values: np.ndarray, percentile: float = 99.0) -> float:
    """The ``percentile``-th percentile of ``|values|`` (NaN left out): a colour limit that a few
    outliers do not set; 1 where every value is 0 or NaN."""
    magnitudes = np.abs(np.asarray(values, dtype=np.float64))
    magnitudes = magnitudes[np.isfinite(magnitudes)]
    limit = float(np.percentile(magnitudes, percentile)) if magnitudes.size else 0.0
    return limit if limit > 0 else 1.0


def category_map_figure(coordinates: np.ndarray, t: np.ndarray, patches: CategoryPatches, *, title: str) -> Figure:
    """Selectivity (t) of each unit for one category, with the outlines of its patches.

    The colour range is symmetric about 0 and ends at the 99th percentile of ``|t|`` (units
    beyond it take the end colours), so that a few extreme units do not wash out the map.
    """
    fig = _figure(5.8, 4.6)
    ax = fig.add_subplot()
    limit = robust_limit(t)
    _scatter(ax, coordinates, np.asarray(t, dtype=np.float64), label="selectivity (t)", title=title,
             cmap="RdBu_r", vmin=-limit, vmax=limit)
    if len(patches):
        ax.contour(patches.x, patches.y, patches.labels > 0, levels=[0.5], colors="k", linewidths=1.2)
    ax.text(0.02, 0.98, f"{len(patches)} patches, {patches.total_area:.0f} mm²", transform=ax.transAxes, va="top", fontsize="small")
    return fig


def category_maps_figure(coordinates: np.ndarray, t: np.ndarray, maps: Sequence[CategoryPatches], names: Sequence[str],
                         *, title: str) -> Figure:  # fmt: skip
    """One selectivity map per category (``t`` is ``(K, N)``), side by side on a shared colour range
    (symmetric, to the 99th percentile of ``|t|``), each with its patches outlined and counted."""
    k = len(names)
    columns = int(np.ceil(np.sqrt(k)))
    rows = -(-k // columns)
    fig = _figure(4.6 * columns, 4.0 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    limit = robust_limit(t)
    for ax, name, values, patches in zip(axes, names, t, maps, strict=False):
        xy = np.asarray(coordinates)
        points = ax.scatter(xy[:, 0], xy[:, 1], c=values, s=_marker_size(len(xy)), linewidths=0, cmap="RdBu_r",
                            vmin=-limit, vmax=limit)  # fmt: skip
        if len(patches):
            ax.contour(patches.x, patches.y, patches.labels > 0, levels=[0.5], colors="k", linewidths=1.2)
        _sheet_axes(ax, f"{name}: {len(patches)} patches, {patches.total_area:.0f} mm\u00b2")
    for ax in axes[k:]:
        ax.set_visible(False)
    fig.colorbar(points, ax=list(axes[:k]), label="selectivity", shrink=0.8)
    fig.suptitle(title)
    return fig


def cam_steps_figure(
    image: np.ndarray,
    steps: list[tuple[np.ndarray, int, float, tuple[float, ...]]],
    *,
    classes: list[str],
    label: int,
    title: str,
) -> Figure:
    """An image and its class activation map at every computation step of a top-down model.

    Args:
        image: ``(3, H, W)`` or ``(H, W, 3)``, values in ``[0, 1]``.
        steps: per step, ``(cam (H, W), predicted class, confidence, box (x0, y0, x1, y1))``.
        classes: class names; ``label`` the true class.
    """
    from matplotlib.patches import Rectangle

    picture = np.asarray(image, dtype=float)
    if picture.shape[0] == 3 and picture.ndim == 3:
        picture = picture.transpose(1, 2, 0)
    picture = np.clip(picture, 0, 1)
    fig = _figure(2.8 * (len(steps) + 1), 3.3)
    axes = fig.subplots(1, len(steps) + 1)
    axes[0].imshow(picture)
    axes[0].set_title(f"{title}\ntrue: {classes[label]}", fontsize="small")
    for t, (ax, (cam, prediction, confidence, box)) in enumerate(zip(axes[1:], steps, strict=True), 1):
        ax.imshow(picture)
        ax.imshow(cam, cmap="jet", alpha=0.5)
        x0, y0, x1, y1 = box
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="white", linewidth=1.5))
        mark = "right" if prediction == label else "wrong"
        ax.set_title(f"step {t}: {classes[prediction]} ({confidence:.2f}, {mark})", fontsize="small")
    for ax in axes:
        ax.set_axis_off()
    return fig


def corruption_heatmap(accuracy: np.ndarray, corruptions: list[str], severities: list[int], *, title: str) -> Figure:
    """Accuracy per corruption (rows) and severity (columns), each cell labelled in percent, with
    a last column of the mean over severities.

    Args:
        accuracy: ``(len(corruptions), len(severities))`` in ``[0, 1]``; NaN: not measured.
    """
    grid = np.asarray(accuracy, dtype=float)
    if grid.shape != (len(corruptions), len(severities)):
        raise ValueError(f"accuracy has shape {grid.shape}, expected ({len(corruptions)}, {len(severities)})")
    table = np.column_stack([grid, np.nanmean(grid, axis=1)]) if grid.size else grid
    fig = _figure(1.0 * table.shape[1] + 3.0, 0.38 * len(corruptions) + 1.6)
    ax = fig.subplots()
    image = ax.imshow(table, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, column), value in np.ndenumerate(table):
        if np.isfinite(value):
            ax.text(column, row, f"{100 * value:.1f}", ha="center", va="center", fontsize="small",
                    color="black" if value > 0.6 else "white")
    ax.axvline(len(severities) - 0.5, color="white", linewidth=3)
    ax.set_xticks(range(table.shape[1]), [str(s) for s in severities] + ["mean"])
    ax.set_yticks(range(len(corruptions)), corruptions)
    ax.set_xlabel("severity")
    ax.set_title(title, fontsize="medium")
    fig.colorbar(image, ax=ax, label="top-1 accuracy", shrink=0.9)
    return fig


def robustness_figure(rows: list[dict[str, Any]]) -> Figure:
    """Accuracy against the attack budget: one panel per attack, one line per model, the clean
    accuracy at 0.

    Args:
        rows: ``model``, ``attack`` (``"clean"`` for the unattacked accuracy), ``eps`` (in
            ``[0, 1]`` image units) and ``accuracy``, as ``evaluate_topdown.py attack`` writes them.
    """
    attacks = sorted({r["attack"] for r in rows} - {"clean"})
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig = _figure(4.6 * max(len(attacks), 1), 3.8)
    axes = np.atleast_1d(fig.subplots(1, max(len(attacks), 1)))
    for ax, attack in zip(axes, attacks or ["clean"], strict=True):
        for i, model in enumerate(models):
            points = sorted((r["eps"], r["accuracy"]) for r in rows if r["model"] == model and r["attack"] == attack)
            eps = [255 * e for e, _ in points]
            ax.plot(eps, [a for _, a in points], marker="o", color=f"C{i}", label=model, linestyle="-" if "topdown" in model else "--")
        ax.set_xlabel("epsilon (x 1/255)")
        ax.set_ylabel("top-1 accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(attack.upper())
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def minimal_perturbation_figure(curves: dict[str, np.ndarray], sizes: np.ndarray) -> Figure:
    """Accuracy against the L2 size of the perturbation, one line per model: the fraction of
    images whose smallest flipping perturbation is larger than that size."""
    fig = _figure(5.2, 3.8)
    ax = fig.add_subplot()
    for name, accuracy in curves.items():
        ax.plot(sizes, accuracy, label=name, linestyle="-" if name.startswith("topdown") else "--")
    ax.set_xlabel("L2 size of the perturbation ([0, 1] image units)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("smallest flipping perturbation (DeepFool)")
    ax.legend(fontsize="small")
    return fig


def gradcam_figure(
    image: np.ndarray, maps: dict[str, np.ndarray], *, title: str, boxes: Sequence[Sequence[float]] | None = None
) -> Figure:
    """An image and one Grad-CAM per model over it, with the true boxes if given.

    Args:
        image: ``(C, H, W)`` or ``(H, W, C)`` in ``[0, 1]`` (C = 1 or 3); maps: label -> ``(H, W)`` in ``[0, 1]``.
    """
    from matplotlib.patches import Rectangle

    picture = np.asarray(image, dtype=float)
    if picture.ndim == 3 and picture.shape[0] in (1, 3):
        picture = picture.transpose(1, 2, 0)
    picture = np.clip(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, 0, 1)
    grey = {"cmap": "gray"} if picture.ndim == 2 else {}
    fig = _figure(2.8 * (len(maps) + 1), 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(maps) + 1))
    axes[0].imshow(picture, **grey)
    axes[0].set_title(title, fontsize="small")
    for ax, (label, cam) in zip(axes[1:], maps.items(), strict=True):
        ax.imshow(picture, **grey)
        ax.imshow(cam, cmap="jet", alpha=0.5, vmin=0, vmax=1)
        ax.set_title(label, fontsize="small")
    for ax in axes:
        for x0, y0, x1, y1 in boxes or []:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="white", linewidth=1.5))
        ax.set_axis_off()
    return fig


_STATISTICS = {  # distribution -> (axis label, bins)
    "circular_variance": ("circular variance", np.linspace(0, 1, 21)),
    "bandwidth": ("orientation bandwidth (deg, half-width at 1/\u221a2)", np.linspace(0, 90, 19)),
    "preferred_sf": ("preferred spatial frequency (cycles/image)", None),
}


def v1_statistics_figure(stats: V1Statistics, *, title: str, comparison: dict[str, np.ndarray] | None = None,
                         comparison_label: str = "comparison") -> Figure:  # fmt: skip
    """Histograms (fraction of units) of circular variance, bandwidth and preferred SF, with a
    comparison data set's (e.g. macaque V1) drawn over them where it has the statistic."""
    fig = _figure(12, 3.6)
    axes = fig.subplots(1, 3)
    for ax, (name, values) in zip(axes, stats.distributions().items(), strict=True):
        label, bins = _STATISTICS[name]
        other = (comparison or {}).get(name)
        if bins is None:  # the gratings' few spatial frequencies: one bar each
            levels = np.unique(values)
            ax.bar(np.arange(levels.size), [np.mean(values == v) for v in levels], color="0.35",
                   label=f"model ({values.size} units)")  # fmt: skip
            ax.set_xticks(np.arange(levels.size), [f"{v:g}" for v in levels])
            if other is not None and other.size:  # the comparison's values, at the nearest of these levels
                nearest = levels[np.abs(np.log(other[:, None] / levels[None, :])).argmin(1)] if levels.size else other
                ax.step(np.arange(levels.size), [np.mean(nearest == v) for v in levels], where="mid", color="C3",
                        linewidth=2, label=f"{comparison_label} ({other.size})")  # fmt: skip
        else:
            ax.hist(values, bins=bins, weights=np.full(values.size, 1 / max(values.size, 1)), color="0.35",
                    label=f"model ({values.size} units)")  # fmt: skip
            if other is not None and other.size:
                ax.hist(other, bins=bins, weights=np.full(other.size, 1 / other.size), histtype="step", color="C3",
                        linewidth=2, label=f"{comparison_label} ({other.size})")  # fmt: skip
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of units")
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return fig


def dimensionality_figure(spectra: dict[str, Spectrum], *, title: str) -> Figure:
    """Each layer's eigenspectrum on log-log axes (variance normalised to sum 1), with its fitted
    power law over the fitted ranks; the legend gives effective dimensionality and alpha."""
    fig = _figure(6.4, 4.6)
    ax = fig.add_subplot()
    colours = _colours(len(spectra))
    for colour, (name, spectrum) in zip(colours, spectra.items(), strict=True):
        lam = spectrum.eigenvalues / max(float(spectrum.eigenvalues.sum()), 1e-30)
        ranks = np.arange(1, lam.size + 1)
        keep = lam > 0
        ax.loglog(ranks[keep], lam[keep], color=colour, label=f"{name}: ED {spectrum.effective_dimensionality:.1f}, "
                  f"\u03b1 {spectrum.alpha:.2f}")  # fmt: skip
        first, last = spectrum.ranks
        fitted = np.arange(first, min(last, lam.size) + 1)
        if np.isfinite(spectrum.alpha) and fitted.size:
            anchor = lam[first - 1]
            ax.loglog(fitted, anchor * (fitted / first) ** -spectrum.alpha, color=colour, linestyle="--", linewidth=1)
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of variance")
    ax.set_title(title)
    ax.legend(fontsize="x-small")
    return fig


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    return [colormaps["viridis"](x) for x in np.linspace(0.0, 0.9, max(n, 1))]


def wiring_figure(rows: list[dict[str, Any]], *, title: str, example: Any = None) -> Figure:
    """Wiring length per stimulus with the model's positions and with shuffled ones (a line joins
    each stimulus's pair), and, given an ``example`` :class:`~spacetorch.analyses.wiring.WiringLength`,
    its active units and fibres on the two sheets."""
    fig = _figure(10 if example is not None else 4.6, 4.4)
    axes = fig.subplots(1, 2 if example is not None else 1, squeeze=False)[0]
    ax = axes[0]
    stimuli = sorted({r["stimulus"] for r in rows})
    pairs = np.array([[next(r["total"] for r in rows if r["stimulus"] == s and r["positions"] == p)
                       for p in ("model", "shuffled")] for s in stimuli])  # fmt: skip
    for pair in pairs:
        ax.plot([0, 1], pair, color="0.7", linewidth=0.8)
    ax.scatter(np.zeros(len(pairs)), pairs[:, 0], color="C0", zorder=3)
    ax.scatter(np.ones(len(pairs)), pairs[:, 1], color="C3", zorder=3)
    ax.set_xticks([0, 1], ["model positions", "shuffled"])
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel("wiring length (mm)")
    ratios = pairs[:, 1] / pairs[:, 0] if len(pairs) else np.array([])
    ratio = float(np.median(ratios[np.isfinite(ratios)])) if np.isfinite(ratios).any() else float("nan")
    ax.set_title(f"{title}\nmedian shuffled / model: {ratio:.2f}")
    if example is not None:
        ax = axes[1]
        for sheet, colour in ((example.source, "C0"), (example.target, "C2")):
            ax.scatter(*sheet.positions.T, s=8, color=colour, alpha=0.7)
            ax.scatter(*sheet.centroids.T, s=30, marker="+", color="k")
        for i, j in zip(*example.pairs, strict=True):
            a, b = example.source.centroids[i], example.target.centroids[j]
            ax.plot([a[0], b[0]], [a[1], b[1]], color="k", linewidth=0.8)
        _sheet_axes(ax, f"an example stimulus: {example.fibres} fibres, {example.total:.0f} mm")
    return fig


def training_curves_figure(runs: Sequence[Any], *, title: str = "training curves") -> Figure:
    """One panel for the task loss (or, without it, the total loss) and one per layer's spatial
    loss, every run overlaid in its own colour (:class:`~spacetorch.runs.Curves`)."""
    layers = sorted({layer for run in runs for layer in run.spatial_layers})
    has_task = any("Task_Loss" in run.series for run in runs)
    panels = ["Task_Loss" if has_task else "Total_Loss"] + [f"Spatial_Loss/{layer}" for layer in layers]
    columns = min(len(panels), 4)
    rows = -(-len(panels) // columns)
    fig = _figure(3.6 * columns, 3.0 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    colours = _colours(len(runs))
    for ax, tag in zip(axes, panels, strict=False):
        for colour, run in zip(colours, runs, strict=True):
            if tag in run.series:
                steps, values = run.series[tag]
                ax.plot(steps, values, color=colour, linewidth=1, label=run.run)
        ax.set_title({"Task_Loss": "task loss", "Total_Loss": "total loss"}.get(tag, tag.replace("Spatial_Loss/", "spatial loss: ")),
                     fontsize="medium")  # fmt: skip
        ax.set_xlabel("iteration")
    axes[0].legend(fontsize="x-small")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` as PNG to ``path``, all or nothing, making folders.

    A failed or interrupted write leaves no file (or the previous one); the file gets the
    permissions the umask gives.
    """
    return atomic_write(path, lambda file: fig.savefig(file, dpi=dpi, format="png"))


def figure_to_array(fig: Figure, dpi: int = 80) -> np.ndarray:
    """The rendered figure as ``(H, W, 3)`` uint8 RGB (e.g. for TensorBoard)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()  # type: ignore[no-untyped-call]  # matplotlib's Agg canvas is not annotated
    rgba: np.ndarray = np.asarray(canvas.buffer_rgba())  # type: ignore[no-untyped-call]
    rgb: np.ndarray = rgba[..., :3].copy()
    return rgb
