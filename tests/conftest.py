from pathlib import Path

import numpy as np
import pytest
import torch

from spacetorch.models.positions import LayerPositions


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Tests marked gpu skip, saying why, where CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def toy_layer() -> LayerPositions:
    """A (2, 3, 4) layer: 24 units on a 4 x 3 mm grid, 5 neighborhoods of 6 units."""
    rng = np.random.default_rng(0)
    c, h, w = 2, 3, 4
    xs, ys = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    coords = np.tile(np.stack([xs.ravel(), ys.ravel()], 1), (c, 1)) + rng.uniform(-0.1, 0.1, (c * h * w, 2))
    hoods = np.stack([rng.choice(c * h * w, 6, replace=False) for _ in range(5)]).astype(np.int32)
    return LayerPositions(name="layer1.0", dims=(c, h, w), coordinates=coords,
                          neighborhood_indices=hoods, neighborhood_width=2.0)


SMALL_IMAGE_SIZE = 64  # px; layer2.0 of a ResNet-18 is then 128 x 8 x 8


def write_original_layout_checkpoint(model: "torch.nn.Module", path: "Path", heads: "dict | None" = None) -> "Path":
    """A VISSL checkpoint as the original TDANN code wrote it: trunk keys ``base_model.*`` and
    again ``_feature_blocks.*`` (the classifier dropped), plus heads and training state."""
    import torch

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


@pytest.fixture(scope="session")
def small_model_files(tmp_path_factory: pytest.TempPathFactory) -> "tuple[Path, Path]":
    """``(checkpoint, positions directory)`` of a seeded, untrained ResNet-18 for 64 px images."""
    import torch
    import torchvision

    from spacetorch.models.positions import retinotopic_positions

    root = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    checkpoint = write_original_layout_checkpoint(
        torchvision.models.resnet18(weights=None), root / "model_final_checkpoint_phase199.torch"
    )
    positions = root / "resnet18_64px"
    retinotopic_positions("resnet18", n_neighborhoods=400, input_size=SMALL_IMAGE_SIZE).save(positions)
    return checkpoint, positions
