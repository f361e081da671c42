"""DCI: closed forms on given importance matrices (disentanglement_lib's tests) and GBT runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sbvae.evaluation.metrics import (
    completeness_from_importance,
    dci,
    disentanglement_from_importance,
    estimate_fit_seconds,
    fit_factors,
    importance_matrix,
)
from sbvae.evaluation.metrics.dci import trees_per_stage


def test_diagonal_importance_is_perfect():
    m = np.diag(5.0 * np.ones(5))
    assert disentanglement_from_importance(m) == pytest.approx(1.0)
    assert completeness_from_importance(m) == pytest.approx(1.0)


@pytest.mark.parametrize("m", [np.zeros((10, 10)), np.ones((10, 10)), np.full((4, 3), 0.2)])
def test_zero_or_uniform_importance_scores_zero(m):
    assert disentanglement_from_importance(m) == pytest.approx(0.0, abs=1e-7)
    assert completeness_from_importance(m) == pytest.approx(0.0, abs=1e-7)


def test_duplicated_codes_closed_form():
    m = np.vstack([np.diag(5.0 * np.ones(5))] * 2)  # 10 codes, each factor in two codes
    assert completeness_from_importance(m) == pytest.approx(1.0 - math.log(2) / math.log(10))
    assert disentanglement_from_importance(m) == pytest.approx(1.0)


def test_one_code_for_two_factors_closed_form():
    m = np.hstack([np.diag(5.0 * np.ones(5))] * 2)  # 5 codes, 10 factors, each code serves two
    assert disentanglement_from_importance(m) == pytest.approx(1.0 - math.log(2) / math.log(10))
    assert completeness_from_importance(m) == pytest.approx(1.0)


def test_weighting_by_code_importance():
    # a perfect code carrying 3/4 of the importance and a useless one carrying 1/4
    m = np.array([[3.0, 0.0], [0.5, 0.5]])
    assert disentanglement_from_importance(m) == pytest.approx(0.75, abs=1e-8)
    # completeness: factor 0 column (3, .5), factor 1 column (0, .5)
    p = np.array([3.0, 0.5]) / 3.5
    c0 = 1 + (p * np.log(p)).sum() / math.log(2)
    assert completeness_from_importance(m) == pytest.approx(c0 * 3.5 / 4 + 1.0 * 0.5 / 4, abs=1e-8)


def test_importance_scores_ignore_order_and_scale():
    rng = np.random.default_rng(0)
    m = rng.random((6, 4)) ** 3
    d, c = disentanglement_from_importance(m), completeness_from_importance(m)
    shuffled = m[rng.permutation(6)][:, rng.permutation(4)]
    assert disentanglement_from_importance(shuffled) == pytest.approx(d, rel=1e-12)
    assert completeness_from_importance(shuffled) == pytest.approx(c, rel=1e-12)
    # scale invariant up to dlib's fixed 1e-11 added to every entry
    assert disentanglement_from_importance(7.0 * m) == pytest.approx(d, rel=1e-8)
    assert completeness_from_importance(7.0 * m) == pytest.approx(c, rel=1e-8)


def test_single_factor_disentanglement_is_nan_like_dlib():
    assert math.isnan(disentanglement_from_importance(np.array([[1.0], [0.0]])))


def test_importance_matrix_must_be_sane():
    with pytest.raises(ValueError, match="non-negative"):
        disentanglement_from_importance(np.array([[1.0, -1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        completeness_from_importance(np.ones(3))


# ---- the full metric with gradient-boosted trees (small data: 100 trees per class) ------------


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(1)
    return rng.integers(0, 4, size=(240, 3)), rng.integers(0, 4, size=(120, 3))


@pytest.mark.parametrize(
    "transform", [lambda f: f + 0.05 * np.random.default_rng(2).normal(size=f.shape), lambda f: np.exp(f.astype(float))]
)
def test_codes_equal_to_factors_score_near_one(factors, transform):
    train, test = factors
    result = dci(transform(train), train, transform(test), test, seed=0)
    assert set(result) == {
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness_train",
        "dci_informativeness_test",
    }
    assert result["dci_disentanglement"] > 0.95 and result["dci_completeness"] > 0.95
    assert result["dci_informativeness_train"] == 1.0 and result["dci_informativeness_test"] == 1.0


def test_noise_codes_score_near_zero(factors):
    train, test = factors
    rng = np.random.default_rng(3)
    result = dci(rng.normal(size=(240, 3)), train, rng.normal(size=(120, 3)), test, seed=0)
    assert result["dci_disentanglement"] < 0.1 and result["dci_completeness"] < 0.1
    assert result["dci_informativeness_test"] < 0.4  # chance is 0.25; the trees overfit train
    assert result["dci_informativeness_train"] > 0.8


def test_permuting_codes_and_seeding(factors):
    train, test = factors
    rng = np.random.default_rng(4)
    mix = np.array([[1.0, 0.4, 0.0, 0.2], [0.0, 1.0, 0.3, 0.0], [0.2, 0.0, 1.0, 0.0]])
    c_train = train @ mix + 0.3 * rng.normal(size=(240, 4))
    c_test = test @ mix + 0.3 * rng.normal(size=(120, 4))
    base = dci(c_train, train, c_test, test, seed=5)
    assert 0.2 < base["dci_disentanglement"] < 0.95
    assert dci(c_train, train, c_test, test, seed=5) == base  # seeded: repeatable
    # Permuting the codes permutes the importance rows, but the trees break ties between equally
    # good splits by (seeded) feature order, so the scores move at the level of dlib's own
    # unseeded jitter rather than staying bit-identical.
    perm = [3, 1, 0, 2]
    permuted = dci(c_train[:, perm], train, c_test[:, perm], test, seed=5)
    for key, value in base.items():
        assert permuted[key] == pytest.approx(value, abs=0.01), key
    unseeded = dci(c_train, train, c_test, test)  # dlib's mode: tiny run-to-run jitter only
    assert unseeded["dci_disentanglement"] == pytest.approx(base["dci_disentanglement"], abs=0.02)


def test_parallel_factors_give_the_same_scores(factors):
    train, test = factors
    rng = np.random.default_rng(6)
    c_train = train + 0.5 * rng.normal(size=train.shape)
    c_test = test + 0.5 * rng.normal(size=test.shape)
    assert dci(c_train, train, c_test, test, seed=1, n_jobs=2) == dci(c_train, train, c_test, test, seed=1)


def test_parallel_fits_start_with_the_most_trees_and_equal_the_serial_ones():
    """Factors of 2, 6 and 3 classes are fitted largest first on two processes; the importance
    matrix and accuracies come back in factor order, bit for bit those of one process."""
    rng = np.random.default_rng(7)
    classes = [2, 6, 3]
    train = np.stack([rng.integers(0, c, 200) for c in classes], axis=1)
    test = np.stack([rng.integers(0, c, 100) for c in classes], axis=1)
    c_train, c_test = train + 0.7 * rng.normal(size=train.shape), test + 0.7 * rng.normal(size=test.shape)
    done: list[int] = []
    fits = fit_factors(c_train, train, c_test, test, seed=3, n_jobs=2, on_fit=done.append)
    assert done == [1, 2, 3] and all(f.seconds > 0 for f in fits)
    importance, *accuracies = importance_matrix(fits)
    serial, *serial_accuracies = importance_matrix(fit_factors(c_train, train, c_test, test, seed=3))
    assert np.array_equal(importance, serial) and accuracies == serial_accuracies
    assert [trees_per_stage(train[:, k]) for k in range(3)] == [1, 6, 3]
    assert estimate_fit_seconds(c_train, train) > 0
