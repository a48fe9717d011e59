"""capture_outputs: per-call state, non-tensor outputs, repeated modules, early stop."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spacetorch.models.capture import capture_outputs, eval_mode, output_dims


class _Net(nn.Module):
    """``block`` runs ``steps`` times (as a block does once per computation step)."""

    def __init__(self, steps: int = 1, out: str = "tensor") -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = _Block(out)
        self.head = nn.Linear(4, 2)
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for step in range(self.steps):
            y = self.block(x + step)
            x = y if isinstance(y, torch.Tensor) else (y[0] if isinstance(y, tuple) else y["features"])
        return self.head(x.mean((2, 3)))


class _Block(nn.Module):
    def __init__(self, out: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.out = out

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        y = self.conv(x)
        if self.out == "tuple":
            return y, "aux"
        if self.out == "dict":
            return {"features": y, "aux": y.sum()}
        return y


def test_captures_the_named_outputs_and_nothing_outside_a_capture() -> None:
    net = _Net()
    x = torch.randn(2, 3, 5, 5)
    with capture_outputs(net, ["stem", "block"]) as captured:
        net(x)
    torch.testing.assert_close(captured["stem"], net.stem(x))
    torch.testing.assert_close(captured["block"], net.block.conv(net.stem(x)))
    assert list(captured) == ["stem", "block"] and captured.calls == {"stem": 1, "block": 1}
    net(x)  # outside a capture, the taps record nothing
    assert captured.calls == {"stem": 1, "block": 1}
    with capture_outputs(net, ["stem"]):
        pass
    assert len(net.stem._forward_hooks) == 1, "one tap per module, however many captures"


@pytest.mark.parametrize("out", ["tuple", "dict"])
def test_tuple_and_dict_outputs_yield_their_first_element(out: str) -> None:
    net = _Net(out=out)
    x = torch.randn(2, 3, 5, 5)
    with capture_outputs(net, ["block"]) as captured:
        net(x)
    torch.testing.assert_close(captured["block"], net.block.conv(net.stem(x)))


def test_a_module_that_runs_several_times_yields_its_last_call() -> None:
    net = _Net(steps=3)
    x = torch.randn(2, 3, 5, 5)
    with capture_outputs(net, ["block"]) as captured:
        net(x)
    first = net.block.conv(net.stem(x))
    second = net.block.conv(first + 1)
    torch.testing.assert_close(captured["block"], net.block.conv(second + 2))
    assert captured.calls["block"] == 3


def test_stop_after_ends_the_forward_pass() -> None:
    net = _Net()
    ran = []
    net.head.register_forward_hook(lambda *a: ran.append("head"))
    with capture_outputs(net, ["stem"], stop_after="block") as captured:
        net(torch.randn(1, 3, 5, 5))
        ran.append("after")  # not reached: the block ends at the stop
    assert ran == [] and set(captured) == {"stem", "block"}


def test_nested_captures_each_get_their_own_layers() -> None:
    net = _Net()
    with capture_outputs(net, ["stem"]) as outer:
        with capture_outputs(net, ["block"]) as inner:
            net(torch.randn(1, 3, 5, 5))
    assert list(outer) == ["stem"] and list(inner) == ["block"]


def test_deep_copies_capture_their_own_modules() -> None:
    net = _Net()
    clone = copy.deepcopy(net)
    with torch.no_grad():
        clone.stem.weight.zero_()
        clone.stem.bias.zero_()
    with capture_outputs(net, ["stem"]) as a:
        net(torch.randn(1, 3, 5, 5))
    with capture_outputs(clone, ["stem"]) as b:
        clone(torch.randn(1, 3, 5, 5))
    assert a["stem"].abs().sum() > 0 and b["stem"].abs().sum() == 0


def test_unknown_and_missing_layers_are_named() -> None:
    net = _Net()
    with pytest.raises(ValueError, match=r"_Net has no submodule\(s\) \['layer9'\]; its submodules include \['stem'"):
        with capture_outputs(net, ["layer9"]):
            pass
    with capture_outputs(net, ["head"]) as captured:
        pass
    with pytest.raises(KeyError, match="layer 'head' did not run"):
        captured["head"]
    with pytest.raises(KeyError, match=r"layer 'stem' is not captured; captured layers: \['head'\]"):
        captured["stem"]


def test_output_dims_restore_each_modules_own_mode() -> None:
    net = _Net().train()
    net.block.eval()  # e.g. a frozen part
    assert output_dims(net, ["stem", "block"], input_size=(5, 7)) == {"stem": (4, 5, 7), "block": (4, 5, 7)}
    assert net.training and net.stem.training and not net.block.training
    with eval_mode(net):
        assert not any(m.training for m in net.modules())
    assert net.training and not net.block.training


def test_output_dims_on_the_meta_device() -> None:
    with torch.device("meta"):
        net = _Net()
    assert output_dims(net, ["block"], input_size=9) == {"block": (4, 9, 9)}
