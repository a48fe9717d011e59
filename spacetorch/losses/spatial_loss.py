"""The TDANN spatial loss: nearby units should respond alike.

For one neighborhood of ``Q`` units with responses ``F`` (batch x Q) and positions ``X``
(Q x 2, mm):

* ``R`` is the Pearson correlation matrix of the units' responses over the batch;
* ``D = 1 / (d + 1)`` with ``d`` the pairwise Euclidean distance in mm;
* relative loss (SL_Rel, default): ``(1 - corr(lower(R), lower(D))) / 2`` in ``[0, 1]``;
* absolute loss (SL_Abs, the original ``use_old_version: true``): ``mean |lower(R) - lower(D)|``;

``lower`` takes the strictly lower triangle.  Margalit et al., Neuron (2024).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from spacetorch.models.positions import LayerPositions

__all__ = ["spatial_loss", "SpatialLoss", "LayerWeightedSpatialLoss", "LOSS_KINDS", "layer_weight_mismatch"]

LOSS_KINDS = ("relative", "absolute")
_REL_EPS = 1e-6  # a unit whose std is below this fraction of its RMS counts as constant


def _unit_columns(features: torch.Tensor) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """``(B, N)`` view of the features and the map from unit index to its column.

    Unit ``c * H * W + h * W + w`` is column ``c * H * W + h * W + w`` of ``features.flatten(1)``.
    A channels-last ``(B, C, H, W)`` tensor (``torch.channels_last``) is read through its
    ``(B, H, W, C)`` view instead, where that unit is column ``(h * W + w) * C + c``: flattening
    it the other way would copy the whole layer, and would give the layer a gradient in the
    other memory format, which the convolutions' backward pass must then convert.
    """
    if features.ndim == 4 and not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
        b, c, h, w = features.shape
        return features.permute(0, 2, 3, 1).reshape(b, -1), lambda units: units % (h * w) * c + units // (h * w)
    return features.flatten(1), lambda units: units


def spatial_loss(
    features: torch.Tensor,
    coordinates: torch.Tensor,
    indices: torch.Tensor,
    kind: str = "relative",
) -> torch.Tensor:
    """Spatial loss of one layer over the given neighborhood(s) of units.

    Args:
        features: responses, ``(B, C, H, W)`` or ``(B, N)``; unit ``i`` is column ``i`` of
            ``features.flatten(1)``.
        coordinates: ``(N, 2)`` unit positions in mm.
        indices: ``(Q,)`` unit indices of one neighborhood, or ``(K, Q)`` for ``K``
            neighborhoods (the loss is then their mean).
        kind: ``"relative"`` (SL_Rel) or ``"absolute"`` (SL_Abs).

    Returns:
        a scalar tensor, differentiable with respect to ``features``.  Computed in float32
        (or float64 for float64 input) whatever the features' dtype, with autocast off, also
        inside an autocast region.  NaN or inf in the features of a neighborhood's units
        give a NaN loss: that is not checked here (it would cost a device sync per call);
        ``custom_train_step`` stops training on it, naming the layer.

    Raises:
        ValueError: for a batch of fewer than 2 samples, mismatched shapes or an unknown kind.

    Example:
        >>> f = torch.randn(8, 4, 3, 3)
        >>> xy = torch.rand(36, 2)
        >>> float(spatial_loss(f, xy, torch.arange(10))) <= 1.0
        True
    """
    if kind not in LOSS_KINDS:
        raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")
    if features.ndim < 2:
        raise ValueError(f"features must have shape (B, N) or (B, C, H, W), got {tuple(features.shape)}")
    batch = features.shape[0]
    if batch < 2:
        raise ValueError(
            f"the spatial loss correlates responses over the batch, so it needs a batch of at least "
            f"2 samples, got features of shape {tuple(features.shape)}"
        )
    flat, to_column = _unit_columns(features)
    if coordinates.ndim != 2 or coordinates.shape != (flat.shape[1], 2):
        raise ValueError(
            f"coordinates must have shape ({flat.shape[1]}, 2) for features of shape "
            f"{tuple(features.shape)}, got {tuple(coordinates.shape)}"
        )
    hoods = indices if indices.ndim == 2 else indices.reshape(1, -1)
    if hoods.ndim != 2 or hoods.shape[1] < 2:
        raise ValueError(f"indices must have shape (Q,) or (K, Q) with Q >= 2, got {tuple(indices.shape)}")

    dtype = torch.float64 if flat.dtype == torch.float64 else torch.float32
    k, q = hoods.shape
    # autocast off: correlations of nearly equal responses need full precision (a bfloat16
    # matmul changes the loss in its 4th digit)
    with torch.autocast(flat.device.type, enabled=False):
        responses = flat.index_select(1, to_column(hoods.reshape(-1))).to(dtype).view(batch, k, q).transpose(0, 1)
        corr = _correlation_matrices(responses)  # (K, Q, Q)
        positions = coordinates.to(device=flat.device, dtype=dtype).index_select(0, hoods.reshape(-1)).view(k, q, 2)
        inverse_distance = 1.0 / (torch.cdist(positions, positions) + 1.0)

        rows, cols = torch.tril_indices(q, q, offset=-1, device=flat.device)
        r = corr[:, rows, cols]
        d = inverse_distance[:, rows, cols]
        if kind == "absolute":
            per_hood = (r - d).abs().mean(1)
        else:
            per_hood = (1.0 - _pearson(r, d)) / 2.0
        return per_hood.mean()


def _standardize(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Center ``x`` along ``dim`` and scale to unit norm; constant slices become 0."""
    centered = x - x.mean(dim, keepdim=True)
    sum_sq = centered.square().sum(dim, keepdim=True)
    scale_sq = x.square().sum(dim, keepdim=True) * _REL_EPS**2
    constant = sum_sq <= scale_sq
    norm = torch.where(constant, torch.ones_like(sum_sq), sum_sq).sqrt()
    return torch.where(constant, torch.zeros_like(centered), centered / norm)


def _correlation_matrices(responses: torch.Tensor) -> torch.Tensor:
    """``(K, B, Q)`` responses -> ``(K, Q, Q)`` Pearson correlations over ``B`` (constant units: 0)."""
    z = _standardize(responses, dim=1)
    return (z.transpose(1, 2) @ z).clamp(-1.0, 1.0)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of ``(K, M)`` tensors (0 where either row is constant)."""
    return (_standardize(a, dim=1) * _standardize(b, dim=1)).sum(1)


class SpatialLoss(nn.Module):
    """Spatial loss of one layer, drawing random precomputed neighborhoods each call.

    The layer's coordinates (float32) and neighborhood table (int32) are non-persistent
    buffers: they move with ``.to(device)`` once, are never copied per call, and are not
    written into checkpoints.

    Args:
        positions: the layer's :class:`LayerPositions`.
        kind: ``"relative"`` or ``"absolute"``.
        neighborhoods_per_batch: neighborhoods drawn per call (their losses are averaged).

    Shape:
        features: ``(B, C, H, W)`` or ``(B, N)`` with ``N = positions.num_units``; output: scalar.

    Example:
        >>> from spacetorch.models import retinotopic_positions
        >>> layer = retinotopic_positions(n_neighborhoods=50)["layer4.1"]
        >>> loss = SpatialLoss(layer)
        >>> float(loss(torch.randn(4, 512, 7, 7))) <= 1.0
        True
    """

    coordinates: torch.Tensor
    neighborhoods: torch.Tensor

    def __init__(self, positions: LayerPositions, kind: str = "relative", neighborhoods_per_batch: int = 1) -> None:
        super().__init__()
        _check_kind_and_count(kind, neighborhoods_per_batch)
        self.layer_name = positions.name
        self.kind = kind
        self.neighborhoods_per_batch = int(neighborhoods_per_batch)
        self.register_buffer(
            "coordinates", torch.as_tensor(positions.coordinates).to(torch.float32), persistent=False
        )
        self.register_buffer(
            "neighborhoods", torch.as_tensor(positions.neighborhood_indices).to(torch.int32), persistent=False
        )

    def draw(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random rows of the neighborhood table, ``(neighborhoods_per_batch, Q)``, on its device."""
        return _draw_rows(self.neighborhoods, self.neighborhoods_per_batch, generator)

    def forward(self, features: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        expected = self.coordinates.shape[0]
        if features.ndim < 2 or features[0].numel() != expected:
            raise ValueError(
                f"layer {self.layer_name!r}: features of shape {tuple(features.shape)} do not match the "
                f"{expected} units of its positions"
            )
        return spatial_loss(features, self.coordinates, self.draw(generator), self.kind)

    def extra_repr(self) -> str:
        p, q = self.neighborhoods.shape
        return (
            f"layer={self.layer_name!r}, kind={self.kind!r}, neighborhoods={p}x{q}, "
            f"neighborhoods_per_batch={self.neighborhoods_per_batch}"
        )



def _draw_rows(table: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` random rows of ``table`` (with replacement), drawn on the table's device."""
    rows = torch.randint(table.shape[0], (k,), device=table.device, generator=generator)
    return table.index_select(0, rows)


def _check_kind_and_count(kind: str, neighborhoods_per_batch: int) -> None:
    if kind not in LOSS_KINDS:
        raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")
    if neighborhoods_per_batch < 1:
        raise ValueError(f"neighborhoods_per_batch must be >= 1, got {neighborhoods_per_batch}")


def layer_weight_mismatch(weighted: Iterable[str], outputs: Iterable[str], trunk: str = "the trunk") -> str | None:
    """Describe how ``layer_weights`` keys and a trunk's spatial layers differ (``None``: they match).

    >>> layer_weight_mismatch(["layer1_0", "layer9_0"], ["layer1_0", "layer1_1"])
    "layer_weights names ['layer9_0'], which the trunk does not output; the trunk outputs ['layer1_1'], which have no entry in layer_weights"
    """
    weighted, outputs = set(weighted), set(outputs)
    problems = []
    if weighted - outputs:
        problems.append(f"layer_weights names {sorted(weighted - outputs)}, which {trunk} does not output")
    if outputs - weighted:
        problems.append(f"{trunk} outputs {sorted(outputs - weighted)}, which have no entry in layer_weights")
    return "; ".join(problems) or None


def check_weight(value: object, what: str) -> float:
    """``value`` as a topography weight (the TDANN's alpha, a method's weight): a finite number >= 0,
    where 0 is no topography at all.  The one place that rule is written.

    Raises:
        ValueError: naming ``what`` (``--alpha``, ``layer_weights.layer2_0``) and the value.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number >= 0 (0: no topography), got {value!r}")
    return float(value)


class LayerWeightedSpatialLoss(nn.Module):
    """``sum_l layer_weights[l] * SL_l`` over the outputs of a spatial trunk.

    Takes the ``{key: (features, LayerPositions)}`` dict a spatial trunk returns (keys in the
    VISSL form ``layer2_0``).  Position arrays already on the features' device are used as
    they are (the :class:`~spacetorch.models.trunks.SpatialTrunk` case); others (numpy
    arrays, CPU tensors of a user's trunk) are copied to the device once and cached for as
    long as the trunk keeps the same arrays.  Layers of weight 0 are measured without gradient
    (no backward cost), so that every run logs every layer's SL, the alpha = 0 baseline too.

    Args:
        layer_weights: alpha per layer key; the trunk must output exactly these keys.
        kind: ``"relative"`` (SL_Rel) or ``"absolute"`` (SL_Abs).
        neighborhoods_per_batch: neighborhoods drawn per layer and call.

    Returns (forward):
        ``(weighted sum, {key: detached SL of that layer, for every layer})``.

    Example:
        >>> from spacetorch.models import retinotopic_positions
        >>> layer = retinotopic_positions(n_neighborhoods=50)["layer4.1"]
        >>> loss = LayerWeightedSpatialLoss({"layer4_1": 0.5})
        >>> total, per_layer = loss({"layer4_1": (torch.randn(4, 512, 7, 7), layer)})
        >>> bool(torch.isclose(total, 0.5 * per_layer["layer4_1"]))
        True
    """

    def __init__(
        self, layer_weights: Mapping[str, float], kind: str = "relative", neighborhoods_per_batch: int = 1
    ) -> None:
        super().__init__()
        _check_kind_and_count(kind, neighborhoods_per_batch)
        if not layer_weights:
            raise ValueError("layer_weights is empty: name the weight of every spatial layer")
        self.layer_weights = {str(k): check_weight(v, f"layer_weights.{k}") for k, v in layer_weights.items()}
        self.kind = kind
        self.neighborhoods_per_batch = int(neighborhoods_per_batch)
        # key -> (source coordinates, source indices, device coordinates, device indices)
        self._device_tables: dict[str, tuple[object, object, torch.Tensor, torch.Tensor]] = {}

    def check_keys(self, keys: set[str] | Mapping[str, object]) -> None:
        """Raise ``KeyError`` naming the layers that are in ``layer_weights`` xor in ``keys``."""
        problem = layer_weight_mismatch(self.layer_weights, keys)
        if problem:
            raise KeyError(f"{problem} (trunk layers: {sorted(keys)})")

    def _tables(self, key: str, positions: LayerPositions, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        coords, hoods = positions.coordinates, positions.neighborhood_indices
        if isinstance(coords, torch.Tensor) and isinstance(hoods, torch.Tensor):
            if coords.device == device and hoods.device == device:
                return coords, hoods
        cached = self._device_tables.get(key)
        if cached is not None and cached[0] is coords and cached[1] is hoods and cached[2].device == device:
            return cached[2], cached[3]
        dev_coords = torch.as_tensor(coords).to(device=device, dtype=torch.float32)
        dev_hoods = torch.as_tensor(hoods).to(device=device, dtype=torch.int32)
        self._device_tables[key] = (coords, hoods, dev_coords, dev_hoods)
        return dev_coords, dev_hoods

    def forward(
        self, spatial_outputs: Mapping[str, tuple[torch.Tensor, LayerPositions]]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.check_keys(spatial_outputs)
        total: torch.Tensor | None = None
        per_layer: dict[str, torch.Tensor] = {}
        for key, weight in self.layer_weights.items():
            features, positions = spatial_outputs[key]
            coords, hoods = self._tables(key, positions, features.device)
            rows = _draw_rows(hoods, self.neighborhoods_per_batch)
            try:
                with torch.set_grad_enabled(torch.is_grad_enabled() and weight != 0):
                    loss = spatial_loss(features, coords, rows, self.kind)
            except ValueError as err:
                raise ValueError(f"spatial loss of layer {key!r}: {err}") from None
            per_layer[key] = loss.detach()
            if weight != 0:
                total = weight * loss if total is None else total + weight * loss
        if total is None:  # every weight is 0
            first = next(iter(spatial_outputs.values()))[0]
            total = first.new_zeros((), dtype=torch.float32)
        return total, per_layer

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, neighborhoods_per_batch={self.neighborhoods_per_batch}, layer_weights={self.layer_weights}"
