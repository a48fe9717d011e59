"""The V1 models' authors' checkpoints (gpogoncheff/explaining_v1): the components spacetorch
computes as they do load and give the same model; the others are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from spacetorch.models import create_model
from spacetorch.models.checkpoints import CheckpointError, load_classifier
from spacetorch.models.families.v1 import LocallyConnected2d, TunedDivisiveNorm


def _their_channel_distances(n: int) -> torch.Tensor:
    """Row i: the channel distances rolled by i, written as their description gives them."""
    index = torch.arange(n, dtype=torch.float32) + 1
    base = (index - index[n // 2]).abs()
    return torch.stack([torch.roll(base, i) for i in range(n)])


def _their_tuned_norm(x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    n = x.shape[1]
    s = sigmas.clamp(min=0.5)
    g = torch.exp(-_their_channel_distances(n) ** 2 / (2 * s**2)) / (2.5066 * s)
    g = g / g.sum(0)
    return x / (F.conv2d(x, g.view(n, n, 1, 1)) + 1)


def _their_local(x: torch.Tensor, weight: torch.Tensor, padding: int, k: int) -> torch.Tensor:
    """weight (1, out, in, h, w, k*k): the broadcast formulation, unfolded by rows then columns."""
    x = F.pad(x, (padding,) * 4).unfold(2, k, 1).unfold(3, k, 1)
    x = x.contiguous().view(*x.shape[:-2], -1)
    return (x.unsqueeze(1) * weight).sum([2, -1])


def test_their_tuned_normalisation_is_spacetorchs() -> None:
    torch.manual_seed(0)
    norm = TunedDivisiveNorm(32)
    torch.nn.init.uniform_(norm.sigma, 0.2, 8.0)
    x = torch.rand(2, 32, 5, 5)
    torch.testing.assert_close(norm(x), _their_tuned_norm(x, norm.sigma.detach()))


def test_their_locally_connected_layer_is_spacetorchs_with_one_leading_axis() -> None:
    torch.manual_seed(0)
    local = LocallyConnected2d(4, 3, 6, kernel_size=3, padding=1, bias=False)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(local(x), _their_local(x, local.weight[None], 1, 3))


def _in_their_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key.endswith("post_norm.sigma"):
            block = key.removesuffix(".post_norm.sigma")
            out[f"{block}.dn.sigmas"] = value
            out[f"{block}.dn.channel_distances"] = _their_channel_distances(value.shape[0])
        elif value.ndim == 5:  # the locally connected weight, in their composite's place
            out["layer1.2.conv2.weight"] = value[None]
        else:
            out[key] = value
    out["lpp.pooling_masks"] = torch.zeros(4, 32, 32)  # their fixed polar masks, always saved
    out["lpp.pooling_mask_counts"] = torch.ones(4)
    return out


@pytest.mark.parametrize("arch", ["v1_resnet50_g", "v1_resnet50_local_rf", "v1_resnet50_tuned_dn"])
def test_their_checkpoint_gives_the_same_model(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(0)
    original = create_model(arch, num_classes=200).eval()
    for name, p in original.named_parameters():
        if name.endswith("post_norm.sigma"):
            torch.nn.init.uniform_(p, 1.0, 40.0)
    torch.save(_in_their_layout(original.state_dict()), tmp_path / "best_model_acc.pt")
    loaded = load_classifier(tmp_path / "best_model_acc.pt", arch)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), original(x))


@pytest.mark.parametrize(("arch", "extra", "reason"), [
    ("v1_resnet50_d", {"layer1.0.conv2.dog.dog_conv.sigma1": torch.ones(256, 1, 1)}, r"center-surround \(DoG\) weights"),
    ("v1_resnet50_standard_dn", {"layer1.0.dn.A": torch.ones(256, 256, 1, 1)}, "standard divisive normalisation"),
    ("v1_resnet50_b", {}, "polar transform is not spacetorch's"),
])
def test_components_computed_otherwise_are_refused_with_the_reason(tmp_path: Path, arch: str, extra: dict, reason: str) -> None:
    state = _in_their_layout(create_model("v1_resnet50_g", num_classes=10).state_dict())
    torch.save({**state, **extra}, tmp_path / "theirs.pt")
    with pytest.raises(CheckpointError, match=rf"theirs.pt \(the V1 authors' layout\): .*{reason}"):
        load_classifier(tmp_path / "theirs.pt", arch)
