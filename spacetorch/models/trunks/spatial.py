"""A trunk that returns chosen layers' features with their units' cortical positions.

:class:`SpatialTrunk` wraps any backbone: it records the outputs of the named submodules
with forward hooks and returns ``[flat, {key: (features, LayerPositions)}]``, the output of
the original TDANN trunks.  ``key`` is the VISSL form of the module name (``layer2_0`` for
``layer2.0``; see :mod:`spacetorch.models.layers`).

The position tensors move with the module (``.to()``, ``.cuda()``) once, but they are neither
parameters nor buffers: checkpoints keep the original layout and DDP never broadcasts them.
"""

from __future__ import annotations

import copy
import functools
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from spacetorch.models.layers import torchvision_resnet, vissl_key
from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError

__all__ = ["SpatialOutputs", "SpatialTrunk", "spatial_resnet"]

#: ``{vissl key: (features, positions)}``, the second element of a spatial trunk's output.
SpatialOutputs = Dict[str, Tuple[torch.Tensor, LayerPositions]]


class SpatialTrunk(nn.Module):
    """Run ``backbone`` and also return the outputs of the layers that have positions.

    Args:
        backbone: any module; its output is flattened to ``(B, D)`` as the first output.
        positions: one :class:`LayerPositions` per recorded layer, named by module path
            (``"layer2.0"``).
        layers: module names to record (default: every layer in ``positions``).

    Raises:
        PositionsError: a layer has no positions, or names no submodule of ``backbone``.

    Example:
        >>> from spacetorch.models.positions import retinotopic_positions
        >>> trunk = spatial_resnet("resnet18", retinotopic_positions("resnet18", n_neighborhoods=10))
        >>> flat, spatial = trunk(torch.randn(2, 3, 224, 224))
        >>> tuple(flat.shape), list(spatial)[:3], tuple(spatial["layer4_1"][0].shape)
        ((2, 512), ['layer1_0', 'layer1_1', 'layer2_0'], (2, 512, 7, 7))
    """

    def __init__(
        self,
        backbone: nn.Module,
        positions: NetworkPositions,
        layers: Optional[Sequence[str]] = None,
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
                    f"positions name layer {name!r}, but {type(backbone).__name__} has no such submodule"
                )
        self.layer_names = names
        # plain attributes, not buffers: kept out of state_dict and away from DDP broadcasts;
        # shallow copies, so that moving the trunk never changes the caller's positions
        self.positions: Dict[str, LayerPositions] = {
            name: copy.copy(positions.layer_positions[name]).to_torch() for name in names
        }
        self._captured: Dict[str, torch.Tensor] = {}
        for name in names:
            # a partial of a bound method, so that copy.deepcopy(trunk) records into the copy
            modules[name].register_forward_hook(functools.partial(self._record, name))

    def _record(self, name: str, _module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        self._captured[name] = output

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # move the position tensors with the module (device only: coordinates stay float32
        # under .half(), indices stay int32)
        super()._apply(fn, recurse)
        for layer in self.positions.values():
            layer.coordinates = fn(layer.coordinates).to(torch.float32)
            layer.neighborhood_indices = fn(layer.neighborhood_indices)
        return self

    def forward(
        self, x: torch.Tensor, out_feat_keys: Optional[List[str]] = None
    ) -> List[Union[torch.Tensor, SpatialOutputs]]:
        """Return ``[flat (B, D), {key: (features, positions)}]``.

        ``out_feat_keys`` is accepted for VISSL's trunk signature and must be empty.
        """
        if out_feat_keys:
            raise ValueError(f"a spatial trunk has no selectable output features, got {out_feat_keys}")
        self._captured.clear()
        try:
            flat = torch.flatten(self.base_model(x), 1)
            spatial: SpatialOutputs = {}
            for name in self.layer_names:
                features = self._captured[name]
                layer = self.positions[name]
                if tuple(features.shape[1:]) != tuple(layer.dims):
                    raise PositionsError(
                        f"layer {name!r} outputs features of shape (C, H, W) = {tuple(features.shape[1:])} "
                        f"for {tuple(x.shape[2:])} px input, but its positions have dims {tuple(layer.dims)}; "
                        "generate positions for this model and image size"
                    )
                spatial[vissl_key(name)] = (features, layer)
        finally:
            self._captured.clear()
        return [flat, spatial]

    def extra_repr(self) -> str:
        return f"layers={self.layer_names}"


def spatial_resnet(
    arch: str,
    positions: Union[NetworkPositions, str, os.PathLike],
    layers: Optional[Sequence[str]] = None,
) -> SpatialTrunk:
    """A torchvision ResNet of depth ``arch`` (fc removed) as a :class:`SpatialTrunk`.

    ``positions`` is a :class:`NetworkPositions` or a positions directory.  The backbone's
    module names are torchvision's, so its weights load into ``torchvision.models.<arch>``.
    """
    if not isinstance(positions, NetworkPositions):
        positions = NetworkPositions.load_from_dir(positions)
    return SpatialTrunk(torchvision_resnet(arch, drop_fc=True), positions, layers)
