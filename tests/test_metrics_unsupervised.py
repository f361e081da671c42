"""Unsupervised scores: Gaussian total correlation / Wasserstein dependency closed forms, MI score."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from sbvae.evaluation.metrics import (
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    unsupervised_scores,
)
from sbvae.evaluation.metrics.utils import discretize


@pytest.mark.parametrize("rho", [0.0, 0.3, -0.5, 0.9, 0.99])
def test_two_dimensional_gaussian_closed_forms(rho):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-12)
    # W2^2 to the product of marginals: 2 tr S - 2 tr sqrt(S), eigenvalues 1 +- rho
    expected_w = 4.0 - 2.0 * (math.sqrt(1 + rho) + math.sqrt(1 - rho))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(expected_w, abs=1e-10)


def test_total_correlation_is_scale_free_and_zero_for_diagonal():
    assert gaussian_total_correlation(np.eye(5)) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_total_correlation(np.diag([0.1, 4.0, 9.0])) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_wasserstein_correlation(np.diag([0.1, 4.0, 9.0])) == pytest.approx(0.0, abs=1e-10)
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    scale = np.diag([3.0, 0.2])
    assert gaussian_total_correlation(scale @ cov @ scale) == pytest.approx(gaussian_total_correlation(cov), abs=1e-12)


def test_independent_codes_score_near_zero():
    codes = np.random.default_rng(0).normal(size=(10000, 5)) * [1, 2, 3, 0.5, 10]
    result = unsupervised_scores(codes)
    assert set(result) == {
        "gaussian_total_correlation",
        "gaussian_wasserstein_correlation",
        "gaussian_wasserstein_correlation_norm",
        "mutual_info_score",
    }
    assert 0.0 <= result["gaussian_total_correlation"] < 0.01
    assert abs(result["gaussian_wasserstein_correlation_norm"]) < 0.01
    assert result["mutual_info_score"] < 0.03  # plug-in bias only: ~19^2 / (2 N)


def test_correlated_codes_score_high():
    rng = np.random.default_rng(1)
    rho = 0.9
    cov = np.array([[1.0, rho], [rho, 1.0]])
    codes = rng.multivariate_normal([0.0, 0.0], cov, size=10000)
    result = unsupervised_scores(codes)
    assert result["gaussian_total_correlation"] == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.05)
    assert result["gaussian_total_correlation"] > 0.5
    assert result["mutual_info_score"] > 0.5
    sample_cov = np.cov(codes, rowvar=False)
    assert result["gaussian_wasserstein_correlation_norm"] == pytest.approx(
        result["gaussian_wasserstein_correlation"] / np.trace(sample_cov), rel=1e-12
    )


def test_mutual_info_score_is_mean_off_diagonal_pairwise_mi():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(3000, 2))
    codes = np.column_stack([base[:, 0], base[:, 0] ** 3, base[:, 1], base[:, 0] + base[:, 1]])
    binned = discretize(codes)
    pairs = [mutual_info_score(binned[:, j], binned[:, i]) for i in range(4) for j in range(4) if i != j]
    assert unsupervised_scores(codes)["mutual_info_score"] == pytest.approx(np.mean(pairs), rel=1e-12)


def test_permuting_code_dimensions_changes_nothing():
    rng = np.random.default_rng(3)
    codes = rng.normal(size=(4000, 4)) @ rng.normal(size=(4, 4))
    base = unsupervised_scores(codes)
    permuted = unsupervised_scores(codes[:, [2, 0, 3, 1]])
    for key, value in base.items():
        assert permuted[key] == pytest.approx(value, rel=1e-9), key
