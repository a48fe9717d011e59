import numpy as np
import pytest

from spacetorch.models.positions import LayerPositions


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
