"""Top-down attention: the TDAM module, TD blocks, TD ResNets and the TD ConvNeXt.

Parameter and multiply-accumulate counts are checked against the numbers reported for the
original models (Jaiswal et al., ECCV 2022)."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

import spacetorch  # noqa: F401  (registers the families with timm)
from spacetorch.models import create_model
from spacetorch.models.families.tdam.blocks import TDAM, TECHNIQUES, TDBlock
from spacetorch.models.families.tdam.resnet import TDResNet, default_td_blocks

X = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _params(model: nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize("technique", TECHNIQUES)
@pytest.mark.parametrize("pooling", ["avg", "max", ("avg", "max")])
def test_tdam_shapes(technique: str, pooling: str | tuple[str, ...]) -> None:
    tdam = TDAM(bottom_channels=24, top_channels=64, technique=technique, pooling=pooling)
    bottom, top = torch.randn(3, 24, 10, 10), torch.randn(3, 64, 5, 5)
    assert tdam.searchlight(bottom, top).shape == (3, 24)
    assert tdam(bottom, top).shape == bottom.shape
    # r = 64 // 16 = 4 hidden channels; the concat technique projects 2r to the bottom
    assert tdam.top_branch[0].out_channels == 4
    assert tdam.project.in_channels == (8 if technique == "joint_top_bottom_concat_attention" else 4)


def test_tdam_modulation_is_channel_then_spatial() -> None:
    """Against the formula written out: X' = Xb sigmoid(S); A = sum_c S_c X'_c; out = X' sigmoid(A)."""
    torch.manual_seed(0)
    tdam = TDAM(8, 32, "joint_top_bottom_bilinear_attention", pooling=("avg", "max"), pool_combine="mean")
    bottom, top = torch.randn(2, 8, 4, 4), torch.randn(2, 32, 2, 2)
    pooled_top = (top.mean((2, 3)) + top.amax((2, 3))) / 2
    pooled_bottom = (bottom.mean((2, 3)) + bottom.amax((2, 3))) / 2
    w_top = tdam.top_branch[0].weight.flatten(1)
    w_bottom = tdam.bottom_branch[0].weight.flatten(1)  # type: ignore[index]
    hidden = torch.relu(pooled_top @ w_top.T) + torch.relu(pooled_bottom @ w_bottom.T)
    s = hidden @ tdam.project.weight.flatten(1).T
    channel = bottom * torch.sigmoid(s)[:, :, None, None]
    expected = channel * torch.sigmoid(torch.einsum("bc,bchw->bhw", s, channel))[:, None]
    torch.testing.assert_close(tdam(bottom, top), expected)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_one_time_step_computes_the_plain_resnet(arch: str) -> None:
    torch.manual_seed(0)
    plain = getattr(torchvision.models, arch)().eval()
    td = create_model(f"td{arch}", time_steps=1, mdist=2).eval()
    td.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(td(X), plain(X), rtol=0, atol=0)


@pytest.mark.parametrize("arch, mdist", [("resnet18", 2), ("resnet50", 3), ("resnet50", 0)])
def test_plain_weights_load_with_only_td_weights_missing(arch: str, mdist: int) -> None:
    td = create_model(f"td{arch}", time_steps=3, mdist=mdist)
    result = td.load_state_dict(getattr(torchvision.models, arch)().state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(".tdam." in k or ".step_norms." in k for k in result.missing_keys)
    # one BatchNorm set for each step after the first, over the convolutions the feedback reruns
    step_norms = {k.split(".step_norms.")[1].split(".weight")[0] for k in result.missing_keys if k.endswith("weight") and ".step_norms." in k}
    expected = {"resnet18": {"0.bn1", "0.bn2", "1.bn1", "1.bn2"}, "resnet50": {"0.bn3", "0.bn2", "0.bn1", "1.bn3", "1.bn2", "1.bn1"}}
    assert step_norms == (set() if mdist == 0 else expected[arch])


def test_per_step_norm_can_be_switched_off() -> None:
    td = create_model("tdresnet50", time_steps=3, mdist=2, per_step_norm=False)
    assert not any(".step_norms." in k for k in td.state_dict())


def test_output_over_t_returns_every_step_and_leaves_the_model_as_it_was() -> None:
    torch.manual_seed(0)
    model = create_model("tdresnet18", time_steps=3, mdist=1).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        steps = model(X, output_over_t=True)
        last = model(X)
    assert len(steps) == 3 and all(s.shape == (2, 1000) for s in steps)
    torch.testing.assert_close(steps[-1], last)
    # step 1 is the network without feedback: the same weights with T = 1
    one = create_model("tdresnet18", time_steps=1, mdist=1).eval()
    one.load_state_dict(model.state_dict(), strict=False)
    torch.testing.assert_close(steps[0], one(X))
    assert not torch.allclose(steps[0], steps[1])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(block.steps is None for block in model.td_blocks())


def test_output_over_t_also_works_as_the_attribute_the_authors_code_sets() -> None:
    torch.manual_seed(0)
    model = create_model("tdresnet18", time_steps=2, mdist=1).eval()
    with torch.no_grad():
        by_argument = model(X, output_over_t=True)
        model.output_over_t = True
        by_attribute = model(X)
        last_only = model(X, output_over_t=False)  # the argument wins over the attribute
    assert isinstance(by_attribute, list) and len(by_attribute) == 2
    for a, b in zip(by_argument, by_attribute, strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(last_only, by_attribute[-1])


def test_default_td_blocks() -> None:
    assert default_td_blocks("resnet50") == {3: [0, 1, 2, 3, 4, 5], 4: [0, 1, 2]}
    assert default_td_blocks("resnet18") == {3: [0, 1], 4: [0, 1]}
    assert default_td_blocks("resnet101")[3] == [0, 1, 2, 8, 13, 18, 22]
    model = TDResNet("resnet34", apply_td_at_layers_list=[2, 4], apply_td_at_blocks_for_layers=[[1], [0, 2]])
    assert [n for n, m in model.named_modules() if isinstance(m, TDBlock)] == ["layer2.1", "layer4.0", "layer4.2"]


def test_mdist_three_works_at_every_depth() -> None:
    model = create_model("tdresnet50", mdist=3, apply_td_at_layers_list=[1, 2, 3, 4])
    model(X).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"spotlight_gen_technique": "top_only"}, r"spotlight_gen_technique='top_only' is not valid; choose one of 'top_attention_only'"),
        ({"mdist": 3, "arch": "resnet18"}, r"mdist \(for the BasicBlock layer3.0\)=3 is not valid; choose one of 0, 1, 2"),
        ({"mdist": 4}, r"mdist \(for the Bottleneck layer3.0\)=4 is not valid; choose one of 0, 1, 2, 3"),
        ({"time_steps": 0}, r"time_steps=0 is not valid; it must be an integer >= 1"),
        ({"apply_td_at_layers_list": [5]}, r"apply_td_at_layers_list: resnet50 has no layer 5; valid layers are 1 to 4"),
        ({"apply_td_at_blocks_for_layers": [[0], [3]]}, r"layer4 of resnet50 has blocks 0 to 2, not \[3\]"),
        ({"apply_td_at_blocks_for_layers": [[0]]}, r"has 1 list\(s\) for 2 layer\(s\)"),
        ({"pooling": "median"}, r"pooling='median' is not valid; choose one of 'avg', 'max'"),
        ({"arch": "resnet152"}, r"arch='resnet152' is not valid; choose one of 'resnet18'"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_choices(kwargs: dict[str, object], message: str) -> None:
    arch = kwargs.pop("arch", "resnet50")
    with pytest.raises(ValueError, match=message):
        TDResNet(str(arch), **kwargs)  # type: ignore[arg-type]


def test_timm_create_model_builds_the_td_models() -> None:
    model = timm.create_model("tdresnet50", time_steps=2, mdist=1, spotlight_gen_technique="joint_top_bottom_concat_attention")
    assert isinstance(model, TDResNet) and model.time_steps == 2
    assert {"tdresnet18", "tdresnet34", "tdresnet50", "tdresnet101", "tdconvnext_tiny"} <= set(timm.list_models("td*"))
    with pytest.raises(ValueError, match="no downloadable weights"):
        timm.create_model("tdresnet18", pretrained=True)


def test_parameter_counts_match_the_reported_ones() -> None:
    """ResNet-50 25.56M; TDAM joint (t2, m1) 27.65M; TDAM top (t2, m1) 27.06M, within 1%."""
    with torch.device("meta"):
        counts = {
            "resnet50": _params(torchvision.models.resnet50()),
            "joint": _params(create_model("tdresnet50", time_steps=2, mdist=1)),
            "top": _params(create_model("tdresnet50", time_steps=2, mdist=1, spotlight_gen_technique="top_attention_only")),
        }
    for name, reported in {"resnet50": 25.56, "joint": 27.65, "top": 27.06}.items():
        assert counts[name] == pytest.approx(reported, rel=0.01), name


def test_multiply_accumulates_match_the_reported_ones() -> None:
    """fvcore's count at 224 px: ResNet-50 about 4.1 G, TD joint (t2, m1) about 4.59 G, within 3%."""
    from fvcore.nn import FlopCountAnalysis  # a dependency of spacetorch (setup.py)

    image = torch.zeros(1, 3, 224, 224)

    def gmacs(model: nn.Module) -> float:
        counter = FlopCountAnalysis(model.eval(), image)
        counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return float(counter.total()) / 1e9

    assert gmacs(torchvision.models.resnet50()) == pytest.approx(4.1, rel=0.03)
    assert gmacs(create_model("tdresnet50", time_steps=2, mdist=1)) == pytest.approx(4.59, rel=0.03)


def test_td_convnext_one_step_is_timms_convnext_and_weights_load() -> None:
    torch.manual_seed(0)
    plain = timm.create_model("convnext_tiny", num_classes=10).eval()
    td = create_model("tdconvnext_tiny", time_steps=1, num_classes=10).eval()
    result = td.load_state_dict(plain.state_dict(), strict=False)
    assert result.unexpected_keys == [] and all(".tdam." in k for k in result.missing_keys)
    torch.testing.assert_close(td(X), plain(X), rtol=0, atol=0)
    two = create_model("tdconvnext_tiny", time_steps=2, num_classes=10).eval()
    two.load_state_dict(plain.state_dict(), strict=False)
    assert not torch.allclose(two(X), plain(X))
    with pytest.raises(ValueError, match=r"mdist \(for the ConvNeXt block stages.2.blocks.0\)=3 is not valid"):
        create_model("tdconvnext_tiny", mdist=3)
