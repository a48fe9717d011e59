"""A trained network paired with its units' cortical positions.

:class:`TopographicModel` answers the question users start with: *how does every unit of a
layer respond to these images, and where on the cortical sheet does it sit?*

    >>> from spacetorch.models.positions import retinotopic_positions
    >>> from spacetorch.models.layers import torchvision_resnet
    >>> model = TopographicModel(torchvision_resnet("resnet18", drop_fc=True),
    ...                          retinotopic_positions("resnet18", n_neighborhoods=10))
    >>> out = model.responses(torch.rand(4, 3, 224, 224), layers=["layer2.0"])
    >>> responses, coordinates = out["layer2.0"]
    >>> tuple(responses.shape), tuple(coordinates.shape)
    ((4, 100352), (100352, 2))
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Images", "TopographicModel"]

#: the normalisation of the training configs; images given to the model are in [0, 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: a ``(B, 3, H, W)`` tensor, a Dataset of images or ``(image, label)`` pairs, or batches
Images = Union[torch.Tensor, Dataset, Iterable]


class _Stop(Exception):
    """Raised by the last needed layer's hook: the rest of the network is not run."""


class TopographicModel(nn.Module):
    """A network whose chosen layers' units have positions on a cortical sheet.

    Args:
        model: any network; the layers are its submodules named as in ``positions``
            (``"layer2.0"``).
        positions: the units' positions, one :class:`LayerPositions` per layer.
        mean, std: per-channel normalisation applied to the ``[0, 1]`` input images (the
            training configs' ImageNet values); ``None`` for none.

    Raises:
        PositionsError: a position layer names no submodule of ``model``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        positions: NetworkPositions,
        *,
        mean: Optional[Sequence[float]] = IMAGENET_MEAN,
        std: Optional[Sequence[float]] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.positions = positions
        modules = dict(model.named_modules())
        unknown = sorted(set(positions.layer_positions) - set(modules))
        if unknown:
            raise PositionsError(f"positions name layer(s) {unknown}, but {type(model).__name__} has no such submodules")
        #: the layers with positions, in the model's forward order
        self.layers: List[str] = [name for name in modules if name in positions.layer_positions]
        self._modules_by_name = {name: modules[name] for name in self.layers}
        self.normalize = mean is not None and std is not None
        self.register_buffer("mean", torch.tensor(mean if mean is not None else (0.0,)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std if std is not None else (1.0,)).view(1, -1, 1, 1), persistent=False)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Union[str, os.PathLike],
        positions: Union[NetworkPositions, str, os.PathLike],
        arch: str = "resnet18",
        *,
        trusted: bool = False,
    ) -> "TopographicModel":
        """A VISSL checkpoint's trunk (see :func:`spacetorch.checkpoints.load_trunk`) with its positions.

        ``positions`` is a :class:`NetworkPositions` or a positions directory.
        """
        from spacetorch.checkpoints import load_trunk

        if not isinstance(positions, NetworkPositions):
            positions = NetworkPositions.load_from_dir(positions)
        return cls(load_trunk(checkpoint, arch, trusted=trusted), positions)

    def layer_positions(self, layer: str) -> LayerPositions:
        """The positions of one layer (``"layer2.0"``)."""
        self._check_layers([layer])
        return self.positions.layer_positions[layer]

    def _check_layers(self, layers: Sequence[str]) -> None:
        unknown = [name for name in layers if name not in self._modules_by_name]
        if unknown:
            raise ValueError(f"no positions for layer(s) {unknown}; this model's layers are {self.layers}")

    def forward(self, images: torch.Tensor, layers: Optional[Sequence[str]] = None) -> Dict[str, torch.Tensor]:
        """The features ``(B, C, H, W)`` of ``layers`` (default: all) for ``[0, 1]`` images ``(B, 3, H, W)``.

        The network is run only as far as the last requested layer.

        Raises:
            ValueError: an unknown layer, or images not of shape ``(B, 3, H, W)``.
            PositionsError: a layer's features do not match its positions' dims (another
                image size than the positions were made for).
        """
        names = self.layers if layers is None else list(layers)
        self._check_layers(names)
        if images.ndim != 4 or (self.normalize and images.shape[1] != self.mean.shape[1]):
            raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
        if self.normalize:
            images = (images - self.mean) / self.std
        wanted = set(names)
        last = max(names, key=self.layers.index) if names else None
        captured: Dict[str, torch.Tensor] = {}

        def record(name: str):  # type: ignore[no-untyped-def]
            def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
                captured[name] = output
                if name == last:
                    raise _Stop

            return hook

        handles = [self._modules_by_name[name].register_forward_hook(record(name)) for name in wanted]
        try:
            self.model(images)
        except _Stop:
            pass
        finally:
            for handle in handles:
                handle.remove()
        for name in names:
            dims = tuple(self.positions.layer_positions[name].dims)
            if tuple(captured[name].shape[1:]) != dims:
                raise PositionsError(
                    f"layer {name!r} gives features of shape {tuple(captured[name].shape[1:])} for "
                    f"{tuple(images.shape[2:])} px images, but its positions have dims {dims}; "
                    "use the image size the positions were made for"
                )
        return {name: captured[name] for name in names}

    @torch.no_grad()
    def responses(
        self,
        images: Images,
        layers: Optional[Sequence[str]] = None,
        *,
        batch_size: int = 64,
        device: Union[str, torch.device, None] = None,
        progress: Optional[bool] = None,
    ) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
        """Every unit's response with its cortical position: ``{layer: (responses, coordinates)}``.

        Args:
            images: ``[0, 1]`` images as a ``(B, 3, H, W)`` tensor, a Dataset of images or of
                ``(image, label)`` pairs, or an iterable of such batches.
            layers: layer names (default: all the model's layers with positions).
            batch_size: images per forward pass (tensors and Datasets).
            device: where to run the model (default: where it is).  Results are on the CPU.
            progress: show a progress bar (default: when there is more than one batch).

        The model runs in eval mode (its mode is restored afterwards).

        Returns:
            for each layer, responses ``(B, N)`` (``N = C * H * W``, in the order of
            ``features.flatten(1)``, i.e. of the position file's units) and coordinates
            ``(N, 2)`` in mm, both float32 on the CPU.
        """
        names = self.layers if layers is None else list(layers)
        self._check_layers(names)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if device is not None:
            self.to(device)
        batches, total = _batches(images, batch_size)
        if progress is None:
            progress = total is None or total > 1
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=total, desc="responses", unit="batch")
        collected: Dict[str, List[torch.Tensor]] = {name: [] for name in names}
        was_training = self.training
        self.eval()  # batch-norm statistics from training, whatever mode the model was left in
        try:
            for batch in batches:
                features = self(batch.to(self.mean.device, torch.float32), names)
                for name in names:
                    collected[name].append(features[name].flatten(1).float().cpu())
        finally:
            self.train(was_training)
        if not any(collected.values()) and names:
            raise ValueError("no images were given")
        out = {}
        for name in names:
            coordinates = torch.as_tensor(np.asarray(self.positions.layer_positions[name].coordinates), dtype=torch.float32)
            out[name] = (torch.cat(collected[name]), coordinates)
        return out


def _batches(images: Images, batch_size: int) -> Tuple[Iterator[torch.Tensor], Optional[int]]:
    """Image batches, and how many (``None`` if unknown)."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images[None]
        return iter(images.split(batch_size)), -(-images.shape[0] // batch_size)
    if isinstance(images, Dataset) and hasattr(images, "__len__"):
        loader = DataLoader(images, batch_size=batch_size, shuffle=False)
        return (_images_of(batch) for batch in loader), len(loader)
    iterable: Any = images
    return (_images_of(batch) for batch in iterable), (len(iterable) if hasattr(iterable, "__len__") else None)


def _images_of(batch: object) -> torch.Tensor:
    """The images of a batch that may be ``(images, labels)``."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"expected batches of image tensors (or (images, labels) pairs), got {type(batch).__name__}")
    return batch
