"""A trunk that returns chosen layers' features with their units' cortical positions.

:class:`SpatialTrunk` wraps any backbone: it captures the outputs of the named submodules
(:func:`~spacetorch.models.capture.capture_outputs`) and returns
``[flat, {key: (features, LayerPositions)}]``, the output of the original TDANN trunks.
``key`` is the VISSL form of the module name (``layer2_0`` for ``layer2.0``; see
:mod:`spacetorch.models.layers`).

The position tensors move with the module (``.to()``, ``.cuda()``) once, but they are neither
parameters nor buffers: checkpoints keep the original layout and DDP never broadcasts them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from spacetorch.models.capture import capture_outputs, install_taps, layer_output
from spacetorch.models.layers import vissl_key
from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError

__all__ = ["SpatialOutputs", "SpatialTrunk", "spatial_model", "spatial_resnet"]

#: ``{vissl key: (features, positions)}``, the second element of a spatial trunk's output.
SpatialOutputs = dict[str, tuple[torch.Tensor, LayerPositions]]


class SpatialTrunk(nn.Module):
    """Run ``backbone`` and also return the outputs of the layers that have positions.

    Args:
        backbone: any module; its output (its first element if a tuple or list, its first value
            if a dict) is flattened to ``(B, D)`` as the first output.
        positions: one :class:`LayerPositions` per recorded layer, named by module path
            (``"layer2.0"``).
        layers: module names to record (default: every layer in ``positions``).

    Raises:
        PositionsError: a layer has no positions, or names no submodule of ``backbone``.

    Example:
        >>> from spacetorch.models import retinotopic_positions
        >>> trunk = spatial_model("resnet18", retinotopic_positions("resnet18", n_neighborhoods=10))
        >>> flat, spatial = trunk(torch.randn(2, 3, 224, 224))
        >>> tuple(flat.shape), list(spatial)[:3], tuple(spatial["layer4_1"][0].shape)
        ((2, 512), ['layer1_0', 'layer1_1', 'layer2_0'], (2, 512, 7, 7))
    """

    def __init__(
        self,
        backbone: nn.Module,
        positions: NetworkPositions,
        layers: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.base_model = backbone  # the original attribute name: checkpoint keys are base_model.*
        names = list(positions.layer_positions) if layers is None else list(layers)
        if not names:
            raise PositionsError("a spatial trunk needs at least one layer with positions")
        modules = dict(backbone.named_modules())
        for name in names:
            if name not in positions.layer_positions:
                raise PositionsError(
                    f"layer {name!r} has no positions; the position set has {sorted(positions.layer_positions)}"
                )
            if name not in modules:
                raise PositionsError(
                    f"positions name layer {name!r}, but {type(backbone).__name__} has no such submodule; "
                    "are the positions for another model?"
                )
        self.layer_names = names
        # plain attributes, not buffers: kept out of state_dict and away from DDP broadcasts;
        # shallow copies, so that moving the trunk never changes the caller's positions
        self.positions: dict[str, LayerPositions] = {
            name: copy.copy(positions.layer_positions[name]).to_torch(index_dtype=torch.int32) for name in names
        }
        install_taps(backbone, names)  # before any replication (DataParallel, deepcopy)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> SpatialTrunk:
        # move the position tensors with the module (device only: coordinates stay float32
        # under .half(), indices stay int32)
        super()._apply(fn, recurse)  # type: ignore[no-untyped-call]
        for layer in self.positions.values():
            layer.coordinates = fn(torch.as_tensor(layer.coordinates)).to(torch.float32)
            layer.neighborhood_indices = fn(torch.as_tensor(layer.neighborhood_indices))
        return self

    def network_positions(self) -> NetworkPositions:
        """The trunk's positions as a :class:`NetworkPositions` (sharing its tensors)."""
        return NetworkPositions(layer_positions=dict(self.positions))

    def forward(
        self, x: torch.Tensor, out_feat_keys: list[str] | None = None
    ) -> list[torch.Tensor | SpatialOutputs]:
        """Return ``[flat (B, D), {key: (features, positions)}]``.

        ``out_feat_keys`` is accepted for VISSL's trunk signature and must be empty.
        """
        if out_feat_keys:
            raise ValueError(f"a spatial trunk has no selectable output features, got {out_feat_keys}")
        with capture_outputs(self.base_model, self.layer_names) as captured:
            output = self.base_model(x)
        flat = torch.flatten(layer_output(output, type(self.base_model).__name__), 1)
        spatial: SpatialOutputs = {}
        for name in self.layer_names:
            layer = self.positions[name]
            layer.check_features(captured[name], tuple(x.shape[2:]))
            spatial[vissl_key(name)] = (captured[name], layer)
        return [flat, spatial]

    def extra_repr(self) -> str:
        return f"layers={self.layer_names}"


def spatial_model(
    name: str,
    positions: NetworkPositions | str | os.PathLike[str],
    layers: Sequence[str] | None = None,
    **kwargs: Any,
) -> SpatialTrunk:
    """The registered model ``name`` (classifier removed) as a :class:`SpatialTrunk`.

    ``positions`` is a :class:`NetworkPositions` or a positions directory; ``kwargs`` go to
    the model's builder.  The backbone's module names are the model's own, so its weights
    load into ``create_model(name, headless=True)``.
    """
    from spacetorch.models.registry import create_model

    if not isinstance(positions, NetworkPositions):
        positions = NetworkPositions.load_from_dir(positions)
    return SpatialTrunk(create_model(name, headless=True, **kwargs), positions, layers)


def spatial_resnet(
    arch: str,
    positions: NetworkPositions | str | os.PathLike[str],
    layers: Sequence[str] | None = None,
) -> SpatialTrunk:
    """A torchvision ResNet of depth ``arch`` as a :class:`SpatialTrunk` (:func:`spatial_model`)."""
    return spatial_model(arch, positions, layers)
