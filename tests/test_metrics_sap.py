"""SAP score in dlib's discrete (LinearSVC accuracy) and continuous (squared correlation) modes."""

from __future__ import annotations

import numpy as np
import pytest

from sbvae.evaluation.metrics import sap, sap_from_score_matrix, sap_score_matrix


@pytest.fixture(scope="module")
def identity():
    """dlib's IdentityObservationsData: 10 factors x 10 values; train and test splits."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 10, size=(2000, 10)), rng.integers(0, 10, size=(1000, 10))


def test_score_matrix_gap_closed_form():
    scores = np.array([[1.0, 0.5], [0.5, 0.5], [0.0, 1.0]])
    assert sap_from_score_matrix(scores) == pytest.approx(0.5)
    assert sap_from_score_matrix(np.ones((3, 4))) == 0.0


@pytest.mark.parametrize("transform", [lambda f: f.astype(float), lambda f: 3.0 * f + 1.0])
def test_continuous_identity_scores_one(identity, transform):
    train, test = identity
    score = sap(transform(train), train, transform(test), test, continuous_factors=True)["sap_score"]
    assert 0.99 <= score <= 1.0


def test_continuous_monotone_transform_near_one(identity):
    train, test = identity
    codes = np.log1p(train.astype(float))  # monotone but not linear: correlation below 1
    score = sap(codes, train, np.log1p(test.astype(float)), test, continuous_factors=True)["sap_score"]
    assert 0.85 < score < 0.99


def test_continuous_mode_uses_train_only(identity):
    train, test = identity
    a = sap(train.astype(float), train, test.astype(float), test, continuous_factors=True)
    rng = np.random.default_rng(1)
    b = sap(train.astype(float), train, rng.normal(size=test.shape), test, continuous_factors=True)
    assert a == b


def test_discrete_binary_identity_known_answer():
    rng = np.random.default_rng(2)
    train, test = rng.integers(0, 2, size=(1000, 3)), rng.integers(0, 2, size=(500, 3))
    m = sap_score_matrix(train.astype(float), train, test.astype(float), test)
    np.testing.assert_array_equal(np.diag(m), 1.0)  # the right code separates its factor
    off = m[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off - 0.5) < 0.1)  # any other code is at chance
    assert sap(train.astype(float), train, test.astype(float), test)["sap_score"] == pytest.approx(
        1.0 - np.sort(m, axis=0)[-2].mean()
    )


def test_discrete_identity_beats_noise():
    rng = np.random.default_rng(3)
    train, test = rng.integers(0, 4, size=(1000, 4)), rng.integers(0, 4, size=(500, 4))
    good = sap(train + 0.1 * rng.normal(size=train.shape), train, test + 0.1 * rng.normal(size=test.shape), test)[
        "sap_score"
    ]
    noise = sap(rng.normal(size=(1000, 4)), train, rng.normal(size=(500, 4)), test)["sap_score"]
    assert good > 0.2 and noise < 0.05


@pytest.mark.parametrize("continuous", [False, True])
def test_duplicated_latent_space_scores_zero(continuous):
    rng = np.random.default_rng(4)
    train, test = rng.integers(0, 3, size=(600, 3)), rng.integers(0, 3, size=(300, 3))
    codes = np.hstack([train, train]).astype(float)
    codes_test = np.hstack([test, test]).astype(float)
    assert sap(codes, train, codes_test, test, continuous)["sap_score"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("continuous", [False, True])
def test_constant_codes_score_zero(continuous):
    rng = np.random.default_rng(5)
    train, test = rng.integers(0, 3, size=(300, 2)), rng.integers(0, 3, size=(150, 2))
    assert sap(np.zeros((300, 3)), train, np.zeros((150, 3)), test, continuous)["sap_score"] == 0.0


@pytest.mark.parametrize("continuous", [False, True])
def test_permuting_code_dimensions_changes_nothing(continuous):
    rng = np.random.default_rng(6)
    train, test = rng.integers(0, 3, size=(600, 3)), rng.integers(0, 3, size=(300, 3))
    mix = rng.normal(size=(3, 5))
    codes, codes_test = train @ mix + rng.normal(size=(600, 5)), test @ mix + rng.normal(size=(300, 5))
    base = sap(codes, train, codes_test, test, continuous)
    assert base["sap_score"] > 0.0
    perm = [4, 2, 0, 1, 3]
    assert sap(codes[:, perm], train, codes_test[:, perm], test, continuous) == base
