"""One way to capture the outputs of named submodules during a forward pass.

:func:`capture_outputs` is used by :class:`~spacetorch.models.trunks.SpatialTrunk`,
:class:`~spacetorch.models.topographic.TopographicModel` (and through it the training-time
orientation map) and :func:`output_dims` (positions from a model's real output sizes)::

    with capture_outputs(model, ["layer2.0", "layer4.1"]) as outputs:
        logits = model(images)
    outputs["layer2.0"]            # (B, C, H, W)

Rules:

* **State per call.**  Each captured module gets one forward hook, once (a "tap"; it stays,
  so ``copy.deepcopy`` and ``DataParallel`` replicas carry it).  A tap records only into the
  capture active in the current thread or task (a ``contextvars`` variable), so concurrent
  forwards in threads, ``DataParallel`` replicas and nested captures never see each other's
  outputs, and outside a capture a tap does nothing.
* **Outputs that are not tensors.**  A module returning a tuple or list yields its first
  element; one returning a dict yields its first value.
* **Modules that run several times in one forward** (blocks run once per computation step):
  the last call is the layer's output; :attr:`Captured.calls` counts the calls.
* ``stop_after=name`` ends the forward pass right after that layer's first call (the
  ``with`` block then ends there without error); only for layers that run once.
* **Tokens as a feature map.**  A module that outputs tokens ``(B, T, C)`` (a vision
  transformer's block) and carries the attribute :data:`TOKEN_PREFIX` (how many class and
  register tokens come first) yields its patch tokens as ``(B, C, H, W)``, in the patches'
  places in the image (row-major, a square grid); the first tokens are left out.  Its channels
  then sit at their patch's place as a convolution's channels sit at their feature-map location.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import torch
from torch import nn

__all__ = ["TOKEN_PREFIX", "Captured", "capture_outputs", "eval_mode", "layer_output", "output_dims", "token_map"]

#: the attribute of a module whose output is tokens: the number of tokens before its patch tokens
TOKEN_PREFIX = "spacetorch_token_prefix"


class _StopForward(Exception):
    """Raised by the tap of ``stop_after``: the rest of the network is not run."""


class _Tap:
    """The forward hook of one module: records its output into the active captures."""

    def __call__(self, module: nn.Module, inputs: Any, output: Any) -> None:
        captured = _ACTIVE.get()
        prefix = getattr(module, TOKEN_PREFIX, None)
        while captured is not None:
            captured._record(self, output, prefix)
            captured = captured._outer


class Captured(Mapping[str, torch.Tensor]):
    """The outputs captured so far, ``{layer name: tensor}``, in the order of first call."""

    def __init__(self, taps: Mapping[_Tap, str], stop_after: _Tap | None, outer: Captured | None) -> None:
        self._taps = dict(taps)
        self._stop_after = stop_after
        self._outer = outer
        self._outputs: dict[str, torch.Tensor] = {}
        #: how many times each layer ran
        self.calls: dict[str, int] = {}

    def _record(self, tap: _Tap, output: Any, prefix: int | None = None) -> None:
        name = self._taps.get(tap)
        if name is None:
            return
        value = layer_output(output, name)
        self._outputs[name] = value if prefix is None else token_map(value, prefix, name)
        self.calls[name] = self.calls.get(name, 0) + 1
        if tap is self._stop_after:
            raise _StopForward

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._outputs[name]
        except KeyError:
            if name in self._taps.values():
                raise KeyError(f"layer {name!r} did not run in this forward pass") from None
            raise KeyError(f"layer {name!r} is not captured; captured layers: {sorted(self._taps.values())}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)


_ACTIVE: ContextVar[Captured | None] = ContextVar("spacetorch_capture", default=None)


def layer_output(output: Any, name: str = "layer") -> torch.Tensor:
    """A module's output as one tensor: itself, a sequence's first element, a dict's first value.

    Raises:
        TypeError: naming the layer, when that is not a tensor.
    """
    value = output
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    elif isinstance(value, Mapping) and value:
        value = next(iter(value.values()))
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} returned a {type(output).__name__}; expected a tensor, or a tuple/list/dict whose first "
            f"element is one, got {type(value).__name__}"
        )
    return value


def token_map(tokens: torch.Tensor, prefix: int, name: str = "layer") -> torch.Tensor:
    """The patch tokens of ``tokens`` ``(B, T, C)`` as a feature map ``(B, C, H, W)``: the first
    ``prefix`` tokens (class, register) left out, the rest a square grid in row-major order (the
    order of a vision transformer's patches).

    Raises:
        ValueError: naming the layer, when the output is not ``(B, T, C)`` or its patch tokens are
            no square grid.

    >>> token_map(torch.arange(2 * 5 * 3.0).reshape(2, 5, 3), prefix=1).shape
    torch.Size([2, 3, 2, 2])
    """
    if tokens.dim() != 3:
        raise ValueError(f"{name}: expected tokens (batch, tokens, channels), got shape {tuple(tokens.shape)}")
    patches = tokens[:, prefix:, :]
    side = int(round(patches.shape[1] ** 0.5))
    if side * side != patches.shape[1]:
        raise ValueError(f"{name}: {patches.shape[1]} patch tokens are no square grid (a square input image is needed)")
    return patches.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], side, side)


def _tap(module: nn.Module) -> _Tap:
    """The module's tap, installed on first use."""
    for hook in module._forward_hooks.values():
        if isinstance(hook, _Tap):
            return hook
    tap = _Tap()
    module.register_forward_hook(tap)
    return tap


def _resolve(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    missing = [name for name in names if name not in modules]
    if missing:
        shown = [n for n in modules if n][:12]
        raise ValueError(
            f"{type(model).__name__} has no submodule(s) {missing}; its submodules include {shown}"
            + (" ..." if len(modules) > 13 else "")
        )
    return {name: modules[name] for name in names}


def install_taps(model: nn.Module, names: Sequence[str]) -> None:
    """Install the taps of ``names`` now (before replicating the model, e.g. ``DataParallel``).

    Raises:
        ValueError: a name is not a submodule of ``model``.
    """
    for module in _resolve(model, names).values():
        _tap(module)


@contextlib.contextmanager
def capture_outputs(model: nn.Module, names: Sequence[str], *, stop_after: str | None = None) -> Iterator[Captured]:
    """Capture the outputs of ``model``'s submodules ``names`` (module paths) within the block.

    Args:
        model: the network whose submodules are named.
        names: module paths (``"layer2.0"``), as in ``model.named_modules()``.
        stop_after: end the forward pass after this layer's output is recorded.

    Yields:
        :class:`Captured`, filled as the forward pass runs.

    Raises:
        ValueError: a name (or ``stop_after``) is not a submodule of ``model``.
    """
    recorded = list(dict.fromkeys([*names, *([stop_after] if stop_after is not None else [])]))
    modules = _resolve(model, recorded)
    taps = {_tap(modules[name]): name for name in recorded}
    stop = _tap(modules[stop_after]) if stop_after is not None else None
    captured = Captured(taps, stop, _ACTIVE.get())
    token = _ACTIVE.set(captured)
    try:
        yield captured
    except _StopForward:
        pass
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode; restore each one's own mode afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


def output_dims(
    model: nn.Module, names: Sequence[str], input_size: int | tuple[int, int] = 224, in_chans: int = 3
) -> dict[str, tuple[int, ...]]:
    """Output dims (without the batch dim, e.g. ``(C, H, W)``) of the named submodules.

    Runs one forward pass of one ``input_size`` px image, in eval mode (each submodule's mode
    is restored), on the model's device; a model built on the ``meta`` device
    (``with torch.device("meta"): ...``) costs no memory or compute.

    Raises:
        ValueError: a name is not a submodule of ``model``, or did not run.

    >>> from torchvision.models import resnet18
    >>> output_dims(resnet18(), ["layer2.0", "layer4.1"], input_size=64)
    {'layer2.0': (128, 8, 8), 'layer4.1': (512, 2, 2)}
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    with eval_mode(model), torch.no_grad(), capture_outputs(model, names) as captured:
        model(torch.zeros(1, in_chans, h, w, device=device))
    not_run = [name for name in names if name not in captured]
    if not_run:
        raise ValueError(f"{type(model).__name__}: submodule(s) {not_run} did not run in a forward pass")
    return {name: tuple(captured[name].shape[1:]) for name in names}
