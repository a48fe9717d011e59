"""Published models of other topography methods, in spacetorch's analyses.

A torchvision-layout state dict (``torch.save(model.state_dict())``, on its own or under
``state_dict`` / ``model``, with or without DDP's ``module.``) loads into the registered model of
the same name, and the sheet its method implies gives its units positions
(:func:`spacetorch.methods.bench.sheet_positions`), so the same maps and numbers can be drawn:

* ``torchvision``: a plain model (no topography method), measured on both sheets;
* ``toponets``: the TopoNets ResNets (Deb et al., ICLR 2025; ``resnet18_tau_*.pt``,
  ``resnet50_tau_*.pt``), trained with TopoLoss on every convolution, so measured on the tiled
  channel-grid sheet.  They were trained with blur pooling: each strided convolution with at
  least 16 input channels is preceded by a fixed 3x3 binomial blur (``[1, 2, 1]`` outer itself,
  / 16; their keys ``<conv>.conv.weight`` and ``<conv>.blur_filter``), which
  :func:`load_published` rebuilds so the model computes as trained.  TopoNets' ViT-B/32
  (``vit_b_32_tau_10.0.pt``) is torchvision's ``vit_b_32`` under ``model``: it loads into
  ``vit_base_patch32_224``.

A torchvision vision transformer's state dict (``encoder.layers.encoder_layer_<i>...``) loads
into the registered timm ViT of the same shape, its keys renamed (:func:`timm_vit_keys`): the two
implementations compute the same function, so the blocks' patch tokens go on the sheet as any
registered ViT's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["KINDS", "BlurPoolConv2d", "add_blurpool", "load_published", "timm_vit_keys"]

#: the layouts :func:`load_published` reads, and the sheets their models are measured on
KINDS: dict[str, list[str]] = {"torchvision": ["retinotopic", "tiled"], "toponets": ["tiled"]}


class BlurPoolConv2d(nn.Module):
    """A fixed 3x3 binomial blur (per channel, stride 1, zero padding 1) before ``conv``."""

    blur_filter: torch.Tensor

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.outer(taps, taps) / 16
        self.register_buffer("blur_filter", kernel.expand(conv.in_channels, 1, 3, 3).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blurred = F.conv2d(x, self.blur_filter.to(x.dtype), padding=1, groups=self.conv.in_channels)
        out: torch.Tensor = self.conv(blurred)
        return out


def add_blurpool(model: nn.Module, min_channels: int = 16) -> nn.Module:
    """Put a :class:`BlurPoolConv2d` around every strided ``Conv2d`` of ``model`` with at least
    ``min_channels`` input channels, in place; returns the model."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d) and max(child.stride) > 1 and child.in_channels >= min_channels:
                setattr(parent, name, BlurPoolConv2d(child))
    return model


#: torchvision ViT names -> timm ViT names: whole keys, then the parts of an encoder layer's keys
_TORCHVISION_VIT = {"class_token": "cls_token", "conv_proj.weight": "patch_embed.proj.weight",
                    "conv_proj.bias": "patch_embed.proj.bias", "encoder.pos_embedding": "pos_embed",
                    "encoder.ln.weight": "norm.weight", "encoder.ln.bias": "norm.bias",
                    "heads.head.weight": "head.weight", "heads.head.bias": "head.bias"}  # fmt: skip
_TORCHVISION_VIT_LAYER = {"ln_1.": "norm1.", "ln_2.": "norm2.", "self_attention.in_proj_weight": "attn.qkv.weight",
                          "self_attention.in_proj_bias": "attn.qkv.bias", "self_attention.out_proj.": "attn.proj.",
                          "mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2.", "mlp.linear_1.": "mlp.fc1.", "mlp.linear_2.": "mlp.fc2."}  # fmt: skip
_ENCODER_LAYER = "encoder.layers.encoder_layer_"


def timm_vit_keys(weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchvision ``VisionTransformer`` state dict with timm's ``VisionTransformer`` names
    (``encoder.layers.encoder_layer_3.self_attention.in_proj_weight`` -> ``blocks.3.attn.qkv.weight``);
    both keep query, key and value stacked in that order, so the tensors are unchanged.  Keys it
    does not know are kept as they are (the loader then names them)."""
    renamed = {}
    for key, value in weights.items():
        new = _TORCHVISION_VIT.get(key, key)
        if key.startswith(_ENCODER_LAYER):
            index, _, rest = key.removeprefix(_ENCODER_LAYER).partition(".")
            part = next((part for part in _TORCHVISION_VIT_LAYER if rest.startswith(part)), None)
            if part is not None:
                new = f"blocks.{index}.{_TORCHVISION_VIT_LAYER[part]}{rest.removeprefix(part)}"
        renamed[new] = value
    return renamed


def load_published(path: str | Path, arch: str, kind: str, *, trusted: bool = False) -> nn.Module:
    """The trunk (classifier removed, eval mode) of a published ``kind`` state dict of ``arch``.

    Raises:
        ValueError: an unknown ``kind``.
        CheckpointError: the weights do not fit (naming the keys); see also ``read_checkpoint``.
    """
    from spacetorch.models.checkpoints import CheckpointError, read_checkpoint
    from spacetorch.models.registry import create_model, model_info

    if kind not in KINDS:
        raise ValueError(f"unknown published layout {kind!r}; known: {', '.join(KINDS)}")
    checkpoint = read_checkpoint(path, trusted=trusted)
    state: Any = next((checkpoint[k] for k in ("state_dict", "model") if isinstance(checkpoint.get(k), Mapping)), checkpoint)
    weights = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any(key.startswith(_ENCODER_LAYER) for key in weights):  # a torchvision ViT
        weights = timm_vit_keys(weights)
    info = model_info(arch)
    classifier = f"{info.classifier}." if info.classifier else None
    trunk = {k: v for k, v in weights.items() if not (classifier and k.startswith(classifier))}
    model = create_model(arch, headless=True)
    if kind == "toponets":
        add_blurpool(model)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(trunk)), sorted(set(trunk) - set(expected))
    shapes = sorted(k for k in set(expected) & set(trunk) if expected[k].shape != trunk[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint {path} is not a {kind} {arch}: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"other shapes {shapes[:3]}"
        )
    model.load_state_dict(trunk)
    return model.eval()
