"""The cortical sheets of a registered model: its layer specs and retinotopic positions.

The model side of positions: :mod:`spacetorch.models.positions` places the units of layers it
is given; this module reads which layers a registered model has, their output sizes and their
cortical areas, and hands those specs over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from spacetorch.models.capture import output_dims
from spacetorch.models.positions.layer_positions import NetworkPositions
from spacetorch.models.positions.retinotopy import (
    AREAS,
    CorticalArea,
    RetinotopicLayerSpec,
    matched_neighborhood_width,
    positions_for_layers,
)
from spacetorch.models.registry import create_model, model_info

__all__ = ["retinotopic_layer_specs", "retinotopic_positions"]


def retinotopic_layer_specs(
    arch: str = "resnet18",
    input_size: int | None = None,
    areas: Mapping[str, CorticalArea] | None = None,
    layer_names: Sequence[str] | None = None,
) -> list[RetinotopicLayerSpec]:
    """Layer specs of a registered model: one per layer with positions, dims from the model.

    The model is built on the ``meta`` device and run once, so each layer's ``(C, H, W)`` is
    its real output size at ``input_size``.  The RF overlap of a layer is
    ``min(0.1 * W1 / W, 1)``, ``W1`` the first layer's width.

    Args:
        arch: a registered model name (:func:`spacetorch.models.list_models`).
        input_size: input side in px (default: the model's registered input size).
        areas: overrides of :data:`AREAS` (e.g. another V1 size).
        layer_names: module names (default: the model's registered layers).

    Raises:
        UnknownModelError: an unknown model (listing close matches).
        ValueError: a layer that is not a submodule, or whose output is not ``(C, H, W)``.
    """
    info = model_info(arch)
    sheets = dict(AREAS, **(areas or {}))
    with torch.device("meta"):
        model = create_model(arch, headless=True)
    names = list(layer_names) if layer_names is not None else info.layer_names(model)
    dims = output_dims(model, names, input_size or info.input_size, info.in_chans)
    flat = [name for name in names if len(dims[name]) != 3]
    if flat:
        raise ValueError(f"model {arch!r}: layer(s) {flat} output {[dims[n] for n in flat]}, not (C, H, W) feature maps")
    layer_areas = info.layer_areas(names)
    unknown = sorted({area for area in layer_areas.values() if area not in sheets})
    if unknown:
        raise ValueError(f"model {arch!r}: cortical area(s) {unknown} have no sheet; known areas: {sorted(sheets)}")
    first_width = dims[names[0]][2]
    specs = []
    for name in names:
        area = layer_areas[name]
        c, h, w = dims[name]
        specs.append(
            RetinotopicLayerSpec(
                name=name,
                dims=(c, h, w),
                tissue_size=sheets[area].tissue_size,
                neighborhood_width=(sheets[area].neighborhood_width if info.neighborhoods == "area" else  # at most half the sheet
                                    min(matched_neighborhood_width(area, sheets[area].neighborhood_width, c * h * w),
                                        sheets[area].tissue_size / 2)),
                rf_overlap=min(0.1 * first_width / w, 1.0),
                area=area,
            )
        )
    return specs


def retinotopic_positions(
    arch: str = "resnet18",
    n_neighborhoods: int = 20_000,
    seed: int = 424,
    *,
    jitter: float = 0.3,
    input_size: int | None = None,
    layers: Sequence[RetinotopicLayerSpec] | None = None,
    areas: Mapping[str, CorticalArea] | None = None,
    progress: bool | Callable[[str], None] = False,
) -> NetworkPositions:
    """Retinotopically initialised positions for every layer with positions of a registered model.

    Args:
        arch: a registered model name (:func:`spacetorch.models.list_models`); ignored
            when ``layers`` is given.
        n_neighborhoods: windows drawn per layer before trimming.
        seed: the same seed gives the same positions.
        jitter: std of the Gaussian position noise, mm (finite, >= 0; 0 for none).
        input_size: input image side in px (sets each layer's dims; default: the model's
            registered input size).
        layers: explicit per-layer specs, instead of the model's.
        areas: overrides of :data:`AREAS` (e.g. another V1 size).
        progress: show a progress bar (``True``) or call ``progress(layer_name)`` per layer.

    Returns:
        the positions of each layer, keyed by layer name.

    Example:
        >>> positions = retinotopic_positions("resnet18", n_neighborhoods=100)
        >>> positions["layer2.0"].dims
        (128, 28, 28)
    """
    specs = list(layers) if layers is not None else retinotopic_layer_specs(arch, input_size, areas)
    return positions_for_layers(specs, n_neighborhoods, seed, jitter=jitter, progress=progress)
