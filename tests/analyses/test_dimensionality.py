"""Eigenspectrum, effective dimensionality and power-law exponent against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from spacetorch.analyses.dimensionality import effective_dimensionality, eigenspectrum, power_law_exponent, spectrum


@pytest.mark.parametrize("n", [1, 5, 40])
def test_n_equal_eigenvalues_give_n_dimensions(n: int) -> None:
    assert effective_dimensionality(np.r_[np.full(n, 2.5), np.zeros(10)]) == pytest.approx(n)


def test_the_eigenspectrum_is_the_covariance_eigenvalues() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 25)) @ rng.normal(size=(25, 25)) + 3.0
    reference = np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1]
    np.testing.assert_allclose(eigenspectrum(x), reference, rtol=1e-8, atol=1e-10)
    assert eigenspectrum(x[:10]).size == 9  # fewer stimuli than units: S - 1 components


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.6])
def test_the_exponent_of_an_exact_power_law_is_recovered(alpha: float) -> None:
    lam = np.arange(1, 301, dtype=float) ** -alpha
    assert power_law_exponent(lam) == pytest.approx(alpha, abs=1e-9)


@pytest.mark.parametrize("alpha", [0.8, 1.2])
def test_responses_with_a_power_law_covariance_give_its_exponent(alpha: float) -> None:
    rng = np.random.default_rng(1)
    n_units, n_images = 150, 20_000
    basis, _ = np.linalg.qr(rng.normal(size=(n_units, n_units)))
    scales = np.arange(1, n_units + 1) ** (-alpha / 2)
    responses = (rng.normal(size=(n_images, n_units)) * scales) @ basis.T
    measured = spectrum(responses, ranks=(5, 60))
    assert abs(measured.alpha - alpha) < 0.05
    true = np.arange(1, n_units + 1, dtype=float) ** -alpha
    assert measured.effective_dimensionality == pytest.approx(effective_dimensionality(true), rel=0.05)


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="at least 2 stimuli"):
        eigenspectrum(np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        eigenspectrum(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="at least 3 ranks"):
        power_law_exponent(np.ones(11), ranks=(10, 100))
    assert np.isnan(spectrum(np.random.default_rng(0).normal(size=(5, 3))).alpha)  # too short a spectrum: no exponent
