"""Values no run can use are refused in one line before anything is allocated or written."""

from __future__ import annotations

import pytest

from sbvae.config import load_config
from sbvae.errors import ConfigError


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("train.lr=.inf", "train.lr must be a finite number"),
        ("train.lr=.nan", "train.lr must be a finite number"),
        ("objective.sigma=.nan", "objective.sigma must be a finite number"),
        ("objective.beta=.inf", "objective.beta must be a finite number"),
        ("objective.beta=-.inf", "objective.beta must be a finite number"),
        ("train.seed=100000000000000000000000", "train.seed must be in [0, 2147483648)"),
        ("train.threads=100000", "train.threads must be in [0, 1024]"),
        ("model.logvar_bias=-21", "model.logvar_bias must be in [-20, 20]"),
        ("model.logvar_bias=.nan", "model.logvar_bias must be a finite number"),
        ("train.steps=1000000000000000000000000", "train.steps must be at most 1,000,000,000,000"),
    ],
)
def test_non_finite_and_absurd_values_are_refused(override, words):
    with pytest.raises(ConfigError) as caught:
        load_config("default", [override])
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_values_at_the_bounds_are_accepted():
    config = load_config("default", ["train.seed=2147483647", "train.threads=1024", "train.steps=1000000000000"])
    assert (config.train.seed, config.train.threads, config.train.steps) == (2**31 - 1, 1024, 10**12)
