"""The bench: a trained run of any method, measured by the same analyses on its own sheet.

:func:`load_trunk` rebuilds a checkpoint's trunk with the method's architecture;
:func:`sheet_positions` gives the positions its units have on the sheet the method implies;
:func:`measure` records the responses to sine gratings once and measures the layer's
orientation map (selective fraction, smoothness against the shuffled map, pinwheel density) and
the post-hoc spatial loss of every layer, the numbers every method is compared on; on request
also the wiring length between two layers (:func:`measure_wiring`) and the category maps of a
layer on a labelled image set (:func:`measure_categories`).
:func:`measure_som` measures the V1 self-organising map (the TDANN paper's baseline) with the
same map analysis on the same gratings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spacetorch.maps import MapMeasurement, measure_orientation_map, posthoc_spatial_loss
from spacetorch.methods import TopographyMethod
from spacetorch.models.positions import NetworkPositions, tiled_positions
from spacetorch.models.topographic import TopographicModel
from spacetorch.stimuli import ImageFolderStimuli, SineGratings

__all__ = ["load_trunk", "measure", "measure_categories", "measure_som", "measure_wiring", "sheet_positions"]


def load_trunk(path: str | Path, arch: str, method: TopographyMethod | None, image_size: int, *, trusted: bool = False) -> nn.Module:
    """The trunk of a VISSL checkpoint trained with ``method`` (None: the plain model): the
    registered model ``arch`` without classifier, prepared by the method, with the checkpoint's
    weights, in eval mode.

    Raises:
        CheckpointError: the weights do not fit (naming the keys); see also ``read_checkpoint``.
    """
    from spacetorch.models.checkpoints import CheckpointError, read_checkpoint, trunk_state_dict
    from spacetorch.models.registry import create_model, model_info

    info = model_info(arch)
    weights = trunk_state_dict(read_checkpoint(path, trusted=trusted), str(path), info.classifier)
    model = create_model(arch, headless=True)
    if method is not None:
        model = method.prepare(model, image_size)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    shapes = [k for k in set(expected) & set(weights) if tuple(expected[k].shape) != tuple(weights[k].shape)]
    if missing or unexpected or shapes:
        trained = f"{method.name} on {method.layers}" if method is not None else "no topography method"
        raise CheckpointError(
            f"checkpoint {path} is not a {arch} trained with {trained}: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, other shapes {sorted(shapes)[:3]}"
        )
    model.load_state_dict(weights)
    return model.eval()


def sheet_positions(retinotopic: NetworkPositions, sheet: str, n_neighborhoods: int = 2000) -> NetworkPositions:
    """The positions of a method's units: the retinotopic set itself, or its tiled counterpart."""
    if sheet == "retinotopic":
        return retinotopic
    if sheet == "tiled":
        return tiled_positions(retinotopic, n_neighborhoods)
    raise ValueError(f"unknown sheet {sheet!r}; expected 'retinotopic' or 'tiled'")


def measure(
    model: TopographicModel,
    layer: str,
    gratings: SineGratings,
    *,
    exclude_border: int | str,
    neighborhoods: int,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    wiring: tuple[str, str] | None = None,
    wiring_stimuli: int = 16,
    categories: ImageFolderStimuli | None = None,
    category_layer: str | None = None,
) -> tuple[dict[str, Any], MapMeasurement]:
    """``({sl: {layer: post-hoc SL}, **map statistics, **wiring, **categories}, the map measurement)``
    of one model; the wiring length (``wiring``: source and target layers, on ``wiring_stimuli``
    gratings spread over the set) and the category maps (of ``category_layer`` on
    ``categories``) only when asked for."""
    recorded = model.responses(gratings, batch_size=batch_size, device=device, progress=False)
    sl = {name: posthoc_spatial_loss(r, model.positions[name], neighborhoods, device) for name, (r, _) in recorded.items()}
    measured = measure_orientation_map(model, layer, gratings, exclude_border=exclude_border, responses=recorded[layer])
    result = {"sl": sl, **measured.statistics()}
    if wiring is not None:
        result.update(measure_wiring(recorded[wiring[0]], recorded[wiring[1]], wiring_stimuli))
    if categories is not None and category_layer is not None:
        responses, coordinates = model.responses(categories, [category_layer], batch_size=batch_size, device=device,
                                                 progress=False)[category_layer]
        result.update(measure_categories(responses.numpy(), coordinates.numpy(), categories.labels))
    return result, measured


def measure_wiring(source: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor], stimuli: int) -> dict[str, float]:
    """Medians over ``stimuli`` evenly spread stimuli of the wiring length from ``source`` to
    ``target`` (each ``(responses (S, N), coordinates (N, 2))``), with the model's positions and
    with the source's shuffled (:func:`spacetorch.analyses.wiring.wiring_lengths`), and of their ratio."""
    from spacetorch.analyses.wiring import wiring_lengths

    (source_r, source_xy), (target_r, target_xy) = source, target
    rows_of = np.unique(np.linspace(0, len(source_r) - 1, min(stimuli, len(source_r))).round().astype(int))
    rows = wiring_lengths(source_xy.numpy(), source_r.numpy()[rows_of], target_xy.numpy(), target_r.numpy()[rows_of])
    model = np.array([r["total"] for r in rows if r["positions"] == "model"])
    shuffled = np.array([r["total"] for r in rows if r["positions"] == "shuffled"])
    return {"wiring_mm": float(np.nanmedian(model)), "wiring_shuffled_mm": float(np.nanmedian(shuffled)),
            "wiring_ratio_shuffled": float(np.nanmedian(shuffled / model))}


def measure_categories(
    responses: np.ndarray, coordinates: np.ndarray, labels: np.ndarray, *, radius: float = 2.4
) -> dict[str, float]:
    """Category maps of one layer (:mod:`spacetorch.analyses.category`: t of each unit for each
    category against the rest, patches of the smoothed maps): the mean number of patches per
    category, their mean total area, the fraction of units with some ``t > 2``, and how much
    more alike the t-values of units closer than ``radius`` mm (the patches' smoothing) are than
    chance: the mean over categories of their mean ``|t_i - t_j|`` over the shuffled one (1: no
    map, below 1: a map), and the mean z over the shuffles (:func:`~spacetorch.analyses.near_pair_difference`)."""
    from spacetorch.analyses import near_pair_difference
    from spacetorch.analyses.category import category_patches, category_selectivity

    _, t = category_selectivity(responses, labels)
    maps = [category_patches(coordinates, t[k]) for k in range(len(t))]
    near = [near_pair_difference(coordinates, t[k], radius=radius, period=None, n_shuffles=20, seed=k) for k in range(len(t))]
    return {"category_patches": float(np.mean([len(m) for m in maps])),
            "category_patch_area_mm2": float(np.mean([m.total_area for m in maps])),
            "category_selective_fraction": float((t.max(0) > 2).mean()),
            "category_near_ratio": float(np.mean([n.mean / n.shuffled_mean for n in near])),
            "category_near_z": float(np.mean([n.z for n in near]))}


def measure_som(gratings: SineGratings, *, edge: int, iterations: int, seed: int) -> MapMeasurement:
    """The V1 SOM (:func:`spacetorch.analyses.som.train_v1_som`, ``edge x edge`` nodes) measured
    on ``gratings`` as a layer is, every node kept."""
    from spacetorch.analyses import analyze_orientation_map
    from spacetorch.analyses.som import V1SOMSettings, train_v1_som

    som = train_v1_som(V1SOMSettings(edge=edge, iterations=iterations, seed=seed))
    responses = som.responses(gratings.orientation, gratings.spatial_frequency, gratings.color)
    keep = np.ones(edge * edge, dtype=bool)
    try:
        result = analyze_orientation_map(responses, som.positions, np.asarray(gratings.orientation))
    except ValueError as err:
        return MapMeasurement("V1 SOM", gratings.size, keep, "", None, str(err))
    return MapMeasurement("V1 SOM", gratings.size, keep, "", result)
