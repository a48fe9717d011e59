"""Small model files for the tests (a name of its own: ``conftest`` is ambiguous across folders)."""

from pathlib import Path

import torch

SMALL_IMAGE_SIZE = 64  # px; layer2.0 of a ResNet-18 is then 128 x 8 x 8


def write_original_layout_checkpoint(model: "torch.nn.Module", path: "Path", heads: "dict | None" = None) -> "Path":
    """A VISSL checkpoint as the original TDANN code wrote it: trunk keys ``base_model.*`` and
    again ``_feature_blocks.*`` (the classifier dropped), plus heads and training state."""
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    trunk = {f"base_model.{k}": v for k, v in weights.items()}
    trunk.update({f"_feature_blocks.{k}": v.clone() for k, v in weights.items()})
    checkpoint = {
        "phase_idx": 199,
        "iteration": 1000,
        "classy_state_dict": {
            "train": True,
            "base_model": {"model": {"trunk": trunk, "heads": heads or {}}, "meta": {}},
            "optimizer": {"optim": {"state": {}, "param_groups": []}},
        },
    }
    torch.save(checkpoint, path)
    return path
