"""Loading VISSL checkpoints: layouts, safety, errors."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest
import torch
import torchvision

from spacetorch.models.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    load_linear_head,
    load_trunk,
    read_checkpoint,
)

from model_helpers import write_original_layout_checkpoint


def _reference(path: Path, arch: str = "resnet18") -> torch.nn.Module:
    """A torchvision ResNet given the checkpoint's weights by hand, independently of load_trunk."""
    trunk = torch.load(path, weights_only=True)["classy_state_dict"]["base_model"]["model"]["trunk"]
    model = getattr(torchvision.models, arch)(weights=None)
    model.fc = torch.nn.Identity()
    model.load_state_dict({k[len("base_model."):]: v for k, v in trunk.items() if k.startswith("base_model.")})
    return model.eval()


def test_original_layout_loads_with_torchvision_outputs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # non-trivial BN statistics, so that eval-mode outputs depend on them
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    path = write_original_layout_checkpoint(source, tmp_path / "model_final_checkpoint_phase199.torch")
    trunk = load_trunk(path)
    assert not trunk.training and isinstance(trunk.fc, torch.nn.Identity)
    x = torch.randn(2, 3, 64, 64)
    source.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(trunk(x), source.eval()(x))
        torch.testing.assert_close(trunk(x), _reference(path)(x))


def test_fc_weights_in_the_trunk_are_dropped(tmp_path: Path) -> None:
    model = torchvision.models.resnet18(weights=None)
    path = write_original_layout_checkpoint(model, tmp_path / "c.torch")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["classy_state_dict"]["base_model"]["model"]["trunk"]["base_model.fc.weight"] = torch.zeros(1000, 512)
    torch.save(checkpoint, path)
    assert isinstance(load_trunk(path).fc, torch.nn.Identity)


def test_trunk_of_another_depth_names_the_depth_it_fits(tmp_path: Path) -> None:
    path = write_original_layout_checkpoint(torchvision.models.resnet34(weights=None), tmp_path / "r34.torch")
    with pytest.raises(CheckpointError, match=r"not a resnet18: .*unexpected \(e\.g\. \['layer1\.2.*fit arch='resnet34'"):
        load_trunk(path, "resnet18")
    assert isinstance(load_trunk(path, "resnet34"), torchvision.models.ResNet)


def test_not_a_vissl_checkpoint_says_where_the_weights_were_expected(tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"not a VISSL checkpoint: expected ckpt\['classy_state_dict'\].*found keys \['bn1"):
        load_trunk(path)


def test_trunk_without_base_model_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.torch"
    torch.save({"classy_state_dict": {"base_model": {"model": {"trunk": {"conv.weight": torch.zeros(1)}, "heads": {}}}}}, path)
    with pytest.raises(CheckpointError, match=r"no 'base_model\.\*' weights \(found e\.g\. \['conv\.weight'\]\)"):
        load_trunk(path)


class _Exploit:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("echo pwned > pwned.txt",))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.torch"
    torch.save({"classy_state_dict": _Exploit()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.torch holds objects other than tensors.*trusted=True"):
        load_trunk(path)
    assert not (tmp_path / "pwned.txt").exists()
    with open(tmp_path / "legacy.pkl", "wb") as f:  # a bare pickle, not torch's zip format
        pickle.dump(_Exploit(), f, protocol=2)
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(tmp_path / "legacy.pkl")
    assert not (tmp_path / "pwned.txt").exists()


def test_trusted_opt_in_reads_other_objects(tmp_path: Path) -> None:
    path = tmp_path / "c.torch"
    torch.save({"note": Path("x")}, path)  # a pathlib object: refused by the safe loader
    with pytest.raises(UnsafeCheckpointError):
        read_checkpoint(path)
    assert read_checkpoint(path, trusted=True)["note"] == Path("x")


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.torch does not exist"):
        load_trunk(tmp_path / "nowhere.torch")
    (tmp_path / "junk.torch").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.torch"):
        load_trunk(tmp_path / "junk.torch")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", r"is empty \(0 bytes\)"),
        ("half", r"is truncated or corrupt"),
        (b"epoch,loss\n1,0.5\n", r"is not a torch checkpoint: a torch.save file starts with a zip or pickle header, this one with b'epoc'"),
    ],
    ids=["empty", "truncated", "text"],
)
def test_damaged_checkpoints_are_named(tmp_path: Path, content: bytes | str, message: str) -> None:
    path = tmp_path / "model_phase1.torch"
    if content == "half":
        torch.save({"classy_state_dict": {}}, path)
        content = path.read_bytes()[:-100]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"{path}.* {message}"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match=message):
        load_trunk(path)


def test_a_directory_is_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save({}, tmp_path / "model_final_checkpoint_phase199.torch")
    with pytest.raises(CheckpointError, match=rf"{tmp_path} is a directory; pass a checkpoint file .*model_final_checkpoint_phase199.torch"):
        load_trunk(tmp_path)


def test_linear_head_loads_and_other_heads_are_described(tmp_path: Path) -> None:
    weight, bias = torch.randn(10, 512), torch.randn(10)
    path = write_original_layout_checkpoint(
        torchvision.models.resnet18(weights=None), tmp_path / "eval.torch", heads={"0.clf.0.weight": weight, "0.clf.0.bias": bias}
    )
    head = load_linear_head(path)
    x = torch.randn(3, 512)
    torch.testing.assert_close(head(x), x @ weight.T + bias)
    two_layers = {"0.0.clf.0.weight": weight, "0.0.clf.0.bias": bias, "0.1.clf.0.weight": weight, "0.1.clf.0.bias": bias}
    path = write_original_layout_checkpoint(torchvision.models.resnet18(weights=None), tmp_path / "simclr.torch", heads=two_layers)
    with pytest.raises(CheckpointError, match=r"expected one linear head.*found head keys \['0\.0\.clf\.0\.bias'"):
        load_linear_head(path)


def test_a_classifier_checkpoint_of_another_model_is_summarised_not_dumped(tmp_path) -> None:
    """The message counts the missing, unexpected and reshaped keys with a few examples, instead
    of listing every key (several kilobytes on one line)."""
    import torchvision

    from spacetorch.models.checkpoints import CheckpointError, load_classifier

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError) as raised:
        load_classifier(path, "resnet50")
    message = str(raised.value)
    assert message.startswith(f"checkpoint {path}: the weights are not a resnet50 with {{}}: ")
    assert re.search(r"\d+ missing \(e\.g\. \[", message) and "of another shape (e.g." in message
    assert len(message) < 700 and "\n" not in message


def test_a_family_registers_its_own_weight_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout registered beside a family's models is used by the generic loader, which names
    no family: here weights saved under a 'backbone.' prefix with the classifier as 'classifier.*'."""
    from spacetorch.models import weight_layouts
    from spacetorch.models.checkpoints import load_classifier

    monkeypatch.setattr(weight_layouts, "_LAYOUTS", list(weight_layouts.weight_layouts()))
    weight_layouts.register_weight_layout(weight_layouts.WeightLayout(
        "a lab's own layout", lambda state: any(k.startswith("backbone.") for k in state),
        rename_keys=lambda state: {k.removeprefix("backbone.").replace("classifier.", "fc."): v for k, v in state.items()}))
    reference = torchvision.models.resnet18(num_classes=3).eval()
    theirs = {f"backbone.{k.replace('fc.', 'classifier.')}": v for k, v in reference.state_dict().items()}
    torch.save(theirs, tmp_path / "theirs.pth")
    model = load_classifier(tmp_path / "theirs.pth", "resnet18")
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model(x), reference(x))
    with pytest.raises(ValueError, match="registered already"):
        weight_layouts.register_weight_layout(weight_layouts.WeightLayout("a lab's own layout", lambda state: False))
