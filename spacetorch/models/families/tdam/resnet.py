"""Top-down attention ResNets (TDAM ResNets, Jaiswal et al., ECCV 2022).

torchvision's ResNets whose chosen blocks are :class:`~spacetorch.models.families.tdam.blocks.TDBlock`: the
block runs ``time_steps`` computation steps, with feedback from its top to the bottom that
``mdist`` picks.  Every other weight keeps torchvision's name, so a plain ResNet's weights load
with ``load_state_dict(strict=False)``, which reports only the TD weights as missing.  Every
residual block carries positions, as in the TDANN ResNets (a TD block's output is that of its
last step).

>>> import torch
>>> model = tdresnet18(time_steps=2, mdist=1)
>>> [name for name, m in model.named_modules() if isinstance(m, TDBlock)]
['layer3.0', 'layer3.1', 'layer4.0', 'layer4.1']
>>> logits = model.eval()(torch.randn(1, 3, 64, 64), output_over_t=True)
>>> len(logits), tuple(logits[-1].shape)
(2, (1, 1000))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv

from spacetorch.models.families.tdam.blocks import TDBlock, limited_steps
from spacetorch.models.registry import register_model

__all__ = ["TDResNet", "default_td_blocks", "tdresnet18", "tdresnet34", "tdresnet50", "tdresnet101"]

#: the layers that get TD blocks by default: the last two stages
DEFAULT_TD_LAYERS = (3, 4)
#: ResNet-101's layer3 blocks with TD by default (a subset, for efficiency); the original's list
#: also names blocks 23, 24 and 25, which a 23-block layer3 does not have
RESNET101_LAYER3_BLOCKS = (0, 1, 2, 8, 13, 18, 22)

_DEPTHS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3]}
_BLOCKS: dict[str, type[nn.Module]] = {
    "resnet18": tv.BasicBlock, "resnet34": tv.BasicBlock, "resnet50": tv.Bottleneck, "resnet101": tv.Bottleneck,
}


def default_td_blocks(arch: str, layers: Sequence[int] = DEFAULT_TD_LAYERS) -> dict[int, list[int]]:
    """The blocks that get TD in each of ``layers`` by default: all of them, except in
    ResNet-101's layer3 (:data:`RESNET101_LAYER3_BLOCKS`)."""
    depths = _DEPTHS[arch]
    return {
        layer: list(RESNET101_LAYER3_BLOCKS) if (arch, layer) == ("resnet101", 3) else list(range(depths[layer - 1]))
        for layer in layers
    }


def _td_plan(
    arch: str,
    layers: Sequence[int] | None,
    blocks: Sequence[Sequence[int]] | Mapping[int, Sequence[int]] | None,
) -> dict[int, list[int]]:
    depths = _DEPTHS[arch]
    layers = list(DEFAULT_TD_LAYERS if layers is None else layers)
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= len(depths):
            raise ValueError(
                f"apply_td_at_layers_list: {arch} has no layer {layer!r}; valid layers are 1 to {len(depths)}"
            )
    if blocks is None:
        return default_td_blocks(arch, layers)
    if isinstance(blocks, Mapping):
        unknown = sorted(set(blocks) - set(layers))
        if unknown:
            raise ValueError(f"apply_td_at_blocks_for_layers names layer(s) {unknown} not in apply_td_at_layers_list {layers}")
        chosen = {layer: list(blocks.get(layer, range(depths[layer - 1]))) for layer in layers}
    else:
        if len(blocks) != len(layers):
            raise ValueError(
                f"apply_td_at_blocks_for_layers has {len(blocks)} list(s) for {len(layers)} layer(s) "
                f"{layers}: give one list of block indices per layer"
            )
        chosen = {layer: list(b) for layer, b in zip(layers, blocks, strict=True)}
    for layer, indices in chosen.items():
        bad = [b for b in indices if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < depths[layer - 1]]
        if bad:
            raise ValueError(
                f"apply_td_at_blocks_for_layers: layer{layer} of {arch} has blocks 0 to {depths[layer - 1] - 1}, "
                f"not {bad}"
            )
    return chosen


class TDResNet(tv.ResNet):  # type: ignore[misc]  # torchvision's ResNet is not annotated
    """A torchvision ResNet with top-down attention in chosen blocks.

    Args:
        arch: ``resnet18``, ``resnet34``, ``resnet50`` or ``resnet101``.
        time_steps: computation steps ``T`` of every TD block (``T = 1``: the plain ResNet).
        mdist: how far down the feedback goes (0..2 for BasicBlock, 0..3 for Bottleneck).
        spotlight_gen_technique: see :data:`spacetorch.models.families.tdam.blocks.TECHNIQUES`.
        apply_td_at_layers_list: layers (1..4) with TD blocks; default ``(3, 4)``.
        apply_td_at_blocks_for_layers: block indices per layer (one list per entry of
            ``apply_td_at_layers_list``, or ``{layer: [blocks]}``); default every block
            (ResNet-101: a subset of layer3, :data:`RESNET101_LAYER3_BLOCKS`).
        per_step_norm: one BatchNorm set per step (``False``: steps share the block's).
        pooling, pool_combine: of the TDAM (``"avg"``, ``"max"`` or both, combined by sum or mean).
        num_classes: classifier outputs.

    ``forward(x, output_over_t=True)`` returns the logits of every step (a list of ``T``); so
    does ``forward(x)`` after ``model.output_over_t = True``, as the TDAM authors' code sets it.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        *,
        time_steps: int = 2,
        mdist: int = 1,
        spotlight_gen_technique: str = "joint_top_bottom_concat_attention",
        apply_td_at_layers_list: Sequence[int] | None = None,
        apply_td_at_blocks_for_layers: Sequence[Sequence[int]] | Mapping[int, Sequence[int]] | None = None,
        per_step_norm: bool = True,
        pooling: str | Sequence[str] = "avg",
        pool_combine: str = "sum",
        num_classes: int = 1000,
        **kwargs: Any,
    ) -> None:
        if arch not in _DEPTHS:
            raise ValueError(f"arch={arch!r} is not valid; choose one of {', '.join(map(repr, _DEPTHS))}")
        super().__init__(_BLOCKS[arch], _DEPTHS[arch], num_classes=num_classes, **kwargs)
        self.arch = arch
        self.time_steps = time_steps
        plan = _td_plan(arch, apply_td_at_layers_list, apply_td_at_blocks_for_layers)
        for layer, indices in plan.items():
            stage: nn.Sequential = getattr(self, f"layer{layer}")
            for index in indices:
                stage[index] = TDBlock.from_block(
                    stage[index], name=f"layer{layer}.{index}", time_steps=time_steps, mdist=mdist,
                    technique=spotlight_gen_technique, pooling=pooling, pool_combine=pool_combine,
                    per_step_norm=per_step_norm,
                )
        #: layers (1..4) with TD blocks, and their block indices
        self.td_plan = plan
        #: what ``forward(x)`` returns without ``output_over_t``: every step's logits, or the last's
        self.output_over_t = False

    def td_blocks(self) -> list[TDBlock]:
        """The model's TD blocks, in forward order."""
        return [m for m in self.modules() if isinstance(m, TDBlock)]

    def forward(self, x: torch.Tensor, output_over_t: bool | None = None) -> Any:
        if not (self.output_over_t if output_over_t is None else output_over_t):
            return super().forward(x)
        first = min(self.td_plan, default=5)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stages = [self.layer1, self.layer2, self.layer3, self.layer4]
        for stage in stages[: first - 1]:
            x = stage(x)
        outputs = []
        for t in range(1, self.time_steps + 1):
            with limited_steps(self, t):
                y = x
                for stage in stages[first - 1:]:
                    y = stage(y)
            outputs.append(self.fc(torch.flatten(self.avgpool(y), 1)))
        return outputs

def _register(builder: Any) -> Any:
    return register_model(builder, family="td_resnet")


@_register
def tdresnet18(**kwargs: Any) -> TDResNet:
    """TDAM ResNet-18 (BasicBlock; TD in every block of layer3 and layer4 by default)."""
    return TDResNet("resnet18", **kwargs)


@_register
def tdresnet34(**kwargs: Any) -> TDResNet:
    """TDAM ResNet-34 (BasicBlock; TD in every block of layer3 and layer4 by default)."""
    return TDResNet("resnet34", **kwargs)


@_register
def tdresnet50(**kwargs: Any) -> TDResNet:
    """TDAM ResNet-50 (Bottleneck; TD in every block of layer3 and layer4 by default)."""
    return TDResNet("resnet50", **kwargs)


@_register
def tdresnet101(**kwargs: Any) -> TDResNet:
    """TDAM ResNet-101 (Bottleneck; TD in layer3 blocks 0, 1, 2, 8, 13, 18, 22 and all of layer4)."""
    return TDResNet("resnet101", **kwargs)
