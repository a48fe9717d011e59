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
