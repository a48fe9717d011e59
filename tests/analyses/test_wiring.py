"""Wiring length against hand-made layers with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses.wiring import active_units, fibres, wiring_length, wiring_lengths


def grid(n: int, size: float) -> np.ndarray:
    axis = (np.arange(n) + 0.5) * size / n
    x, y = np.meshgrid(axis, axis)
    return np.column_stack([x.ravel(), y.ravel()])


def test_two_point_clusters_give_the_analytic_length() -> None:
    # source: active units exactly at (1, 1) and (9, 1); target (same sheet, shifted by the 10 mm extent) at (1, 2) and (9, 2)
    source = np.array([[0.0, 0.0], [10.0, 0.0], [1, 1], [1, 1], [9, 1], [9, 1]])
    target = np.array([[0.0, 0.0], [10.0, 0.0], [1, 2], [1, 2], [9, 2], [9, 2]])
    on = np.array([0, 0, 1, 1, 1, 1], dtype=float)
    result = wiring_length(source, on, target, on, active_percentile=30)
    assert result.fibres == 2 and result.within == pytest.approx(0.0, abs=1e-9)
    assert result.between == pytest.approx(2 * (10 + 1))  # each fibre: 1 mm up on the sheet plus the 10 mm shift
    assert result.total == pytest.approx(22.0)


def test_fibres_are_the_fewest_within_the_distance_threshold() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 2.0], [8.0, 3.0], [5.0, 9.0]])
    points = np.concatenate([c + rng.normal(0, 0.2, (30, 2)) for c in centres])
    assert fibres(points, distance_threshold=0.5).count == 3
    assert fibres(points, distance_threshold=20.0).count == 1
    assert fibres(points, 5).count == 5


def test_a_topographic_layer_pair_needs_less_wire_than_its_shuffle() -> None:
    """Two identical layers whose active units form three compact blobs: shuffling the source
    scatters them, which costs at least twice the wire (the margin stated here)."""
    rng = np.random.default_rng(1)
    positions = grid(40, 20.0)
    stimuli = []
    for _ in range(3):
        blobs = rng.uniform(3, 17, (3, 2))
        d2 = ((positions[:, None, :] - blobs[None]) ** 2).sum(-1)
        stimuli.append(np.exp(-d2 / (2 * 0.8**2)).sum(1) + rng.normal(0, 0.01, len(positions)))
    responses = np.stack(stimuli)
    rows = wiring_lengths(positions, responses, positions, responses, active_percentile=95, distance_threshold=1.0)
    for s in range(3):
        model, shuffled = (next(r for r in rows if r["stimulus"] == s and r["positions"] == p) for p in ("model", "shuffled"))
        assert model["fibres"] <= 4
        assert shuffled["total"] > 2 * model["total"], (model, shuffled)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="active_percentile must be in"):
        active_units(np.ones(5), 100)
    with pytest.raises(ValueError, match="distance_threshold must be > 0"):
        fibres(np.ones((3, 2)), distance_threshold=0)
    with pytest.raises(ValueError, match="source: positions must be"):
        wiring_length(np.ones((3, 3)), np.ones(3), np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="same"):
        wiring_lengths(np.ones((3, 2)), np.ones((2, 3)), np.ones((3, 2)), np.ones((1, 3)))


def test_a_stimulus_without_active_units_gets_nan_not_an_error() -> None:
    positions = grid(4, 4.0)
    responses = np.stack([np.zeros(16), np.arange(16.0)])
    rows = wiring_lengths(positions, responses, positions, responses, active_percentile=80)
    assert all(np.isnan(r["total"]) for r in rows if r["stimulus"] == 0)
    assert all(np.isfinite(r["total"]) for r in rows if r["stimulus"] == 1)
