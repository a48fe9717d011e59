"""Swap optimisation: the same decisions as the plain reference, a permutation of positions,
maps that get smoother, reproducible, resumable, and named errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses.smoothness import distance_curve
from spacetorch.models.positions import LayerPositions, NetworkPositions
from spacetorch.models.positions import swapopt as S
from spacetorch.models.positions._swapopt_reference import reference_swaps


def _layer(n_side: int = 20, channels: int = 2, size: float = 10.0, width: float = 2.0, seed: int = 0) -> LayerPositions:
    """``channels x n_side x n_side`` units on a ``size`` mm sheet, each channel's grid jittered."""
    rng = np.random.default_rng(seed)
    g = (np.arange(n_side) + 0.5) * size / n_side
    xs, ys = np.meshgrid(g, g)
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    coords = np.concatenate([grid + rng.uniform(-0.2, 0.2, grid.shape) for _ in range(channels)]).clip(0, size)
    n = len(coords)
    hoods = np.stack([rng.choice(n, 10, replace=False) for _ in range(5)]).astype(np.int32)
    return LayerPositions("layer2.0", (channels, n_side, n_side), coords, hoods, width)


def _random_responses(n_units: int, n_stimuli: int = 30, seed: int = 1, constant: int = 5) -> np.ndarray:
    r = np.random.default_rng(seed).normal(size=(n_stimuli, n_units))
    r[:, :constant] = 0.0  # dead units: their correlations count as 0
    return r


@pytest.mark.parametrize("max_units", [pytest.param(500, marks=pytest.mark.slow), 12], ids=["whole windows", "subsets of 12"])
def test_fast_path_takes_the_same_decisions_as_the_plain_reference(max_units: int) -> None:
    layer = _layer()
    responses = _random_responses(layer.num_units)
    xy = np.asarray(layer.coordinates, dtype=np.float64)
    plan = S.plan_windows(S.SheetWindows(xy, layer.neighborhood_width), 60, np.random.default_rng(3), 200, max_units)
    assert plan.wave.max() > 0 and np.bincount(plan.wave).max() > 1, "windows must both overlap and run together"

    expected, decisions = reference_swaps(responses, xy, plan)
    units = np.arange(layer.num_units)
    accepted = S._run_plan(S.standardize(responses, np.float64), units, xy, plan)
    found = np.empty_like(xy)
    found[units] = xy
    assert 0 < accepted < len(decisions)
    assert accepted == sum(decisions)
    np.testing.assert_array_equal(found, expected)


def test_result_is_a_permutation_with_new_neighborhoods_and_the_loss_falls() -> None:
    layer = _layer()
    responses = _random_responses(layer.num_units)
    new, record = S.swap_optimize_layer(layer, responses, attempts=20_000, seed=5, n_neighborhoods=300)
    old_xy, new_xy = np.asarray(layer.coordinates), np.asarray(new.coordinates)
    assert not np.array_equal(old_xy, new_xy)
    np.testing.assert_array_equal(np.unique(old_xy, axis=0), np.unique(new_xy, axis=0))
    assert sorted(map(tuple, old_xy)) == sorted(map(tuple, new_xy)), "every unit keeps exactly one position"
    assert new.dims == layer.dims and new.neighborhood_width == layer.neighborhood_width
    assert new.neighborhood_indices.shape[0] > 100
    assert record.attempts == 20_000 and record.windows == 40 and 0 < record.accepted < record.attempts
    assert record.loss_after < record.loss_before


def test_a_shuffled_smooth_map_gets_smooth_again() -> None:
    """A planted problem: units tuned to orientation by a smooth map, positions shuffled."""
    layer = _layer(n_side=24, channels=1, size=12.0, width=3.0)
    xy = np.asarray(layer.coordinates)
    preferred = (np.degrees(np.arctan2(xy[:, 1] - 6, xy[:, 0] - 6)) / 2 + 90 * (xy[:, 0] > 6)) % 180  # smooth, with a pinwheel
    orientations = np.repeat(np.arange(0, 180, 22.5), 4)
    rng = np.random.default_rng(0)
    responses = np.exp(2 * np.cos(np.radians(2 * (orientations[:, None] - preferred[None, :])))) + rng.normal(0, 0.3, (len(orientations), len(xy)))
    shuffled = LayerPositions(layer.name, layer.dims, xy[rng.permutation(len(xy))], layer.neighborhood_indices, layer.neighborhood_width)

    def smooth(coords: np.ndarray) -> float:
        return distance_curve(coords, preferred, max_distance=6.0).smoothness

    new, record = S.swap_optimize_layer(shuffled, responses, attempts=300_000, seed=0, n_neighborhoods=200)
    assert smooth(np.asarray(layer.coordinates)) > 0.5, "the planted map is smooth"
    assert smooth(np.asarray(shuffled.coordinates)) < 0.2, "shuffling destroys it"
    assert smooth(np.asarray(new.coordinates)) > 0.6, "swapping restores most of it"
    assert record.loss_after < record.loss_before - 0.05


def test_same_seed_same_result_other_seed_other_result() -> None:
    layer = _layer()
    responses = _random_responses(layer.num_units)
    a, _ = S.swap_optimize_layer(layer, responses, attempts=5_000, seed=1, n_neighborhoods=100)
    b, _ = S.swap_optimize_layer(layer, responses, attempts=5_000, seed=1, n_neighborhoods=100)
    c, _ = S.swap_optimize_layer(layer, responses, attempts=5_000, seed=2, n_neighborhoods=100)
    np.testing.assert_array_equal(a.coordinates, b.coordinates)
    np.testing.assert_array_equal(a.neighborhood_indices, b.neighborhood_indices)
    assert not np.array_equal(a.coordinates, c.coordinates)


def test_windows_of_more_than_500_units_work() -> None:
    layer = _layer(n_side=20, channels=4, size=10.0, width=9.0)  # 1,600 units, windows of ~1,300
    responses = _random_responses(layer.num_units, constant=0)
    windows = S.SheetWindows(np.asarray(layer.coordinates, dtype=np.float64), 9.0)
    assert len(windows.slots(windows.low[None, :])[0]) > 500
    new, record = S.swap_optimize_layer(layer, responses, attempts=1_000, seed=0, n_neighborhoods=50)
    assert record.accepted > 0 and record.max_window_units == 500


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(S, "_CHUNK", 4)  # save the state every 4 windows
    layer = _layer()
    responses = _random_responses(layer.num_units)
    state = tmp_path / "layer2.0.state.npz"
    calls = []

    def stop_after_two_blocks(done: int, total: int, kept: int, loss: float) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        S.swap_optimize_layer(layer, responses, attempts=10_000, seed=3, resume_file=state, progress=stop_after_two_blocks)
    assert state.exists()
    resumed, record = S.swap_optimize_layer(layer, responses, attempts=10_000, seed=3, resume_file=state)
    whole, expected = S.swap_optimize_layer(layer, responses, attempts=10_000, seed=3)
    np.testing.assert_array_equal(resumed.coordinates, whole.coordinates)
    assert (record.accepted, record.loss_after) == (expected.accepted, expected.loss_after)
    assert not state.exists(), "the state is removed when the layer is done"

    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        S.swap_optimize_layer(layer, responses, attempts=10_000, seed=3, resume_file=state, progress=stop_after_two_blocks)
    with pytest.raises(ValueError, match=r"state.npz: this saved state is of a run with other settings \(seed differ\)"):
        S.swap_optimize_layer(layer, responses, attempts=10_000, seed=4, resume_file=state)


def test_network_keeps_the_layers_it_does_not_optimise() -> None:
    a, b = _layer(seed=0), _layer(seed=1)
    b.name = "layer3.0"
    positions = NetworkPositions({"layer2.0": a, "layer3.0": b}, version=1)
    new, records = S.swap_optimize(positions, {"layer3.0": _random_responses(b.num_units)}, attempts=2_000, n_neighborhoods=50)
    assert [r.layer for r in records] == ["layer3.0"]
    assert new["layer2.0"] is a and not np.array_equal(new["layer3.0"].coordinates, b.coordinates)
    with pytest.raises(KeyError, match=r"no positions for layer\(s\) \['layer9.0'\]"):
        S.swap_optimize(positions, {"layer9.0": np.zeros((3, 3))}, attempts=10)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r[:, :-1], r"layer 'layer2.0': responses must have shape \(stimuli, 800\) for its 800 units"),
        (lambda r: np.zeros_like(r), r"layer 'layer2.0': every unit's response is the same for all stimuli"),
        (lambda r: np.where(r > 2, np.nan, r), r"layer 'layer2.0': responses contain NaN"),
        (lambda r: r[:2], r"at least 3 stimuli, got 2"),
    ],
    ids=["unit count", "constant", "nan", "two stimuli"],
)
def test_bad_responses_are_named(change, message) -> None:
    layer = _layer()
    with pytest.raises(ValueError, match=message):
        S.swap_optimize_layer(layer, change(_random_responses(layer.num_units)), attempts=100)


def test_a_window_wider_than_the_sheet_is_named() -> None:
    layer = _layer()
    with pytest.raises(ValueError, match=r"layer 'layer2.0': window width must be > 0 and fit the sheet \(.* mm\), got 50.0 mm"):
        S.swap_optimize_layer(layer, _random_responses(layer.num_units), attempts=100, width=50.0)


# -- the device path (Triton), interpreted on the CPU ----------------------------------------------
def test_device_path_takes_the_same_decisions_as_numba_and_the_reference() -> None:
    """Float64: the Triton kernel (interpreted, a program per window) keeps exactly the swaps the
    numba path and the plain reference keep, on windows that overlap and windows that run
    together, with dead units and subsets."""
    import torch

    from spacetorch.models.positions._swapopt_device import run_plan_device

    layer = _layer()
    responses = _random_responses(layer.num_units)
    xy = np.asarray(layer.coordinates, dtype=np.float64)
    plan = S.plan_windows(S.SheetWindows(xy, layer.neighborhood_width), 6, np.random.default_rng(3), 25, 40)
    assert plan.wave.max() > 0 and np.bincount(plan.wave).max() > 1, "windows must both overlap and run together"
    z = S.standardize(responses, np.float64)

    expected, decisions = reference_swaps(responses, xy, plan)
    numba_units = np.arange(layer.num_units)
    numba_kept = S._run_plan(z, numba_units, xy, plan)
    units = torch.arange(layer.num_units)
    kept = run_plan_device(torch.from_numpy(z), units, torch.from_numpy(xy), plan, S._TOLERANCE)
    found = np.empty_like(xy)
    found[units.numpy()] = xy
    assert 0 < kept < len(decisions)
    assert kept == numba_kept == sum(decisions)
    np.testing.assert_array_equal(units.numpy(), numba_units)
    np.testing.assert_array_equal(found, expected)


def test_swap_optimize_layer_through_the_device_path_gives_the_numba_result() -> None:
    layer = _layer(n_side=8, size=4.0, width=1.6)
    responses = _random_responses(layer.num_units, constant=2)
    options = {"attempts": 60, "attempts_per_window": 20, "seed": 4, "n_neighborhoods": 50, "precision": "float64"}
    by_numba, numba_record = S.swap_optimize_layer(layer, responses, engine="numba", **options)
    by_triton, record = S.swap_optimize_layer(layer, responses, engine="triton", device="cpu", **options)
    assert (record.engine, record.device, numba_record.engine) == ("triton", "cpu", "numba")
    assert record.accepted == numba_record.accepted > 0
    np.testing.assert_array_equal(by_triton.coordinates, by_numba.coordinates)


def test_engine_choice() -> None:
    import torch

    assert S.resolve_engine("numba", "cuda") == ("numba", "cpu")
    assert S.resolve_engine("triton", "cpu") == ("triton", "cpu")
    expected = ("triton", "cuda") if torch.cuda.is_available() else ("numba", "cpu")
    assert S.resolve_engine("auto") == expected
    assert S.resolve_engine("auto", "cpu") == ("numba", "cpu")
    with pytest.raises(ValueError, match="engine must be one of"):
        S.resolve_engine("cupy")


def test_without_triton_the_device_path_is_refused_by_name(monkeypatch) -> None:
    from spacetorch.models.positions import _swapopt_device

    monkeypatch.setattr(_swapopt_device, "triton", None)
    assert S.resolve_engine("auto", "cuda") == ("numba", "cpu")
    with pytest.raises(ValueError, match="Triton is not installed.*use engine 'numba'"):
        S.resolve_engine("triton", "cpu")
