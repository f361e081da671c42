"""FactorVAE and BetaVAE scores on encoders whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbvae.data import make_dataset
from sbvae.evaluation.metrics.beta_vae import beta_vae_score
from sbvae.evaluation.metrics.factor_vae import factor_vae_score

FACTORS = make_dataset("colored_sprites", 32).factors
NUM_FACTORS = len(FACTORS.names)  # 8
SMALL = {"num_train": 400, "num_eval": 300}


def true_factors(values: torch.Tensor) -> np.ndarray:
    """An ideal encoder: the factor labels themselves, scaled differently, plus small noise."""
    labels = FACTORS.labels(values).numpy().astype(float) * np.arange(1, NUM_FACTORS + 1)
    return labels + 0.01 * np.random.default_rng(len(values)).standard_normal(labels.shape)


def noise(values: torch.Tensor) -> np.ndarray:
    return np.random.default_rng(int(values.sum() * 1000) % 2**32).standard_normal((len(values), 6))


def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_factor_vae_score_is_one_on_the_true_factors():
    result = factor_vae_score(
        FACTORS.sample, true_factors, generator(), NUM_FACTORS, num_variance_estimate=2000, **SMALL
    )
    assert result["train_accuracy"] == 1.0 and result["eval_accuracy"] == 1.0
    assert result["num_active_dims_actual"] == NUM_FACTORS


def test_factor_vae_score_is_chance_on_noise():
    result = factor_vae_score(FACTORS.sample, noise, generator(), NUM_FACTORS, num_variance_estimate=2000, **SMALL)
    # 6 codes, 8 factors: the majority vote can be right for at most 6 of 8 factors by luck
    assert result["eval_accuracy"] < 0.3


def test_factor_vae_prunes_dimensions_below_the_threshold():
    def with_dead_dim(values: torch.Tensor) -> np.ndarray:
        codes = true_factors(values)
        codes[:, 0] = 0.001 * codes[:, 0]  # std well below 0.05
        return codes

    result = factor_vae_score(
        FACTORS.sample, with_dead_dim, generator(), NUM_FACTORS, num_variance_estimate=2000, **SMALL
    )
    assert result["num_active_dims_actual"] == NUM_FACTORS - 1
    assert result["num_active_dims"] == NUM_FACTORS  # disentanglement_lib's quirk, kept
    assert result["eval_accuracy"] < 1.0  # the pruned factor can no longer be voted for


def test_factor_vae_without_active_dims_scores_zero():
    result = factor_vae_score(
        FACTORS.sample, lambda v: np.zeros((len(v), 4)), generator(), NUM_FACTORS, num_variance_estimate=100, **SMALL
    )
    assert result["eval_accuracy"] == 0.0


def test_beta_vae_score_is_one_on_the_true_factors():
    result = beta_vae_score(FACTORS.sample, true_factors, generator(), NUM_FACTORS, **SMALL)
    assert result["train_accuracy"] == 1.0 and result["eval_accuracy"] == 1.0


def test_beta_vae_score_is_near_chance_on_noise():
    result = beta_vae_score(FACTORS.sample, noise, generator(), NUM_FACTORS, **SMALL)
    assert result["eval_accuracy"] < 0.3  # chance is 1/8


def test_sampler_scores_refuse_nan_codes():
    with pytest.raises(ValueError, match="NaN"):
        factor_vae_score(
            FACTORS.sample,
            lambda v: np.full((len(v), 3), np.nan),
            generator(),
            NUM_FACTORS,
            num_variance_estimate=100,
            **SMALL,
        )
