"""Chen et al. 2018 MIG: streaming estimator against brute force, known answers, checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from sbvae.evaluation.metrics import mig_chen
from sbvae.evaluation.metrics.mig_chen import _entropy_per_dim

SIZES = (8, 6, 5)


@pytest.fixture(scope="module")
def grid():
    """All 240 factor combinations, in shuffled order (the estimator must not rely on order)."""
    rows = np.array(list(itertools.product(*[range(s) for s in SIZES])))
    return rows[np.random.default_rng(0).permutation(len(rows))]


def _good_posteriors(grid, rng):
    """Factor k in code k with tiny posterior variance, plus two collapsed (prior-like) dims."""
    n = len(grid)
    means = np.hstack([grid / np.array(SIZES), 0.01 * rng.normal(size=(n, 2))])
    logvars = np.hstack([np.full((n, 3), math.log(1e-4)), np.zeros((n, 2))])
    return means, logvars


def test_entropy_estimator_matches_brute_force():
    rng = np.random.default_rng(1)
    means = rng.normal(size=(37, 3))
    logvars = rng.normal(size=(37, 3)) - 1.0
    points = rng.normal(size=(11, 3))
    log_dens = norm.logpdf(points[None], means[:, None], np.exp(0.5 * logvars)[:, None])  # [n, S, D]
    expected = -(logsumexp(log_dens, axis=0) - math.log(37)).mean(axis=0)
    for block in (1 << 22, 50, 7, 1):
        np.testing.assert_allclose(_entropy_per_dim(points, means, logvars, block), expected, rtol=1e-12)


def test_codes_equal_to_factors_with_tiny_variance_score_near_one(grid):
    means, logvars = _good_posteriors(grid, np.random.default_rng(2))
    result = mig_chen(means, logvars, grid)
    assert result["mig_chen"] > 0.95
    assert len(result["mig_chen_per_factor"]) == 3 and result["mig_chen_factors"] == [0, 1, 2]
    # a monotone transform of a code does not change which code carries the factor
    means[:, 0] = np.exp(3 * means[:, 0])
    assert mig_chen(means, logvars, grid)["mig_chen"] > 0.95


def test_noise_codes_score_near_zero(grid):
    rng = np.random.default_rng(3)
    means = rng.normal(size=(len(grid), 4))
    assert mig_chen(means, np.zeros_like(means), grid)["mig_chen"] < 0.05


def test_a_factor_copied_twice_has_zero_gap(grid):
    means, logvars = _good_posteriors(grid, np.random.default_rng(4))
    means[:, 1] = means[:, 0]
    logvars[:, 1] = logvars[:, 0]
    per_factor = mig_chen(means, logvars, grid)["mig_chen_per_factor"]
    assert abs(per_factor[0]) < 0.05 and per_factor[1] < 0.05 and per_factor[2] > 0.95


def test_factor_subset_and_permuted_dimensions(grid):
    means, logvars = _good_posteriors(grid, np.random.default_rng(5))
    means[:, 0] += 0.3 * means[:, 1]  # make the scores less trivial
    full = mig_chen(means, logvars, grid, seed=11)
    subset = mig_chen(means, logvars, grid, factors=[2, 0], seed=11)
    assert subset["mig_chen_factors"] == [2, 0]
    assert subset["mig_chen_per_factor"] == pytest.approx(
        [full["mig_chen_per_factor"][2], full["mig_chen_per_factor"][0]], rel=1e-12
    )
    assert subset["mig_chen"] == pytest.approx(np.mean(subset["mig_chen_per_factor"]))
    # permuting the code dimensions is a relabelling; only the posterior sample noise (drawn per
    # column position) differs, so the scores agree up to Monte-Carlo noise
    perm = [4, 2, 0, 3, 1]
    permuted = mig_chen(means[:, perm], logvars[:, perm], grid, seed=11)
    assert permuted["mig_chen"] == pytest.approx(full["mig_chen"], abs=0.02)


def test_subsampling_is_seeded(grid):
    means, logvars = _good_posteriors(grid, np.random.default_rng(6))
    a = mig_chen(means, logvars, grid, num_samples=30, seed=3)
    b = mig_chen(means, logvars, grid, num_samples=30, seed=3)
    assert a == b and a["mig_chen"] > 0.9


def test_normalised_by_log_factor_size(grid):
    # with explicit factor sizes larger than the observed values the grid check fails...
    means, logvars = _good_posteriors(grid, np.random.default_rng(7))
    with pytest.raises(ValueError, match="full-factorial"):
        mig_chen(means, logvars, grid, factor_sizes=(8, 6, 10))
    # ...and without it the MI of a 5-valued factor is divided by log 10
    loose = mig_chen(means, logvars, grid, factor_sizes=(8, 6, 10), check_grid=False, seed=1)
    exact = mig_chen(means, logvars, grid, seed=1)
    assert loose["mig_chen_per_factor"][2] == pytest.approx(
        exact["mig_chen_per_factor"][2] * math.log(5) / math.log(10), rel=1e-12
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"factors": [3]}, "factors must be distinct indices"),
        ({"factors": [0, 0]}, "factors must be distinct indices"),
        ({"factor_sizes": (8, 6)}, "factor_sizes has 2 entries"),
        ({"factor_sizes": (8, 5, 5)}, "must lie in 0..4"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_bad_arguments(grid, kwargs, message):
    means, logvars = _good_posteriors(grid, np.random.default_rng(8))
    with pytest.raises(ValueError, match=message):
        mig_chen(means, logvars, grid, **kwargs)


def test_bad_arrays(grid):
    means, logvars = _good_posteriors(grid, np.random.default_rng(9))
    with pytest.raises(ValueError, match="full-factorial"):
        mig_chen(means[1:], logvars[1:], grid[1:])
    with pytest.raises(ValueError, match="same shape"):
        mig_chen(means, logvars[:, :4], grid)
    with pytest.raises(ValueError, match="different number of samples"):
        mig_chen(means, logvars, grid[:10])
    bad = means.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mig_chen(bad, logvars, grid)
