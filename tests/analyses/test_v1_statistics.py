"""Von Mises fits and the V1 tuning statistics against planted tuning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spacetorch.analyses.v1_statistics import bandwidth, fit_von_mises, load_comparison, v1_statistics


def planted(mu, kappa, a, b, theta_deg):
    theta = np.deg2rad(theta_deg)[:, None]
    return b + a * np.exp(kappa * (np.cos(2 * (theta - np.deg2rad(mu))) - 1))


def test_the_fit_recovers_planted_preferred_orientation_and_bandwidth() -> None:
    rng = np.random.default_rng(0)
    n = 300
    mu = rng.uniform(0, 180, n)
    kappa = rng.uniform(0.5, 8.0, n)
    a, b = rng.uniform(1, 3, n), rng.uniform(0, 1, n)
    theta = np.arange(0, 180, 11.25)  # 16 orientations
    curves = planted(mu, kappa, a, b, theta) + rng.normal(0, 0.01, (theta.size, n))
    fit = fit_von_mises(curves, theta)
    error = np.abs((fit.preferred - mu + 90) % 180 - 90)
    assert np.percentile(error, 95) < 2.0
    assert np.percentile(np.abs(fit.bandwidth - bandwidth(kappa)), 95) < 3.0
    np.testing.assert_allclose(fit.amplitude, a, rtol=0.1)
    assert fit.r2.min() > 0.98


def test_bandwidth_is_the_half_width_at_1_over_root_2() -> None:
    kappa = 2.0
    half = bandwidth(kappa)
    theta = np.array([0.0, half])
    curve = planted(0.0, kappa, 1.0, 0.0, theta)[:, 0]
    assert curve[1] == pytest.approx(1 / np.sqrt(2), rel=1e-9)
    assert bandwidth(0.01) == 90.0  # too flat to fall to 1/sqrt(2)


def test_a_flat_unit_is_untuned_and_the_statistics_follow_the_planted_units() -> None:
    rng = np.random.default_rng(1)
    orientations = np.repeat(np.arange(0, 180, 22.5), 4)  # 8 orientations x 4 SFs
    sfs = np.tile([2.0, 4.0, 8.0, 16.0], 8)
    tuned = planted(np.array([30.0, 120.0]), np.array([4.0, 4.0]), 1.0, 0.0, orientations)  # (S, 2)
    sf_gain = np.stack([np.where(sfs == 4.0, 1.0, 0.5), np.where(sfs == 16.0, 1.0, 0.5)], 1)
    responses = np.concatenate([tuned * sf_gain, np.ones((orientations.size, 1)), np.zeros((orientations.size, 1))], 1)
    stats = v1_statistics(responses + rng.normal(0, 1e-4, responses.shape).clip(0), orientations, sfs)
    assert stats.selective.tolist() == [True, True, False, False]
    assert stats.responsive.tolist()[:3] == [True, True, True]
    np.testing.assert_allclose(stats.fit.preferred[:2], [30, 120], atol=1.5)
    assert stats.preferred_sf[:2].tolist() == [4.0, 16.0]
    assert stats.circular_variance[2] > 0.99
    assert stats.summary()["selective"] == 2


def test_a_comparison_table_is_read_and_its_errors_named(tmp_path: Path) -> None:
    table = tmp_path / "macaque.csv"
    table.write_text("cell,circular_variance,bandwidth\n1,0.3,20\n2,0.7,\n")
    data = load_comparison(table)
    assert data["circular_variance"].tolist() == [0.3, 0.7] and data["bandwidth"].tolist() == [20.0]
    (tmp_path / "bad.csv").write_text("circular_variance\nhigh\n")
    with pytest.raises(ValueError, match="bad.csv: row 2, column circular_variance: 'high' is not a number"):
        load_comparison(tmp_path / "bad.csv")
    (tmp_path / "none.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no column of"):
        load_comparison(tmp_path / "none.csv")
