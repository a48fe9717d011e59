"""Top-down attention (TDAM): feedback from a residual block's top back down to its bottom.

Jaiswal et al., ECCV 2022.  A block with TDAM runs its convolutions ``T`` times (computation
steps).  After each step but the last, a searchlight computed from the block's top (and
optionally its bottom) re-weights the bottom, channel first, then spatially; the convolutions
above the bottom then run again on the re-weighted bottom.  The last step's top goes into the
residual add; the shortcut keeps the block's original input.

Shapes (``B`` batch, ``Cb``/``Ct`` bottom/top channels, ``r = Ct // 16``):

* :class:`TDAM`: ``bottom (B, Cb, H, W)`` and ``top (B, Ct, h, w)`` -> ``(B, Cb, H, W)``;
  :meth:`TDAM.searchlight` -> ``(B, Cb)``.
* :class:`TDBlock`: the shapes of the residual block it replaces.

``mdist`` (how far down the feedback goes) picks the bottom by counting convolutions down from
the top: 0 the top itself (the block's output before the residual add), 1 the input of the last
convolution, and so on up to the block's input (2 for a BasicBlock, 3 for a Bottleneck).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["POOLINGS", "TECHNIQUES", "TDAM", "TDBlock", "check_choice", "limited_steps", "time_steps_of"]

#: searchlight techniques: which pooled tensors the searchlight is computed from
TECHNIQUES = ("top_attention_only", "joint_top_bottom_concat_attention", "joint_top_bottom_bilinear_attention")
#: global poolings of the top and bottom; several are combined by ``pool_combine``
POOLINGS = ("avg", "max")
POOL_COMBINES = ("sum", "mean")


def check_choice(argument: str, value: object, choices: Sequence[object]) -> None:
    """Raise ``ValueError`` naming the argument, the value and the valid choices."""
    if value not in choices:
        raise ValueError(f"{argument}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}")


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, bias=False)


class TDAM(nn.Module):
    """The top-down attention module of one residual block.

    Args:
        bottom_channels: ``Cb``, channels of the tensor that is modulated.
        top_channels: ``Ct``, channels of the block's top.
        technique: one of :data:`TECHNIQUES`:

            * ``top_attention_only``: pooled top -> 1x1 conv ``Ct -> r`` -> ReLU -> 1x1 conv ``r -> Cb``;
            * ``joint_top_bottom_concat_attention``: ReLU(conv ``Ct -> r``)(top) and
              ReLU(conv ``Cb -> r``)(bottom), concatenated, -> conv ``2r -> Cb``;
            * ``joint_top_bottom_bilinear_attention``: the same two branches summed -> conv ``r -> Cb``.
        pooling: global pooling(s) of top and bottom, from :data:`POOLINGS`; several are
            combined by ``pool_combine`` (``"sum"`` or ``"mean"``).
        reduction: ``r = max(Ct // reduction, 1)``.

    The modulation (``att_scale``) is channel then spatial: with the searchlight ``S``,
    ``X' = bottom * sigmoid(S)``; ``A = sum_c S_c X'_c`` (the raw ``S`` as a per-sample 1x1
    kernel, ``(B, 1, H, W)``); the output is ``X' * sigmoid(A)``.
    """

    def __init__(
        self,
        bottom_channels: int,
        top_channels: int,
        technique: str = "top_attention_only",
        pooling: str | Sequence[str] = "avg",
        pool_combine: str = "sum",
        reduction: int = 16,
    ) -> None:
        super().__init__()
        check_choice("spotlight_gen_technique", technique, TECHNIQUES)
        poolings = (pooling,) if isinstance(pooling, str) else tuple(pooling)
        if not poolings:
            raise ValueError(f"pooling must name at least one of {', '.join(POOLINGS)}")
        for name in poolings:
            check_choice("pooling", name, POOLINGS)
        check_choice("pool_combine", pool_combine, POOL_COMBINES)
        if reduction < 1:
            raise ValueError(f"reduction={reduction!r} is not valid; it must be an integer >= 1")
        self.technique = technique
        self.poolings = poolings
        self.pool_combine = pool_combine
        r = max(top_channels // reduction, 1)
        self.top_branch = nn.Sequential(_conv1x1(top_channels, r), nn.ReLU(inplace=True))
        if technique == "top_attention_only":
            self.bottom_branch: nn.Module | None = None
            self.project = _conv1x1(r, bottom_channels)
        else:
            self.bottom_branch = nn.Sequential(_conv1x1(bottom_channels, r), nn.ReLU(inplace=True))
            joint = 2 * r if technique == "joint_top_bottom_concat_attention" else r
            self.project = _conv1x1(joint, bottom_channels)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        pooled = [F.adaptive_avg_pool2d(x, 1) if name == "avg" else F.adaptive_max_pool2d(x, 1) for name in self.poolings]
        total = torch.stack(pooled).sum(0) if len(pooled) > 1 else pooled[0]
        return total / len(pooled) if self.pool_combine == "mean" and len(pooled) > 1 else total

    def searchlight(self, bottom: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """The searchlight ``S`` (before the sigmoid), ``(B, Cb)``."""
        hidden = self.top_branch(self._pool(top))
        if self.bottom_branch is not None:
            from_bottom = self.bottom_branch(self._pool(bottom))
            if self.technique == "joint_top_bottom_concat_attention":
                hidden = torch.cat([hidden, from_bottom], dim=1)
            else:
                hidden = hidden + from_bottom
        return torch.flatten(self.project(hidden), 1)

    def forward(self, bottom: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        s = self.searchlight(bottom, top)[:, :, None, None]
        channel = bottom * torch.sigmoid(s)
        spatial = (channel * s).sum(dim=1, keepdim=True)
        return channel * torch.sigmoid(spatial)

    def extra_repr(self) -> str:
        return f"technique={self.technique}, pooling={'+'.join(self.poolings)}"


class TDBlock(nn.Module):
    """A residual block (torchvision's BasicBlock or Bottleneck) with top-down attention.

    Built with :meth:`from_block`, it keeps the block's submodules under their names
    (``conv1``, ``bn1``, ..., ``downsample``), so a plain ResNet's weights load into it; the
    new weights are ``tdam.*`` and, with ``per_step_norm``, ``step_norms.<t-1>.bn<i>`` (one
    BatchNorm set for each step ``t >= 1``, over the convolutions the feedback recomputes).

    Args:
        convs, norms: the block's convolutions and their norms, bottom to top.
        downsample: the shortcut's projection, or ``None``.
        time_steps: ``T >= 1`` computation steps (``T = 1``: the plain block).
        mdist: how far down the feedback goes, ``0 .. len(convs)`` (see the module docs).
        technique, pooling, pool_combine: of the :class:`TDAM`.
        per_step_norm: give each step ``t >= 1`` its own BatchNorms (else all steps share the
            block's).
        name: the block's name in the model, for error messages.

    The block runs ``self.time_steps`` steps; :attr:`steps` overrides that for a forward pass
    (``None``: all), which ``output_over_t`` uses.
    """

    def __init__(
        self,
        convs: Sequence[nn.Conv2d],
        norms: Sequence[nn.Module],
        downsample: nn.Module | None,
        *,
        time_steps: int = 2,
        mdist: int = 1,
        technique: str = "top_attention_only",
        pooling: str | Sequence[str] = "avg",
        pool_combine: str = "sum",
        per_step_norm: bool = True,
        name: str = "block",
    ) -> None:
        super().__init__()
        kind = {2: "BasicBlock", 3: "Bottleneck"}.get(len(convs), f"{len(convs)}-conv block")
        if len(convs) != len(norms) or not convs:
            raise ValueError(f"{name}: a TD block needs one norm per convolution, got {len(convs)} and {len(norms)}")
        if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"time_steps={time_steps!r} is not valid; it must be an integer >= 1")
        check_choice(f"mdist (for the {kind} {name})", mdist, range(len(convs) + 1))
        for i, (conv, norm) in enumerate(zip(convs, norms, strict=True), 1):
            self.add_module(f"conv{i}", conv)
            self.add_module(f"bn{i}", norm)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.n_convs = len(convs)
        self.time_steps = time_steps
        self.mdist = mdist
        self.per_step_norm = per_step_norm
        self.steps: int | None = None
        self.first_recomputed = self.n_convs - mdist
        top_channels = convs[-1].out_channels
        bottom_channels = top_channels if mdist == 0 else convs[self.first_recomputed].in_channels
        self.tdam = TDAM(bottom_channels, top_channels, technique, pooling, pool_combine)
        recomputed = range(self.first_recomputed + 1, self.n_convs + 1)
        steps: list[nn.Module] = []
        for _ in range(time_steps - 1 if per_step_norm and mdist > 0 else 0):
            step = {f"bn{i}": copy.deepcopy(norms[i - 1]) for i in recomputed}
            for norm in step.values():
                cast(Any, norm).reset_parameters()  # fresh statistics and affine weights
            steps.append(nn.ModuleDict(step))
        self.step_norms = nn.ModuleList(steps)

    @classmethod
    def from_block(cls, block: nn.Module, *, name: str = "block", **td: object) -> TDBlock:
        """The TD version of a torchvision ``BasicBlock`` or ``Bottleneck`` (sharing its modules)."""
        if isinstance(block, Bottleneck):
            convs, norms = [block.conv1, block.conv2, block.conv3], [block.bn1, block.bn2, block.bn3]
        elif isinstance(block, BasicBlock):
            convs, norms = [block.conv1, block.conv2], [block.bn1, block.bn2]
        else:
            raise TypeError(f"{name} is a {type(block).__name__}; TD blocks replace torchvision BasicBlock or Bottleneck")
        return cls(convs, norms, block.downsample, name=name, **td)  # type: ignore[arg-type]

    def _conv(self, i: int) -> nn.Module:
        return cast(nn.Module, getattr(self, f"conv{i}"))

    def _norm(self, i: int, t: int) -> nn.Module:
        if t == 0 or not self.step_norms:
            return cast(nn.Module, getattr(self, f"bn{i}"))
        return cast(nn.ModuleDict, self.step_norms[t - 1])[f"bn{i}"]

    def _run(self, x: torch.Tensor, start: int, t: int) -> torch.Tensor:
        """Convolutions ``start+1 .. n`` (1-based) with the norms of step ``t``; ReLU after all but the last."""
        for i in range(start + 1, self.n_convs + 1):
            x = self._norm(i, t)(self._conv(i)(x))
            if i < self.n_convs:
                x = self.relu(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        steps = self.time_steps if self.steps is None else self.steps
        first = self.first_recomputed
        if first == self.n_convs:  # mdist 0: the bottom is the top
            top = self._run(x, 0, 0)
            for _ in range(steps - 1):
                top = self.tdam(top, top)
        else:
            bottom = x
            for i in range(1, first + 1):
                bottom = self.relu(self._norm(i, 0)(self._conv(i)(bottom)))
            for t in range(steps):
                top = self._run(bottom, first, t)
                if t < steps - 1:
                    bottom = self.tdam(bottom, top)
        return self.relu(top + identity)  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, mdist={self.mdist}, per_step_norm={self.per_step_norm}"


def _td_modules(model: nn.Module) -> list[Any]:
    """The modules that run computation steps (they have ``time_steps`` and ``steps``)."""
    return [m for m in model.modules() if hasattr(m, "time_steps") and hasattr(m, "steps") and m is not model]


def time_steps_of(model: nn.Module) -> int:
    """The largest number of computation steps of the model's TD blocks (1 without any)."""
    return max((int(cast(Any, m).time_steps) for m in _td_modules(model)), default=1)


@contextlib.contextmanager
def limited_steps(model: nn.Module, steps: int) -> Iterator[nn.Module]:
    """Run every TD block of ``model`` for at most ``steps`` computation steps inside the block;
    each block's setting is restored afterwards."""
    if steps < 1:
        raise ValueError(f"steps={steps!r} is not valid; it must be an integer >= 1")
    blocks = _td_modules(model)
    before = [m.steps for m in blocks]
    for m in blocks:
        m.steps = min(steps, int(m.time_steps))
    try:
        yield model
    finally:
        for m, value in zip(blocks, before, strict=True):
            m.steps = value
