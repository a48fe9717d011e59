"""Retinotopic initialisation of unit positions (Margalit et al., Neuron 2024).

Each layer is a square sheet of ``tissue_size`` mm.  The ``H x W`` spatial positions of a
feature map tile it with overlapping receptive fields (RFs): with overlap fraction ``ov``,
RF width ``S / (W - W * ov + ov)`` and radius ``r`` = half of it, RF centres are
``linspace(r, S - r, W)`` along each axis.  Each channel's unit at a spatial position sits at
the RF centre plus a ``U(-r, r)`` offset per axis; then ``N(0, jitter)`` noise is added and
each axis is rescaled back to its original minimum and range.

This module places the units of layers described by :class:`RetinotopicLayerSpec`; it knows
nothing of models.  :func:`spacetorch.models.retinotopic_positions` reads the specs of a
registered model and calls :func:`positions_for_layers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from spacetorch.models.positions.layer_positions import LayerPositions, NetworkPositions
from spacetorch.models.positions.neighborhoods import build_neighborhoods

__all__ = [
    "AREAS",
    "AREA_UNITS",
    "CorticalArea",
    "RetinotopicLayerSpec",
    "positions_for_layers",
    "matched_neighborhood_width",
    "retinotopic_layer",
]


@dataclass(frozen=True)
class CorticalArea:
    """A simulated cortical area: sheet side and neighborhood window side, both in mm."""

    tissue_size: float
    neighborhood_width: float


#: Areas of the TDANN (Margalit et al. 2024).
AREAS: dict[str, CorticalArea] = {
    "retina": CorticalArea(2.4, 0.0475),
    "V1": CorticalArea(36.75, 1.626),
    "V2": CorticalArea(35.0, 3.977),
    "V4": CorticalArea(22.4, 2.545),
    "VTC": CorticalArea(70.0, 31.818),
}

#: units of the TDANN's ResNet-18 layer that each area holds at 224 px (C x H x W of layer1,
#: layer2, layer3 and layer4): the density its neighborhood widths were chosen for
AREA_UNITS: dict[str, int] = {"retina": 64 * 56 * 56, "V1": 128 * 28 * 28, "V2": 256 * 14 * 14, "V4": 256 * 14 * 14,
                              "VTC": 512 * 7 * 7}  # fmt: skip


def matched_neighborhood_width(area: str, width: float, units: int) -> float:
    """The neighborhood width at which a layer of ``units`` units on ``area``'s sheet holds as many
    units per neighborhood as the TDANN's ResNet-18 layer of that area does with ``width``: the
    width scaled by ``sqrt(AREA_UNITS[area] / units)`` (what a layer of fewer units, a vision
    transformer's block, needs for neighborhoods of the same size).  The caller caps it (spacetorch:
    at half the sheet's side, which only blocks of a few thousand units reach).

    >>> round(matched_neighborhood_width("V1", 1.626, 128 * 28 * 28), 3)
    1.626
    """
    return float(width * (AREA_UNITS[area] / units) ** 0.5)

@dataclass(frozen=True)
class RetinotopicLayerSpec:
    """Everything that places one layer's units.

    Attributes:
        name: layer (module) name, e.g. ``"layer2.0"``.
        dims: output dims ``(C, H, W)``.
        tissue_size: sheet side ``S`` in mm.
        neighborhood_width: neighborhood window side in mm.
        rf_overlap: RF overlap fraction ``ov`` in ``[0, 1]``.
        area: the cortical area's name (informative only).
    """

    name: str
    dims: tuple[int, int, int]
    tissue_size: float
    neighborhood_width: float
    rf_overlap: float
    area: str = ""

    def __post_init__(self) -> None:
        if len(self.dims) != 3 or min(self.dims) < 1:
            raise ValueError(f"layer {self.name!r}: dims must be three positive ints, got {self.dims}")
        if not self.tissue_size > 0:
            raise ValueError(f"layer {self.name!r}: tissue_size must be > 0 mm, got {self.tissue_size}")
        if not 0 < self.neighborhood_width <= self.tissue_size:
            raise ValueError(
                f"layer {self.name!r}: neighborhood_width must be in (0, tissue_size={self.tissue_size}] mm, "
                f"got {self.neighborhood_width}"
            )
        if not 0 <= self.rf_overlap <= 1:
            raise ValueError(f"layer {self.name!r}: rf_overlap must be in [0, 1], got {self.rf_overlap}")


def rf_centres(size: float, n: int, overlap: float) -> tuple[np.ndarray, float]:
    """RF centres along one axis (``n`` of them, mm) and the RF radius (mm)."""
    rf_width = size / (n - n * overlap + overlap)
    radius = rf_width / 2
    return np.linspace(radius, size - radius, n), radius


def _check_jitter(jitter: float) -> None:
    if not (np.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"jitter is the std of the position noise in mm, a finite number >= 0; got {jitter}")


def retinotopic_coordinates(spec: RetinotopicLayerSpec, rng: np.random.Generator, jitter: float = 0.3) -> np.ndarray:
    """``(C * H * W, 2)`` unit coordinates in mm, channel-major (``features.flatten(1)``) order.

    Raises:
        ValueError: ``jitter`` is negative or not finite.
    """
    _check_jitter(jitter)
    c, h, w = spec.dims
    # square sheet; each axis is tiled by its own number of RFs with the layer's overlap
    x_centres, x_radius = rf_centres(spec.tissue_size, w, spec.rf_overlap)
    y_centres, y_radius = rf_centres(spec.tissue_size, h, spec.rf_overlap)
    grid = np.stack([  # (2, C * H * W): x and y of each unit's RF centre
        np.broadcast_to(x_centres[None, None, :], (c, h, w)).reshape(-1),
        np.broadcast_to(y_centres[None, :, None], (c, h, w)).reshape(-1),
    ])
    radius = np.array([[x_radius], [y_radius]])
    xy = grid + rng.uniform(-radius, radius, size=grid.shape)
    if jitter > 0:
        low, span = xy.min(1, keepdims=True), np.ptp(xy, axis=1, keepdims=True)
        jittered = xy + rng.normal(0.0, jitter, size=xy.shape)
        j_low, j_span = jittered.min(1, keepdims=True), np.ptp(jittered, axis=1, keepdims=True)
        xy = (jittered - j_low) * (span / j_span) + low
    return np.ascontiguousarray(xy.T)


def retinotopic_layer(
    spec: RetinotopicLayerSpec,
    n_neighborhoods: int = 20_000,
    seed: int | np.random.SeedSequence = 424,
    jitter: float = 0.3,
) -> LayerPositions:
    """Positions and neighborhoods of one layer (deterministic for a given ``seed``)."""
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    coord_seed, hood_seed = sequence.spawn(2)
    coordinates = retinotopic_coordinates(spec, np.random.default_rng(coord_seed), jitter)
    try:
        hoods = build_neighborhoods(coordinates, spec.neighborhood_width, n_neighborhoods, np.random.default_rng(hood_seed))
    except ValueError as err:
        raise ValueError(f"layer {spec.name!r}: {err}") from None
    return LayerPositions(
        name=spec.name,
        dims=spec.dims,
        coordinates=coordinates,
        neighborhood_indices=hoods,
        neighborhood_width=spec.neighborhood_width,
    )


def positions_for_layers(
    layers: Sequence[RetinotopicLayerSpec],
    n_neighborhoods: int = 20_000,
    seed: int = 424,
    *,
    jitter: float = 0.3,
    progress: bool | Callable[[str], None] = False,
) -> NetworkPositions:
    """Retinotopically initialised positions of the given layers.

    Each layer draws from its own child of ``SeedSequence(seed)``, in the order given.

    Args:
        layers: one spec per layer.
        n_neighborhoods: windows drawn per layer before trimming.
        seed: the same seed gives the same positions.
        jitter: std of the Gaussian position noise, mm (finite, >= 0; 0 for none).
        progress: show a progress bar (``True``) or call ``progress(layer_name)`` per layer.

    Example:
        >>> spec = RetinotopicLayerSpec("toy", (4, 8, 8), tissue_size=10.0, neighborhood_width=5.0, rf_overlap=0.5)
        >>> positions_for_layers([spec], n_neighborhoods=10)["toy"].dims
        (4, 8, 8)
    """
    _check_jitter(jitter)
    specs = list(layers)
    seeds = np.random.SeedSequence(seed).spawn(len(specs))
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), desc="layers", unit="layer")
    result: dict[str, LayerPositions] = {}
    try:
        for spec, layer_seed in zip(specs, seeds, strict=True):
            if bar is not None:
                bar.set_postfix_str(spec.name)
            result[spec.name] = retinotopic_layer(spec, n_neighborhoods, layer_seed, jitter)
            if bar is not None:
                bar.update()
            elif callable(progress):
                progress(spec.name)
    finally:
        if bar is not None:
            bar.close()
    return NetworkPositions(layer_positions=result, version=1)
