from pathlib import Path

import numpy as np
import pytest
import torch

from spacetorch.models.positions import LayerPositions

from model_helpers import SMALL_IMAGE_SIZE, write_original_layout_checkpoint


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


@pytest.fixture(scope="session")
def small_model_files(tmp_path_factory: pytest.TempPathFactory) -> "tuple[Path, Path]":
    """``(checkpoint, positions directory)`` of a seeded, untrained ResNet-18 for 64 px images."""
    import torch
    import torchvision

    from spacetorch.models import retinotopic_positions

    root = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    checkpoint = write_original_layout_checkpoint(
        torchvision.models.resnet18(weights=None), root / "model_final_checkpoint_phase199.torch"
    )
    positions = root / "resnet18_64px"
    retinotopic_positions("resnet18", n_neighborhoods=400, input_size=SMALL_IMAGE_SIZE).save(positions)
    return checkpoint, positions
