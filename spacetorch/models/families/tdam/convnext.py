"""Top-down attention ConvNeXt-Tiny, built on timm's ConvNeXt.

Each chosen block runs ``time_steps`` computation steps.  Its top is the output of the second
pointwise convolution (``mlp.fc2``, before the layer scale); ``mdist`` picks the bottom: 0 the
top itself, 1 the MLP's hidden activation (the first pointwise convolution ``mlp.fc1`` and its
GELU), 2 the normed depthwise-convolution output, as in the TDAM authors' TD ConvNeXt.  Steps share the block's norm (there is no per-step norm).  The
block keeps timm's submodule names, so timm's ConvNeXt weights load with
``load_state_dict(strict=True)`` (only ``*.tdam.*`` missing).  Every block
(``stages.<s>.blocks.<b>``) carries positions: stage 0 -> retina, 1 -> V1, 2 -> V2 then V4,
3 -> VTC.

>>> import torch
>>> model = tdconvnext_tiny(time_steps=2, mdist=1, num_classes=10)
>>> tuple(model(torch.randn(1, 3, 64, 64)).shape)
(1, 10)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from timm.models.convnext import ConvNeXt, ConvNeXtBlock
from torch import nn

from spacetorch.models.families.tdam.blocks import TDAM, check_choice
from spacetorch.models.registry import register_model, stage_areas

__all__ = ["TDConvNeXtBlock", "tdconvnext_tiny"]

#: the stages (0-based, as in ``stages.<s>``) with TD blocks by default: the last two
DEFAULT_TD_STAGES = (2, 3)


class TDConvNeXtBlock(nn.Module):
    """A timm ``ConvNeXtBlock`` (``conv_mlp=False``) with top-down attention; see the module docs.

    Built with :meth:`from_block`; it shares the block's submodules under their names.
    """

    def __init__(
        self,
        block: ConvNeXtBlock,
        *,
        time_steps: int = 2,
        mdist: int = 1,
        technique: str = "joint_top_bottom_concat_attention",
        pooling: str | Sequence[str] = "avg",
        pool_combine: str = "sum",
        name: str = "block",
    ) -> None:
        super().__init__()
        if block.use_conv_mlp:
            raise ValueError(f"{name}: TD ConvNeXt blocks need conv_mlp=False (timm's default)")
        if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"time_steps={time_steps!r} is not valid; it must be an integer >= 1")
        check_choice(f"mdist (for the ConvNeXt block {name})", mdist, range(3))
        self.conv_dw = block.conv_dw
        self.norm = block.norm
        self.mlp = block.mlp
        self.gamma = block.gamma
        self.shortcut = block.shortcut
        self.drop_path = block.drop_path
        self.time_steps = time_steps
        self.mdist = mdist
        self.steps: int | None = None
        mlp = cast(Any, self.mlp)
        channels = int(mlp.fc2.out_features)
        bottom = int(mlp.fc1.out_features) if mdist == 1 else channels
        self.tdam = TDAM(bottom, channels, technique, pooling, pool_combine)

    @classmethod
    def from_block(cls, block: nn.Module, *, name: str = "block", **td: Any) -> TDConvNeXtBlock:
        if not isinstance(block, ConvNeXtBlock):
            raise TypeError(f"{name} is a {type(block).__name__}; TD ConvNeXt blocks replace timm ConvNeXtBlock")
        return cls(block, name=name, **td)

    def _above(self, bottom: torch.Tensor) -> torch.Tensor:
        """From the bottom (channels last) to the top, for mdist 1 or 2."""
        mlp = cast(Any, self.mlp)
        hidden = bottom if self.mdist == 1 else mlp.act(mlp.fc1(bottom))
        return mlp.drop2(mlp.fc2(mlp.norm(mlp.drop1(hidden))))  # type: ignore[no-any-return]

    def _attend(self, bottom: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        # the TDAM works channels first; the block's tensors are channels last
        out = self.tdam(bottom.permute(0, 3, 1, 2), top.permute(0, 3, 1, 2))
        return out.permute(0, 2, 3, 1)  # type: ignore[no-any-return]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        steps = self.time_steps if self.steps is None else self.steps
        normed = self.norm(self.conv_dw(x).permute(0, 2, 3, 1))
        if self.mdist == 0:
            top = self.mlp(normed)
            for _ in range(steps - 1):
                top = self._attend(top, top)
        else:
            mlp = cast(Any, self.mlp)
            bottom = normed if self.mdist == 2 else mlp.act(mlp.fc1(normed))
            for t in range(steps):
                top = self._above(bottom)
                if t < steps - 1:
                    bottom = self._attend(bottom, top)
        out = top.permute(0, 3, 1, 2)
        if self.gamma is not None:
            out = out.mul(self.gamma.reshape(1, -1, 1, 1))
        return self.drop_path(out) + self.shortcut(shortcut)  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"time_steps={self.time_steps}, mdist={self.mdist}"


def _td_stages(
    depths: Sequence[int],
    stages: Sequence[int] | None,
    blocks: Sequence[Sequence[int]] | Mapping[int, Sequence[int]] | None,
) -> dict[int, list[int]]:
    chosen_stages = list(DEFAULT_TD_STAGES if stages is None else stages)
    for s in chosen_stages:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < len(depths):
            raise ValueError(f"apply_td_at_stages: ConvNeXt has stages 0 to {len(depths) - 1}, not {s!r}")
    if blocks is None:
        plan = {s: list(range(depths[s])) for s in chosen_stages}
    elif isinstance(blocks, Mapping):
        plan = {s: list(blocks.get(s, range(depths[s]))) for s in chosen_stages}
    else:
        if len(blocks) != len(chosen_stages):
            raise ValueError(f"apply_td_at_blocks_for_stages has {len(blocks)} list(s) for stages {chosen_stages}")
        plan = {s: list(b) for s, b in zip(chosen_stages, blocks, strict=True)}
    for s, indices in plan.items():
        bad = [b for b in indices if not 0 <= b < depths[s]]
        if bad:
            raise ValueError(f"apply_td_at_blocks_for_stages: stage {s} has blocks 0 to {depths[s] - 1}, not {bad}")
    return plan


_CONVNEXT_AREAS = stage_areas(
    {"stages.0": "retina", "stages.1": "V1", "stages.2": ("V2", "V4"), "stages.3": "VTC"},
    stage_of=r"(stages\.\d+)\.blocks\.\d+",
)


def _register(builder: Any) -> Any:
    return register_model(
        builder, layers=r"stages\.\d+\.blocks\.\d+", areas=_CONVNEXT_AREAS, classifier="head.fc", family="td_convnext"
    )


@_register
def tdconvnext_tiny(
    *,
    time_steps: int = 2,
    mdist: int = 1,
    spotlight_gen_technique: str = "joint_top_bottom_concat_attention",
    apply_td_at_stages: Sequence[int] | None = None,
    apply_td_at_blocks_for_stages: Sequence[Sequence[int]] | Mapping[int, Sequence[int]] | None = None,
    pooling: str | Sequence[str] = "avg",
    pool_combine: str = "sum",
    **kwargs: Any,
) -> ConvNeXt:
    """TDAM ConvNeXt-Tiny (depths 3-3-9-3, dims 96-192-384-768; timm's ConvNeXt), TD in every
    block of stages 2 and 3 by default; ``kwargs`` go to timm's ``ConvNeXt`` (``num_classes``...)."""
    kwargs.setdefault("depths", (3, 3, 9, 3))
    kwargs.setdefault("dims", (96, 192, 384, 768))
    model = ConvNeXt(**kwargs)
    for s, indices in _td_stages(kwargs["depths"], apply_td_at_stages, apply_td_at_blocks_for_stages).items():
        stage_blocks = cast(nn.Sequential, cast(Any, model.stages[s]).blocks)
        for b in indices:
            stage_blocks[b] = TDConvNeXtBlock.from_block(
                stage_blocks[b], name=f"stages.{s}.blocks.{b}", time_steps=time_steps, mdist=mdist,
                technique=spotlight_gen_technique, pooling=pooling, pool_combine=pool_combine,
            )
    return model
