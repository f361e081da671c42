"""Modularity (from the binned MI matrix) and explicitness (logistic-regression ROC-AUC)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from sbvae.evaluation.metrics import (
    explicitness_per_factor,
    modularity_explicitness,
    modularity_from_mutual_info,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_modularity_closed_forms():
    assert modularity_from_mutual_info(np.diag([1.0, 2.0, 3.0])) == pytest.approx(1.0)
    # a code equally informative about all factors has delta = 1 -> modularity 0
    assert modularity_from_mutual_info(np.full((2, 4), 0.7)) == pytest.approx(0.0)
    # theta = 4, delta = 1 / (4 * 1) -> 0.75; an uninformative code counts as 0
    assert modularity_from_mutual_info(np.array([[2.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.375)


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return rng.integers(0, 5, size=(1000, 5)), rng.integers(0, 5, size=(500, 5))


@pytest.mark.parametrize("transform", [lambda f: f.astype(float), lambda f: np.exp(f / 2.0)])
def test_codes_equal_to_factors_score_near_one(factors, transform):
    train, test = factors
    result = modularity_explicitness(transform(train), train, transform(test), test)
    assert 0.9 <= result["modularity_score"] <= 1.0
    assert result["explicitness_score_train"] > 0.97 and result["explicitness_score_test"] > 0.97


def test_duplicated_latent_space_keeps_modularity(factors):
    train, test = factors
    result = modularity_explicitness(
        np.hstack([train, train]).astype(float), train, np.hstack([test, test]).astype(float), test
    )
    assert 0.9 <= result["modularity_score"] <= 1.0


def test_codes_mixing_all_factors_score_low():
    # dlib's bad case: each sample's code is a random permutation of its factor values
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 10, size=(1500, 10)), rng.integers(0, 10, size=(300, 10))
    shuffled = np.array([rng.permutation(row) for row in train], dtype=float)
    shuffled_test = np.array([rng.permutation(row) for row in test], dtype=float)
    result = modularity_explicitness(shuffled, train, shuffled_test, test)
    assert result["modularity_score"] < 0.4


def test_noise_codes_are_not_explicit(factors):
    train, test = factors
    rng = np.random.default_rng(2)
    result = modularity_explicitness(rng.normal(size=(1000, 4)), train, rng.normal(size=(500, 4)), test)
    assert abs(result["explicitness_score_test"] - 0.5) < 0.05


def test_explicitness_matches_dlibs_multilabel_roc_auc(factors):
    train, test = factors
    rng = np.random.default_rng(3)
    z_train = train @ rng.normal(size=(5, 4)) + 2 * rng.normal(size=(1000, 4))
    z_test = test @ rng.normal(size=(5, 4)) + 2 * rng.normal(size=(500, 4))
    auc_train, auc_test = explicitness_per_factor(z_train, train[:, 1], z_test, test[:, 1])
    clf = LogisticRegression().fit(z_train, train[:, 1])
    mlb = MultiLabelBinarizer()
    expected_test = roc_auc_score(mlb.fit_transform(test[:, 1:2]), clf.predict_proba(z_test))
    expected_train = roc_auc_score(mlb.fit_transform(train[:, 1:2]), clf.predict_proba(z_train))
    assert auc_test == pytest.approx(expected_test, rel=1e-12)
    assert auc_train == pytest.approx(expected_train, rel=1e-12)


def test_class_missing_from_test_split_is_skipped(factors):
    train, test = factors
    keep = test[:, 0] != 4  # dlib crashes here; we average over the classes that are present
    codes = train.astype(float) + 0.5 * np.random.default_rng(4).normal(size=train.shape)
    result = modularity_explicitness(codes, train, test[keep].astype(float), test[keep])
    assert 0.5 < result["explicitness_score_test"] <= 1.0


def test_permuting_code_dimensions_changes_nothing(factors):
    train, test = factors
    rng = np.random.default_rng(5)
    mix = rng.normal(size=(5, 6))
    codes, codes_test = train @ mix + rng.normal(size=(1000, 6)), test @ mix + rng.normal(size=(500, 6))
    base = modularity_explicitness(codes, train, codes_test, test)
    perm = [5, 3, 1, 0, 2, 4]
    permuted = modularity_explicitness(codes[:, perm], train, codes_test[:, perm], test)
    assert permuted["modularity_score"] == pytest.approx(base["modularity_score"], rel=1e-12)
    for key in ("explicitness_score_train", "explicitness_score_test"):
        assert permuted[key] == pytest.approx(base[key], abs=1e-4)


def test_constant_code_dimension_is_handled(factors):
    train, test = factors
    codes = np.column_stack([train.astype(float), np.ones(1000)])
    codes_test = np.column_stack([test.astype(float), np.ones(500)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no division by zero
        result = modularity_explicitness(codes, train, codes_test, test)
    assert all(np.isfinite(v) for v in result.values())
