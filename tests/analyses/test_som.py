"""The SOM baselines place nodes with similar tuning near each other (maps smoother than shuffled)."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses import analyze_orientation_map, category_selectivity
from spacetorch.analyses.som import V1SOMSettings, train_v1_som, train_vtc_som
from spacetorch.stimuli import SineGratings


def _neighbour_difference(values: np.ndarray, edge: int) -> float:
    grid = values.reshape(edge, edge)
    return float(np.mean(np.abs(np.diff(grid, axis=0))) + np.mean(np.abs(np.diff(grid, axis=1)))) / 2


def test_the_v1_som_forms_an_orientation_map_smoother_than_shuffled() -> None:
    settings = V1SOMSettings(edge=24, samples=2000, iterations=30_000, sheet=15.0, tissue_size=4.56, seed=1)
    som = train_v1_som(settings)
    assert som.weights.shape == (24, 24, 6) and som.positions.shape == (576, 2)
    assert som.positions.max() < 4.56
    gratings = SineGratings(32, spatial_frequencies=[2.0, 4.0, 8.0], phases=[0.0], colors=["bw", "rc"])
    responses = som.responses(gratings.orientation, gratings.spatial_frequency, gratings.color)
    result = analyze_orientation_map(responses, som.positions, gratings.orientation)
    assert result.selective.mean() > 0.5
    assert result.smoothness > result.shuffled_curve.smoothness + 0.2, (result.smoothness, result.shuffled_curve.smoothness)


def test_the_vtc_som_puts_nodes_selective_for_a_category_together() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 40))
    labels = np.repeat(np.arange(3), 60)
    features = centres[labels] + rng.normal(0, 1, (len(labels), 40))
    som = train_vtc_som(features, components=10, edge=16, iterations=6000, seed=0)
    responses = som.responses(features)
    assert responses.shape == (180, 256) and (responses <= 0).all()
    _, t = category_selectivity(responses, labels)
    shuffled = np.random.default_rng(1).permutation(256)
    for k in range(3):
        assert t[k].max() > 2  # some nodes are selective for each category
        assert _neighbour_difference(t[k], 16) < 0.5 * _neighbour_difference(t[k][shuffled], 16)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="edge must be >= 1"):
        V1SOMSettings(edge=0)
    with pytest.raises(ValueError, match="keeps 20 components"):
        train_vtc_som(np.ones((10, 5)))
