"""A trained network paired with its units' cortical positions.

:class:`TopographicModel` answers the question users start with: *how does every unit of a
layer respond to these images, and where on the cortical sheet does it sit?*

    >>> from spacetorch.models import create_model
    >>> from spacetorch.models import retinotopic_positions
    >>> model = TopographicModel(create_model("resnet18", headless=True),
    ...                          retinotopic_positions("resnet18", n_neighborhoods=10))
    >>> out = model.responses(torch.rand(4, 3, 224, 224), layers=["layer2.0"])
    >>> responses, coordinates = out["layer2.0"]
    >>> tuple(responses.shape), tuple(coordinates.shape)
    ((4, 100352), (100352, 2))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from spacetorch.models.capture import capture_outputs, eval_mode, install_taps
from spacetorch.models.positions import LayerPositions, NetworkPositions, PositionsError
from spacetorch.models.registry import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Images", "TopographicModel"]

#: a ``(B, 3, H, W)`` tensor, a Dataset of images or ``(image, label)`` pairs, or batches
Images = torch.Tensor | Dataset[Any] | Iterable[Any]


class TopographicModel(nn.Module):
    """A network whose chosen layers' units have positions on a cortical sheet.

    Args:
        model: any network; the layers are its submodules named as in ``positions``
            (``"layer2.0"``).
        positions: the units' positions, one :class:`LayerPositions` per layer.
        mean: per-channel mean of the normalisation applied to the ``[0, 1]`` input images (the
            training configs' ImageNet values); ``None`` for no normalisation.
        std: per-channel standard deviation of that normalisation.

    The model's mode is left as it is; :meth:`responses` runs it in eval mode.

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
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.model = model
        self.positions = positions
        modules = dict(model.named_modules())
        unknown = sorted(set(positions.layer_positions) - set(modules))
        if unknown:
            raise PositionsError(f"positions name layer(s) {unknown}, but {type(model).__name__} has no such submodules")
        #: the layers with positions, in ``named_modules()`` order
        self.layers: list[str] = [name for name in modules if name in positions.layer_positions]
        install_taps(model, self.layers)
        # learned from the first forward pass that captures every layer: the order in which
        # the layers run, if each runs exactly once (then a forward may stop after the last
        # layer it needs); None while unknown, [] if some layer runs several times
        self._single_pass_order: list[str] | None = None
        self.normalize = mean is not None and std is not None
        self.register_buffer("mean", torch.tensor(mean if mean is not None else (0.0,)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std if std is not None else (1.0,)).view(1, -1, 1, 1), persistent=False)
        param = next(model.parameters(), None)
        if param is not None:  # the normalisation where the model is
            self.to(param.device)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | os.PathLike[str],
        positions: NetworkPositions | str | os.PathLike[str],
        arch: str = "resnet18",
        *,
        trusted: bool = False,
        model_kwargs: Mapping[str, Any] | None = None,
    ) -> TopographicModel:
        """A VISSL checkpoint's trunk (see :func:`spacetorch.models.checkpoints.load_trunk`) with its positions.

        ``positions`` is a :class:`NetworkPositions` or a positions directory; ``arch`` a
        registered model, whose normalisation is applied to the images; ``model_kwargs`` the
        builder's arguments the model was trained with (see :func:`~spacetorch.models.checkpoints.load_trunk`).
        """
        from spacetorch.models.checkpoints import load_trunk
        from spacetorch.models.registry import model_info

        info = model_info(arch)
        if not isinstance(positions, NetworkPositions):
            positions = NetworkPositions.load_from_dir(positions)
        trunk = load_trunk(checkpoint, arch, trusted=trusted, model_kwargs=model_kwargs)
        return cls(trunk, positions, mean=info.mean, std=info.std)

    def layer_positions(self, layer: str) -> LayerPositions:
        """The positions of one layer (``"layer2.0"``)."""
        self._check_layers([layer])
        return self.positions.layer_positions[layer]

    def _check_layers(self, layers: Sequence[str]) -> None:
        unknown = [name for name in layers if name not in self.layers]
        if unknown:
            raise ValueError(f"no positions for layer(s) {unknown}; this model's layers are {self.layers}")

    def forward(self, images: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The features ``(B, C, H, W)`` of ``layers`` (default: all) for ``[0, 1]`` images ``(B, 3, H, W)``.

        The network is run only as far as the last requested layer, once the first call (which
        runs it to the end) has shown that each layer runs once per forward pass.  A layer that
        runs several times yields its last call (see :mod:`spacetorch.models.capture`).

        Raises:
            ValueError: an unknown layer, or images not of shape ``(B, 3, H, W)``.
            PositionsError: a layer's features do not match its positions' dims (another
                image size than the positions were made for).
        """
        names = self.layers if layers is None else list(layers)
        self._check_layers(names)
        channels = self.mean.shape[1] if self.normalize else None
        if images.ndim != 4 or (channels is not None and images.shape[1] != channels):
            raise ValueError(f"images must have shape (B, {channels or 'C'}, H, W), got {tuple(images.shape)}")
        if self.normalize:
            images = (images - self.mean) / self.std
        order = self._single_pass_order
        if order is None:  # learn how the layers run: capture all of them, run to the end
            with capture_outputs(self.model, self.layers) as captured:
                self.model(images)
            ran_once = all(captured.calls.get(name) == 1 for name in self.layers)
            self._single_pass_order = list(captured) if ran_once else []
        else:
            stop = max(names, key=order.index) if order and names else None
            with capture_outputs(self.model, names, stop_after=stop) as captured:
                self.model(images)
        for name in names:
            self.positions.layer_positions[name].check_features(captured[name], tuple(images.shape[2:]))
        return {name: captured[name] for name in names}

    @torch.no_grad()
    def responses(
        self,
        images: Images,
        layers: Sequence[str] | None = None,
        *,
        batch_size: int = 64,
        device: str | torch.device | None = None,
        progress: bool | None = None,
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
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
        collected: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        # batch-norm statistics from training, whatever mode the model was left in
        with eval_mode(self):
            for batch in batches:
                features = self(batch.to(self.mean.device, torch.float32), names)
                for name in names:
                    collected[name].append(features[name].flatten(1).float().cpu())
        if not any(collected.values()) and names:
            raise ValueError("no images were given")
        out = {}
        for name in names:
            coordinates = torch.as_tensor(self.positions.layer_positions[name].coordinates).detach()
            out[name] = (torch.cat(collected[name]), coordinates.to("cpu", torch.float32))
        return out


def _batches(images: Images, batch_size: int) -> tuple[Iterator[torch.Tensor], int | None]:
    """Image batches, and how many (``None`` if unknown)."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images[None]
        return iter(torch.split(images, batch_size)), -(-images.shape[0] // batch_size)
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
