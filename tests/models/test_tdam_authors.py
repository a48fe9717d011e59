"""The TDAM authors' checkpoints load into spacetorch's TD models: a state dict with their key
names and shapes (built here from their module layout) gives the same outputs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from spacetorch.models import create_model
from spacetorch.models.checkpoints import CheckpointError, load_classifier


def _as_the_authors_name_it(state: dict[str, torch.Tensor], top_only: bool) -> dict[str, torch.Tensor]:
    """spacetorch's keys written the TDAM authors' way (their RA_block and bn<k>_<t> names)."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"\.tdam\.top_branch\.0\.", ".RA_block.Ug_mlp.0." if top_only else ".RA_block.Ug_top_mlp.0.", key)
        key = key.replace(".tdam.bottom_branch.0.", ".RA_block.Ug_bottom_mlp.0.")
        key = key.replace(".tdam.project.", ".RA_block.Ug_mlp.2." if top_only else ".RA_block.Ug_mlp.0.")
        key = re.sub(r"\.step_norms\.(\d+)\.bn(\d)\.", lambda m: f".bn{m[2]}_{int(m[1]) + 1}.", key)
        out[f"module.{key}"] = value
    return out


@pytest.mark.parametrize(("arch", "kwargs"), [
    ("tdresnet18", {"time_steps": 3, "mdist": 2}),
    ("tdresnet50", {"time_steps": 2, "mdist": 1}),
    ("tdresnet50", {"time_steps": 2, "mdist": 1, "spotlight_gen_technique": "top_attention_only"}),
])
def test_their_checkpoint_gives_the_same_model(tmp_path: Path, arch: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    original = create_model(arch, num_classes=5, **kwargs).eval()
    for module in original.modules():  # non-trivial norm statistics, so a misplaced norm shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    authors = _as_the_authors_name_it(original.state_dict(), "top_attention_only" in kwargs.values())
    assert any(".RA_block." in k for k in authors) and not any(".tdam." in k or "step_norms" in k for k in authors)
    torch.save({"state_dict": authors, "epoch": 150}, tmp_path / "model_best.pth.tar")
    loaded = load_classifier(tmp_path / "model_best.pth.tar", arch, model_kwargs=kwargs)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))


def test_a_file_that_does_not_fit_names_the_key(tmp_path: Path) -> None:
    original = create_model("tdresnet18", num_classes=5, time_steps=2, mdist=1)
    authors = _as_the_authors_name_it(original.state_dict(), False)
    authors["module.layer3.0.RA_block.Ug_extra.0.weight"] = torch.zeros(1)
    torch.save({"state_dict": authors}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"unexpected \(e.g. \['layer3.0.RA_block.Ug_extra.0.weight'\]\)"):
        load_classifier(tmp_path / "bad.pth", "tdresnet18", model_kwargs={"time_steps": 2, "mdist": 1})


def _in_the_official_convnext_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm's ConvNeXt keys written the way the official ConvNeXt code (and the TDAM authors' TD
    ConvNeXt) names them, with their RA_block names."""
    out = {}
    for key, value in _as_the_authors_name_it(state, top_only=False).items():
        key = key.removeprefix("module.")
        key = key.replace("stem.", "downsample_layers.0.")
        key = re.sub(r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1.", key)
        key = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2.", key)
        key = key.replace("conv_dw", "dwconv").replace("mlp.fc", "pwconv")
        key = key.replace("head.fc.", "head.").replace("head.norm.", "norm.")
        out[key] = value
    return out


SMALL_CONVNEXT = {"depths": (1, 1, 2, 1), "dims": (16, 32, 64, 128), "time_steps": 2, "mdist": 1}


def test_their_td_convnext_checkpoint_gives_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = create_model("tdconvnext_tiny", num_classes=5, **SMALL_CONVNEXT).eval()
    for name, p in original.named_parameters():  # layer scales of 1e-6 would hide a misplaced block
        if name.endswith("gamma"):
            torch.nn.init.uniform_(p, 0.5, 1.5)
    official = _in_the_official_convnext_layout(original.state_dict())
    assert "downsample_layers.0.0.weight" in official and "stages.2.1.RA_block.Ug_top_mlp.0.weight" in official
    assert "stages.3.0.pwconv1.weight" in official and "head.weight" in official and "norm.weight" in official
    torch.save({"model": official}, tmp_path / "checkpoint-best.pth")
    loaded = load_classifier(tmp_path / "checkpoint-best.pth", "tdconvnext_tiny", model_kwargs=SMALL_CONVNEXT)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))


def test_an_official_convnext_checkpoint_for_another_arch_is_refused(tmp_path: Path) -> None:
    official = _in_the_official_convnext_layout(create_model("tdconvnext_tiny", num_classes=5, **SMALL_CONVNEXT).state_dict())
    torch.save({"model": official}, tmp_path / "convnext.pth")
    with pytest.raises(CheckpointError, match=r"\(the official ConvNeXt layout\): it holds a ConvNeXt, and the model \(TDResNet\) is not a ConvNeXt"):
        load_classifier(tmp_path / "convnext.pth", "tdresnet18")


def test_a_td_convnext_block_computes_as_the_authors_describe_it() -> None:
    """mdist 1: the bottom is the MLP's hidden activation GELU(pwconv1(LN(dwconv(x)))); each step's
    top is pwconv2(bottom); between steps the TDAM modulates the bottom with the top; the block
    returns x + gamma * top.  Written out here step by step, independently of the block's code."""
    from torch.nn import functional as F

    torch.manual_seed(1)
    model = create_model("tdconvnext_tiny", num_classes=5, **SMALL_CONVNEXT).eval()
    block = model.stages[3].blocks[0]
    torch.nn.init.uniform_(block.gamma, 0.5, 1.5)
    x = torch.randn(2, 128, 4, 4)
    with torch.no_grad():
        y = block.conv_dw(x).permute(0, 2, 3, 1)
        y = F.layer_norm(y, (128,), block.norm.weight, block.norm.bias, block.norm.eps)
        bottom = F.gelu(F.linear(y, block.mlp.fc1.weight, block.mlp.fc1.bias))
        top = F.linear(bottom, block.mlp.fc2.weight, block.mlp.fc2.bias)
        bottom = block.tdam(bottom.permute(0, 3, 1, 2), top.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        top = F.linear(bottom, block.mlp.fc2.weight, block.mlp.fc2.bias)
        expected = x + (block.gamma * top).permute(0, 3, 1, 2)
        torch.testing.assert_close(block(x), expected)
