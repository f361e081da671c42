"""dlib's binned MIG: known answers from disentanglement_lib's tests and invariances."""

from __future__ import annotations

import numpy as np
import pytest

from sbvae.evaluation.metrics import mig, mig_from_mutual_info


@pytest.fixture(scope="module")
def identity_factors():
    """dlib's IdentityObservationsData: 10 factors with 10 values each, uniformly sampled."""
    return np.random.default_rng(0).integers(0, 10, size=(3000, 10))


@pytest.mark.parametrize(
    "transform",
    [
        lambda f: f.astype(float),
        lambda f: 3.0 * f + 1.0,
        lambda f: np.exp(f / 10.0),
        lambda f: np.log1p(f.astype(float)),
    ],
)
def test_codes_equal_to_factors_score_near_one(identity_factors, transform):
    result = mig(transform(identity_factors), identity_factors)
    assert 0.9 <= result["discrete_mig"] <= 1.0
    assert len(result["mig_per_factor"]) == 10
    assert all(isinstance(v, float) for v in result["mig_per_factor"])


def test_affine_codes_give_exactly_the_identity_score(identity_factors):
    base = mig(identity_factors.astype(float), identity_factors)
    other = mig(3.0 * identity_factors + 1.0, identity_factors)
    assert other["discrete_mig"] == pytest.approx(base["discrete_mig"], rel=1e-12)


def test_equal_width_bins_are_not_invariant_to_strong_monotone_transforms(identity_factors):
    # dlib's quirk: exp(0..9) puts 1, e, ..., e^6 into the first of 20 equal-width bins
    # (width ~405), so the binned MIG drops although the code is a bijection of the factor.
    assert mig(np.exp(identity_factors.astype(float)), identity_factors)["discrete_mig"] < 0.5


def test_constant_codes_score_zero(identity_factors):
    assert mig(np.zeros(identity_factors.shape), identity_factors)["discrete_mig"] == 0.0


def test_noise_codes_score_near_zero(identity_factors):
    noise = np.random.default_rng(1).normal(size=(3000, 10))
    assert 0.0 <= mig(noise, identity_factors)["discrete_mig"] < 0.02


def test_duplicated_latent_space_scores_zero(identity_factors):
    codes = np.hstack([identity_factors, identity_factors]).astype(float)
    assert mig(codes, identity_factors)["discrete_mig"] == pytest.approx(0.0, abs=1e-12)


def test_a_factor_copied_twice_has_zero_gap(identity_factors):
    codes = identity_factors.astype(float)
    codes[:, 1] = codes[:, 0]  # factor 0 twice, factor 1 nowhere
    per_factor = mig(codes, identity_factors)["mig_per_factor"]
    assert per_factor[0] == pytest.approx(0.0, abs=1e-12)
    assert per_factor[1] < 0.02
    assert min(per_factor[2:]) > 0.9


@pytest.fixture(scope="module")
def mixed():
    """Codes that are noisy mixtures of 4 factors of different sizes, plus two noise dims."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, [3, 6, 12, 20], size=(4000, 4))
    mixing = rng.normal(size=(4, 6)) * [1, 1, 1, 1, 0, 0] + np.eye(4, 6) * 3
    codes = labels / labels.max(axis=0) @ mixing + 0.3 * rng.normal(size=(4000, 6))
    return codes, labels


def test_permuting_code_dimensions_changes_nothing(mixed):
    codes, labels = mixed
    base = mig(codes, labels)
    assert 0.05 < base["discrete_mig"] < 0.95
    for perm in ([5, 4, 3, 2, 1, 0], [2, 0, 5, 1, 3, 4]):
        assert mig(codes[:, perm], labels) == base


def test_rescaling_and_shifting_a_code_dimension_changes_nothing(mixed):
    codes, labels = mixed
    base = mig(codes, labels)
    scaled = codes * [1000.0, 1.0, 0.001, 1.0, 7.0, 1.0] + [0.0, -50.0, 0.0, 3.0, 0.0, 0.0]
    result = mig(scaled, labels)
    assert result["discrete_mig"] == pytest.approx(base["discrete_mig"], abs=1e-12)
    np.testing.assert_allclose(result["mig_per_factor"], base["mig_per_factor"], atol=1e-12)


def test_normalised_by_the_sampled_factor_entropy():
    # factor with unequal class frequencies: entropy is the plug-in one, not log K
    labels = np.repeat([[0], [1], [2]], [60, 30, 10], axis=0)
    labels = np.column_stack([labels, np.tile([0, 1], 50)])
    codes = np.column_stack([labels[:, 0], np.zeros(100), labels[:, 1]]).astype(float)
    per_factor = mig(codes, labels)["mig_per_factor"]
    assert per_factor == pytest.approx([1.0, 1.0])


def test_mig_from_mutual_info_closed_form():
    mi = np.array([[2.0, 0.0], [1.0, 0.5], [0.0, 0.5]])
    np.testing.assert_allclose(mig_from_mutual_info(mi, np.array([2.0, 1.0])), [0.5, 0.0])


def test_bins_matter(identity_factors):
    # 10 values in 5 bins lose information; in 20 bins they do not
    codes = identity_factors.astype(float)
    assert mig(codes, identity_factors, num_bins=5)["discrete_mig"] < 0.8
    assert mig(codes, identity_factors, num_bins=20)["discrete_mig"] > 0.9


def test_float32_codes(identity_factors):
    codes = np.exp(identity_factors / 3.0)
    assert mig(codes.astype(np.float32), identity_factors)["discrete_mig"] == pytest.approx(
        mig(codes, identity_factors)["discrete_mig"], abs=1e-9
    )
