"""Discretiser, plug-in MI / entropy and input validation shared by the array metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from sbvae.evaluation import metrics
from sbvae.evaluation.metrics.utils import (
    check_codes_labels,
    discrete_entropy,
    discrete_mutual_info,
    discretize,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_discretize_matches_numpy_histogram_edges(rng, dtype):
    codes = (rng.normal(size=(2000, 4)) * [1.0, 10.0, 0.01, 3.0] + [0, 5, -2, 100]).astype(dtype)
    codes[5, 0] = codes[:, 0].min() - 1.0  # an outlier stretches the range
    labels = discretize(codes)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins=20)[1][:-1]
        assert np.array_equal(labels[:, d], np.digitize(codes[:, d], edges))
        assert labels[:, d].min() == 1 and labels[:, d].max() == 20
        assert labels[np.argmin(codes[:, d]), d] == 1 and labels[np.argmax(codes[:, d]), d] == 20
    assert labels.dtype == np.int64 and labels.shape == codes.shape


def test_discretize_equal_width_bins_by_hand():
    codes = np.array([[0.0, 0.0], [0.049, 1.0], [0.05, 2.0], [0.51, 3.0], [0.999, 4.0], [1.0, 5.0]])
    labels = discretize(codes, num_bins=20)
    # bins of width 0.05 on [0, 1]; the maximum falls in the last bin (20)
    assert labels[:, 0].tolist() == [1, 1, 2, 11, 20, 20]
    assert discretize(codes, num_bins=5)[:, 1].tolist() == [1, 2, 3, 4, 5, 5]


def test_constant_dimension_gets_a_single_label(rng):
    codes = np.column_stack([np.full(100, 3.25), rng.normal(size=100)])
    labels = discretize(codes)
    assert np.unique(labels[:, 0]).size == 1
    assert np.unique(labels[:, 1]).size > 1


def test_discrete_mutual_info_equals_sklearn(rng):
    codes = discretize(rng.normal(size=(1500, 5)))
    factors = rng.integers(0, [2, 3, 10, 7], size=(1500, 4))
    codes[:, 2] = factors[:, 2] * 2 + 1  # a code that copies a factor
    codes[:, 4] = 1  # a constant code
    mi = discrete_mutual_info(codes, factors)
    expected = np.array([[mutual_info_score(factors[:, j], codes[:, i]) for j in range(4)] for i in range(5)])
    assert mi.shape == (5, 4)
    np.testing.assert_allclose(mi, expected, rtol=1e-12, atol=1e-15)
    assert np.all(mi[4] == 0.0)
    assert mi[2, 2] == pytest.approx(discrete_entropy(factors)[2], rel=1e-12)


def test_discrete_entropy_plug_in():
    labels = np.array([[0, 5], [0, 5], [1, 7], [1, 9]])
    h = discrete_entropy(labels)
    assert h[0] == pytest.approx(np.log(2))
    assert h[1] == pytest.approx(-(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25)))
    uniform = np.repeat(np.arange(6), 50)[:, None]
    assert discrete_entropy(uniform)[0] == pytest.approx(np.log(6))


# ---- validation ---------------------------------------------------------------------------------

GOOD_CODES = np.random.default_rng(0).normal(size=(50, 3))
GOOD_LABELS = np.random.default_rng(1).integers(0, 4, size=(50, 2))


def _with(array, index, value):
    out = np.array(array, dtype=float)
    out[index] = value
    return out


BAD_INPUTS = [
    (GOOD_CODES[:40], GOOD_LABELS, "different number of samples"),
    (_with(GOOD_CODES, (3, 1), np.nan), GOOD_LABELS, "NaN"),
    (_with(GOOD_CODES, (7, 0), np.inf), GOOD_LABELS, "infinite"),
    (GOOD_CODES[:, :1], GOOD_LABELS, "at least 2 code dimensions"),
    (GOOD_CODES[:, 0], GOOD_LABELS, "2-D"),
    (GOOD_CODES[None], GOOD_LABELS, "2-D"),
    (GOOD_CODES, GOOD_LABELS[:, 0], "2-D"),
    (GOOD_CODES, np.column_stack([GOOD_LABELS, np.full(50, 3)]), "only one value"),
    (GOOD_CODES, GOOD_LABELS + 0.5, "integer"),
    (GOOD_CODES[:1], GOOD_LABELS[:1], "at least 2 samples"),
]


@pytest.mark.parametrize("codes, labels, message", BAD_INPUTS)
def test_check_codes_labels_rejects(codes, labels, message):
    with pytest.raises(ValueError, match=message):
        check_codes_labels(codes, labels)


def test_check_codes_labels_accepts_and_converts():
    codes, labels = check_codes_labels(GOOD_CODES.astype(np.float32), GOOD_LABELS.astype(float))
    assert codes.dtype == np.float32 and labels.dtype == np.int64
    codes, _ = check_codes_labels(np.arange(100).reshape(50, 2), GOOD_LABELS)
    assert codes.dtype == np.float64


def _single(codes, labels):
    return [
        lambda: metrics.mig(codes, labels),
        lambda: metrics.sap(codes, labels, GOOD_CODES, GOOD_LABELS),
        lambda: metrics.sap(GOOD_CODES, GOOD_LABELS, codes, labels, continuous_factors=True),
        lambda: metrics.dci(codes, labels, GOOD_CODES, GOOD_LABELS),
        lambda: metrics.modularity_explicitness(GOOD_CODES, GOOD_LABELS, codes, labels),
    ]


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)))
@pytest.mark.parametrize("which", range(5))
def test_every_metric_validates_its_inputs(case, which):
    codes, labels, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        _single(codes, labels)[which]()


@pytest.mark.parametrize(
    "codes, message",
    [
        (_with(GOOD_CODES, (0, 0), np.nan), "NaN"),
        (GOOD_CODES[:, :1], "at least 2 code dimensions"),
        (GOOD_CODES.ravel(), "2-D"),
    ],
)
def test_unsupervised_validates_codes(codes, message):
    with pytest.raises(ValueError, match=message):
        metrics.unsupervised_scores(codes)


def test_train_and_test_must_match():
    with pytest.raises(ValueError, match="number of code dimensions"):
        metrics.sap(GOOD_CODES, GOOD_LABELS, GOOD_CODES[:, :2], GOOD_LABELS)
    with pytest.raises(ValueError, match="number of factors"):
        metrics.modularity_explicitness(GOOD_CODES, GOOD_LABELS, GOOD_CODES, GOOD_LABELS[:, :1])


@pytest.mark.parametrize("num_bins", [0, -3, 2.5, True])
def test_num_bins_must_be_a_positive_integer(num_bins):
    with pytest.raises(ValueError, match="num_bins"):
        metrics.mig(GOOD_CODES, GOOD_LABELS, num_bins=num_bins)
