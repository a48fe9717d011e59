"""Small model files for the tests (a name of its own: ``conftest`` is ambiguous across folders)."""

from collections.abc import Callable
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


def train_classifier(model: "torch.nn.Module", images: "torch.Tensor", labels: "torch.Tensor", batch: int) -> None:
    """Cross-entropy with SGD (Nesterov momentum 0.9, lr 0.05, as the Top-Down Networks recipe
    starts), one step per ``batch`` images in order, then BatchNorm statistics estimated anew over
    the same images: after a few dozen steps the running averages lag behind the weights."""
    import torch.nn.functional as F

    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    model.train()
    for start in range(0, len(images) - batch + 1, batch):
        loss = F.cross_entropy(model(images[start : start + batch]), labels[start : start + batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    with torch.no_grad():
        for start in range(0, len(images), 64):
            model(images[start : start + 64])
    model.eval()


def exit_code(main: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """A command's exit status: what its ``main`` returns, or the code of the ``SystemExit``
    it raises (argparse and :func:`spacetorch.cli._arguments.fail` exit that way)."""
    try:
        return int(main(argv) or 0)
    except SystemExit as err:
        return int(err.code or 0)
