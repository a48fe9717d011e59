"""Published models of other methods load into the analyses: TopoNets' blur-pooled ResNets and
plain torchvision state dicts, built here in those layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from spacetorch.methods.published import BlurPoolConv2d, add_blurpool, load_published
from spacetorch.models import create_model
from spacetorch.models.checkpoints import CheckpointError


def test_the_blur_is_the_binomial_kernel() -> None:
    conv = nn.Conv2d(1, 1, 1, bias=False)
    nn.init.ones_(conv.weight)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 16.0
    out = BlurPoolConv2d(conv)(x)[0, 0, 1:4, 1:4]
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]))


def test_a_toponets_state_dict_gives_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = add_blurpool(torchvision.models.resnet18(num_classes=10)).eval()
    state = original.state_dict()
    assert "layer2.0.conv1.conv.weight" in state and "layer3.0.downsample.0.blur_filter" in state
    assert "conv1.weight" in state  # the stem's 3-channel conv keeps its name
    torch.save(state, tmp_path / "resnet18_tau_10.0.pt")
    trunk = load_published(tmp_path / "resnet18_tau_10.0.pt", "resnet18", "toponets")
    original.fc = nn.Identity()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), original(x))


def test_a_torchvision_state_dict_gives_the_same_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    original = torchvision.models.resnet18(num_classes=7).eval()
    torch.save({"state_dict": {f"module.{k}": v for k, v in original.state_dict().items()}}, tmp_path / "plain.pth")
    trunk = load_published(tmp_path / "plain.pth", "resnet18", "torchvision")
    original.fc = nn.Identity()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), original(x))


def test_a_state_dict_of_another_layout_is_refused_naming_keys(tmp_path: Path) -> None:
    torch.save(add_blurpool(create_model("resnet18")).state_dict(), tmp_path / "topo.pt")
    with pytest.raises(CheckpointError, match=r"is not a torchvision resnet18: missing \['layer2.0.conv1.weight'.*unexpected \['layer2.0.conv1.blur_filter'"):
        load_published(tmp_path / "topo.pt", "resnet18", "torchvision")
    with pytest.raises(ValueError, match="unknown published layout 'keras'"):
        load_published(tmp_path / "topo.pt", "resnet18", "keras")


def test_toponets_vit_b_32_in_torchvisions_layout_computes_as_torchvision_does(tmp_path: Path) -> None:
    """TopoNets' ViT-B/32 is torchvision's vit_b_32 under 'model' (beside the training's other
    state): loaded into the registered timm ViT, its class token and every block's patch tokens
    are torchvision's own, computed by torchvision."""
    import torchvision

    from spacetorch.methods.published import load_published
    from spacetorch.models.capture import capture_outputs

    torch.manual_seed(0)
    reference = torchvision.models.vit_b_32(weights=None).eval()
    with torch.no_grad():  # away from the default init, so a wrong mapping cannot agree by chance
        for parameter in reference.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    torch.save({"model": reference.state_dict(), "epoch": 89, "scaler": {"scale": 65536.0}}, tmp_path / "vit_b_32_tau_10.0.pt")
    model = load_published(tmp_path / "vit_b_32_tau_10.0.pt", "vit_base_patch32_224", "toponets")
    x = torch.rand(2, 3, 224, 224)
    blocks: dict[int, torch.Tensor] = {}
    for i in (0, 11):
        reference.encoder.layers[i].register_forward_hook(lambda module, inputs, output, i=i: blocks.setdefault(i, output))
    reference.heads = torch.nn.Identity()
    with torch.no_grad(), capture_outputs(model, ["blocks.0", "blocks.11"]) as captured:
        ours = model(x)
        theirs = reference(x)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    for i in (0, 11):
        patches = blocks[i][:, 1:, :].transpose(1, 2).reshape(2, 768, 7, 7)
        torch.testing.assert_close(captured[f"blocks.{i}"], patches, atol=1e-4, rtol=1e-4)
