"""One way to measure a layer's orientation map: a model, a layer, gratings and a border policy in,
the map with the units it kept (and why the others were left out) out.

Every command that shows or compares maps (``v1_figure``, ``compare_alpha``, ``swapopt``'s figure,
the training-time TensorBoard image) measures through :func:`measure_orientation_map`, so a map
means the same thing everywhere.

The policy, in one place:

* **No unit left** after the border units are taken out (images too small for the layer's
  receptive fields): :class:`ValueError` naming the layer, the image size and the border, since
  no size setting fixes itself.  Callers check this before any long work with
  :func:`kept_units`.
* **No orientation-selective unit** among those kept: not an error.  The measurement has
  ``map = None``, a selective fraction of 0, NaN statistics and a ``note`` saying why; a figure
  or table shows "no map" for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spacetorch.analyses import OrientationMap, analyze_orientation_map
from spacetorch.models.receptive_field import RECEPTIVE_FIELD, border_units
from spacetorch.models.topographic import TopographicModel
from spacetorch.stimuli import SineGratings

__all__ = ["MapMeasurement", "kept_units", "measure_orientation_map", "posthoc_spatial_loss"]


@dataclass
class MapMeasurement:
    """A layer's orientation map as measured, or why there is none.

    Attributes:
        layer: the layer's name.
        image_size: the gratings' side, px.
        keep: ``(N,)`` bool over the layer's units: those analysed.
        left_out: what the units left out are, in words (empty if none was).
        map: the map of the kept units; ``None`` when none of them is orientation-selective.
        note: why there is no map (empty when there is one).
    """

    layer: str
    image_size: int
    keep: np.ndarray
    left_out: str
    map: OrientationMap | None
    note: str = ""

    @property
    def units_analysed(self) -> int:
        return int(self.keep.sum())

    @property
    def selective_fraction(self) -> float:
        """Orientation-selective units among those analysed (0 without a map)."""
        return float(self.map.selective.mean()) if self.map is not None else 0.0

    def statistics(self) -> dict[str, Any]:
        """The numbers a table shows: selective fraction, smoothness (and shuffled), the
        preference difference of pairs under 1 mm (with its interval, shuffled level and z),
        pinwheels, column spacing, pinwheel density and the notes; NaN where there is no map."""
        nan = math.nan
        m = self.map
        near = m.near if m is not None else None
        return {
            "units_analysed": self.units_analysed,
            "selective_units": int(m.selective.sum()) if m is not None else 0,
            "selective_fraction": self.selective_fraction,
            "smoothness": m.smoothness if m is not None else nan,
            "shuffled_smoothness": m.shuffled_curve.smoothness if m is not None else nan,
            "near_difference": near.mean if near is not None else nan,
            "near_ci_low": near.ci_low if near is not None else nan,
            "near_ci_high": near.ci_high if near is not None else nan,
            "near_shuffled": near.shuffled_mean if near is not None else nan,
            "near_z": near.z if near is not None else nan,
            "near_pairs": near.pairs if near is not None else 0,
            "pinwheels": len(m.pinwheels) if m is not None else 0,
            "column_spacing": m.spacing if m is not None else nan,
            "pinwheel_density": m.pinwheel_density if m is not None else nan,
            "spacing_note": m.spacing_note if m is not None else self.note,
        }

    @property
    def units(self) -> str:
        """``"4608 of 8192 units analysed; 3584 left out: <why>"``."""
        text = f"{self.units_analysed} of {self.keep.size} units analysed"
        if self.left_out:
            text += f"; {self.keep.size - self.units_analysed} left out: {self.left_out}"
        return text

    def summary(self) -> str:
        """Two lines: the units analysed, then the map's numbers (or why there is no map)."""
        return f"{self.layer}: {self.units}\n{self.layer}: " + (
            self.map.summary() if self.map is not None else f"no map ({self.note})"
        )


def kept_units(model: TopographicModel, layer: str, image_size: int, exclude_border: int | str = RECEPTIVE_FIELD) -> tuple[np.ndarray, str]:
    """``(N,)`` bool mask of the units of ``layer`` that a map at ``image_size`` px analyses, and
    what the others are, in words (empty if every unit is kept).

    Raises:
        ValueError: no unit is left (naming the layer, the size and the border policy).
    """
    border, what = border_units(model.model, layer, model.positions[layer].dims, image_size, exclude_border)
    if border.all():
        raise ValueError(
            f"--exclude-border {exclude_border} leaves no unit of {layer} (every unit's {what} at {image_size} px); "
            "use larger images or --exclude-border 0 to keep them"
        )
    return ~border, (what if border.any() else "")


@torch.no_grad()
def measure_orientation_map(
    model: TopographicModel,
    layer: str,
    gratings: SineGratings,
    *,
    exclude_border: int | str = RECEPTIVE_FIELD,
    responses: tuple[torch.Tensor, torch.Tensor] | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> MapMeasurement:
    """The orientation map of ``layer`` from its responses to ``gratings``.

    Args:
        model: the network with its positions.
        layer: a layer with positions (``"layer2.0"``).
        gratings: oriented stimuli at the size the positions were made for.
        exclude_border: ``"rf"`` leaves out the units whose receptive field touches the image
            border (they respond to the zero padding); N, the N outermost rows and columns; 0
            keeps every unit.
        responses: ``(responses (S, N), coordinates (N, 2))`` already recorded for these gratings
            (e.g. with other layers at once); recorded here when ``None``.
        batch_size: images per forward pass when recording the responses.
        device: where the model runs when recording them.
        progress: a progress bar while recording them.

    Raises:
        KeyError: ``layer`` has no positions.
        ValueError: no unit is left after the border (see :func:`kept_units`).
    """
    if layer not in model.positions.layer_positions:
        raise KeyError(f"layer {layer!r} has no positions; layers: {list(model.positions.layer_positions)}")
    if responses is None:  # first: gratings of another size than the positions' are named as such
        responses = model.responses(gratings, [layer], batch_size=batch_size, device=device, progress=progress)[layer]
    keep, left_out = kept_units(model, layer, gratings.size, exclude_border)
    values, coordinates = responses
    try:
        result = analyze_orientation_map(
            values.numpy()[:, keep], coordinates.numpy()[keep], np.asarray(gratings.orientation)
        )
    except ValueError as err:  # analyze_orientation_map's one refusal: no selective unit
        return MapMeasurement(layer, gratings.size, keep, left_out, None, str(err))
    return MapMeasurement(layer, gratings.size, keep, left_out, result)


@torch.no_grad()
def posthoc_spatial_loss(responses: torch.Tensor, positions: Any, count: int, device: str | torch.device | None = None) -> float:
    """A layer's spatial loss on recorded responses ``(S, N)``: the mean over the first ``count``
    neighborhoods of its positions (a :class:`LayerPositions`)."""
    from spacetorch.losses import spatial_loss

    hoods = torch.as_tensor(positions.neighborhood_indices)[:count].to(device)
    features = responses.to(device)
    coords = torch.as_tensor(positions.coordinates, dtype=torch.float32).to(device)
    total = 0.0
    for chunk in torch.split(hoods, 64):
        total += float(spatial_loss(features, coords, chunk)) * len(chunk)
    return total / len(hoods)


def orientation_map_image(model: TopographicModel, layer: str, gratings: SineGratings, *, title: str) -> np.ndarray:
    """The orientation map of ``layer`` drawn as an ``(H, W, 3)`` uint8 image (for TensorBoard).

    The border policy is :func:`measure_orientation_map`'s ``"rf"``; where that leaves no unit
    (images too small for the layer), every unit is drawn and the title says so, since a
    training run should not stop for its picture.  Unselective units are grey.
    """
    from spacetorch.plots import figure_to_array, orientation_map_figure

    responses = model.responses(gratings, [layer], progress=False)[layer]  # once, for either policy
    try:
        measured = measure_orientation_map(model, layer, gratings, responses=responses)
        note = "border left out"
    except ValueError:
        measured = measure_orientation_map(model, layer, gratings, exclude_border=0, responses=responses)
        note = "every unit's receptive field touches the border"
    m = measured.map
    coordinates = m.coordinates if m is not None else np.asarray(model.positions[layer].coordinates)[measured.keep]
    preferred = m.selective_preferred if m is not None else np.full(measured.units_analysed, np.nan)
    selective = int(m.selective.sum()) if m is not None else 0
    figure = orientation_map_figure(
        coordinates, preferred, title=f"{title}: {selective} of {measured.units_analysed} units selective ({note})"
    )
    return figure_to_array(figure)
