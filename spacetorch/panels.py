"""The TDANN paper's panels for one model: each writes its PNGs into a folder and returns its numbers.

* :func:`v1_panel`: the orientation map, smoothness and pinwheels of a V1-like layer, and the
  distributions of its units' tuning (circular variance, von Mises bandwidth, preferred SF),
  against a comparison data set when one is given (Figs. 2 and 4);
* :func:`category_panel`: category selectivity maps of a VTC-like layer with their patches,
  patch count and size per category and the overlap between categories (Fig. 3);
* :func:`wiring_panel`: the wiring length between two layers per stimulus, with the model's and
  with shuffled positions (Fig. 7);
* :func:`dimensionality_panel`: the eigenspectra of layers' responses to natural images, their
  effective dimensionality and power-law exponents (Fig. 6).

``spacetorch paper-panels`` runs them over a checkpoint and writes an ``index.md`` beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spacetorch.analyses import category_patches, category_selectivity
from spacetorch.analyses.category import category_overlap
from spacetorch.analyses.dimensionality import POWER_LAW_RANKS, Spectrum, spectrum
from spacetorch.analyses.v1_statistics import v1_statistics
from spacetorch.analyses.wiring import ACTIVE_PERCENTILE, DISTANCE_THRESHOLD, wiring_length, wiring_lengths
from spacetorch.maps import MapMeasurement
from spacetorch.plots import (
    category_maps_figure,
    dimensionality_figure,
    save_figure,
    v1_figure,
    v1_statistics_figure,
    wiring_figure,
)

__all__ = ["MANIFEST", "Panel", "category_panel", "dimensionality_panel", "v1_panel", "wiring_panel", "write_index", "write_record"]

#: the file with every number of a folder of panels (and what made them); it marks the folder as one
MANIFEST = "panels.json"


class Panel(dict[str, Any]):
    """A panel's numbers (JSON-ready), with ``title`` and the ``figures`` it wrote."""


def _number(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _median(values: np.ndarray) -> float | None:
    """The median of the finite values (a stimulus no unit responded to is NaN); None if none is."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def v1_panel(
    measured: MapMeasurement, responses: np.ndarray, orientation: np.ndarray, spatial_frequency: np.ndarray,
    out: Path, *, comparison: Mapping[str, np.ndarray] | None = None, comparison_label: str = "comparison",
) -> Panel:  # fmt: skip
    """The V1 map and tuning statistics of one layer.

    Args:
        measured: the layer's map (:func:`spacetorch.maps.measure_orientation_map`).
        responses: ``(S, N)`` the layer's responses to the gratings (all units; the measured map's
            kept units are analysed).
        orientation, spatial_frequency: ``(S,)`` the gratings' parameters.
    """
    panel = Panel(title=f"V1: {measured.layer}", figures=[])
    if measured.map is not None:
        save_figure(v1_figure(measured.map, title=f"{measured.layer}: orientation map"), out / "v1_map.png")
        panel["figures"].append("v1_map.png")
    panel.update({f"map_{k}" if k != "units_analysed" else k: _number(v) for k, v in measured.statistics().items()})
    stats = v1_statistics(responses[:, measured.keep], orientation, spatial_frequency)
    save_figure(v1_statistics_figure(stats, title=f"{measured.layer}: tuning of {int(stats.responsive.sum())} units",
                                     comparison=dict(comparison or {}), comparison_label=comparison_label), out / "v1_tuning.png")  # fmt: skip
    panel["figures"].append("v1_tuning.png")
    panel.update({k: _number(v) for k, v in stats.summary().items() if k != "units"})
    if measured.left_out:
        panel["left_out"] = measured.left_out
    return panel


def category_panel(
    responses: np.ndarray, coordinates: np.ndarray, labels: np.ndarray, names: Sequence[str], out: Path, *,
    layer: str, measure: str = "t",
) -> Panel:  # fmt: skip
    """Selectivity maps, patches and overlaps of the categories ``names`` (labels index them).

    Raises:
        ValueError: fewer than two categories, or a category with fewer than two images.
    """
    present = np.unique(labels)
    if len(present) < 2:
        raise ValueError(f"category maps need at least 2 categories with images, got {[names[i] for i in present]}")
    categories, t = category_selectivity(responses, labels, measure=measure)
    names = [str(names[c]) for c in categories]
    maps = [category_patches(coordinates, t[k]) for k in range(len(categories))]
    save_figure(category_maps_figure(coordinates, t, maps, names, title=f"{layer}: category selectivity ({measure})"),
                out / "categories.png")  # fmt: skip
    overlap = category_overlap(maps)
    return Panel(
        title=f"Categories: {layer}", figures=["categories.png"], measure=measure,
        patches={name: {"count": len(m), "total_area_mm2": _number(m.total_area),
                        "mean_area_mm2": _number(m.total_area / len(m)) if len(m) else None,
                        "units_in_patches": int(sum(p.n_units for p in m.patches))}
                 for name, m in zip(names, maps, strict=True)},
        overlap={a: {b: _number(overlap[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)},
    )  # fmt: skip


def wiring_panel(
    source: tuple[np.ndarray, np.ndarray], target: tuple[np.ndarray, np.ndarray], out: Path, *, layers: tuple[str, str],
    active_percentile: float = ACTIVE_PERCENTILE, distance_threshold: float = DISTANCE_THRESHOLD, seed: int = 0,
) -> Panel:  # fmt: skip
    """Wiring length from ``source`` to ``target`` (each ``(responses (S, N), coordinates (N, 2))``)."""
    (source_r, source_xy), (target_r, target_xy) = source, target
    rows = wiring_lengths(source_xy, source_r, target_xy, target_r, active_percentile=active_percentile,
                          distance_threshold=distance_threshold, seed=seed)  # fmt: skip
    measured = [r["stimulus"] for r in rows if r["positions"] == "model" and np.isfinite(r["total"])]
    example = None if not measured else wiring_length(
        source_xy, source_r[measured[0]], target_xy, target_r[measured[0]], active_percentile=active_percentile,
        distance_threshold=distance_threshold, seed=seed,
    )
    save_figure(wiring_figure(rows, title=f"{layers[0]} \u2192 {layers[1]}", example=example), out / "wiring.png")
    model = np.array([r["total"] for r in rows if r["positions"] == "model"])
    shuffled = np.array([r["total"] for r in rows if r["positions"] == "shuffled"])
    return Panel(
        title=f"Wiring length: {layers[0]} \u2192 {layers[1]}", figures=["wiring.png"], stimuli=len(model),
        active_percentile=active_percentile, distance_threshold_mm=distance_threshold,
        median_model_mm=_median(model), median_shuffled_mm=_median(shuffled),
        median_ratio_shuffled_to_model=_median(shuffled / model),
        per_stimulus=[{k: _number(v) for k, v in r.items()} for r in rows],
    )  # fmt: skip


def dimensionality_panel(responses: Mapping[str, np.ndarray], out: Path, *, ranks: tuple[int, int] = POWER_LAW_RANKS) -> Panel:
    """Eigenspectra of each layer's ``(S, N)`` responses to natural images."""
    spectra: dict[str, Spectrum] = {name: spectrum(r, ranks) for name, r in responses.items()}
    images = next(iter(responses.values())).shape[0] if responses else 0
    save_figure(dimensionality_figure(spectra, title=f"eigenspectra over {images} images"), out / "dimensionality.png")
    return Panel(title="Dimensionality", figures=["dimensionality.png"], images=images,
                 layers={name: {k: _number(v) for k, v in s.summary().items()} for name, s in spectra.items()})  # fmt: skip


def write_record(out: Path, panels: Sequence[Panel], record: Mapping[str, Any], *, heading: str) -> None:
    """:data:`MANIFEST` (``record`` and every panel's numbers) and ``index.md`` beside the panels' PNGs."""
    import json

    (out / MANIFEST).write_text(json.dumps(dict(record, panels=list(panels)), indent=1, default=str) + "\n")
    write_index(out, panels, heading=heading)


def write_index(out: Path, panels: Sequence[Panel], *, heading: str) -> Path:
    """``index.md``: each panel's figures and its headline numbers, in order."""
    lines = [f"# {heading}", "", "Every number is in `panels.json`.", ""]
    for panel in panels:
        lines += [f"## {panel['title']}", ""]
        lines += [f"![{name}]({name})" for name in panel.get("figures", [])]
        lines.append("")
        for key, value in panel.items():
            if key in ("title", "figures", "per_stimulus") or isinstance(value, (dict, list)):
                continue
            lines.append(f"- {key.replace('_', ' ')}: {value:.4g}" if isinstance(value, float) else f"- {key.replace('_', ' ')}: {value}")
        for name, patches in panel.get("patches", {}).items():
            lines.append(f"- {name}: {patches['count']} patch(es), {patches['total_area_mm2']:.0f} mm\u00b2")
        for name, numbers in panel.get("layers", {}).items():
            lines.append(f"- {name}: effective dimensionality {numbers['effective_dimensionality']:.2f}, alpha "
                         + (f"{numbers['alpha']:.2f}" if numbers["alpha"] is not None else "none"))  # fmt: skip
        lines.append("")
    path = out / "index.md"
    path.write_text("\n".join(lines))
    return path
