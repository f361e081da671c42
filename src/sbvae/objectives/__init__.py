"""Objectives: what training minimises. Each implements :class:`Objective`; ``objective.name``
picks one (see :data:`sbvae.config.OBJECTIVES` for their hyperparameters and defaults)."""

from sbvae.config import ObjectiveConfig
from sbvae.objectives import annealed_vae, beta_tcvae, dip_vae, factor_vae
from sbvae.objectives.annealed_vae import AnnealedVAE, capacity
from sbvae.objectives.base import (
    ACTIVE_KL,
    LossTerms,
    Objective,
    Runtime,
    elbo_terms,
    kl_per_dimension,
    reconstruction_nll,
    to_image,
)
from sbvae.objectives.beta_tcvae import BetaTCVAE, total_correlation
from sbvae.objectives.beta_vae import BetaVAE, vae_loss
from sbvae.objectives.dip_vae import DIPVAE
from sbvae.objectives.factor_vae import FactorVAE, permute_dims

OBJECTIVE_CLASSES: dict[str, type[Objective]] = {
    "beta_vae": BetaVAE,
    "factor_vae": FactorVAE,
    "beta_tcvae": BetaTCVAE,
    "dip_vae_i": DIPVAE,
    "dip_vae_ii": DIPVAE,
    "annealed_vae": AnnealedVAE,
}

TERMS: dict[str, str] = {**factor_vae.TERMS, **beta_tcvae.TERMS, **dip_vae.TERMS, **annealed_vae.TERMS}
"""Every term a method logs beside the ELBO's (loss, recon, kl, kl_per_dim), with what it is."""


def make_objective(config: ObjectiveConfig, runtime: Runtime) -> Objective:
    """The objective ``config`` names, set up for ``runtime``."""
    objective = OBJECTIVE_CLASSES[config.name](config)
    objective.setup(runtime)
    return objective


def validation_kl_weight(config: ObjectiveConfig) -> float:
    """The KL weight of the loss reported on fixed images: beta-VAE's ``beta`` (without its
    warm-up), 1 for the other methods, whose penalties need a training batch or a
    discriminator, so their reported loss is the negative ELBO."""
    return float(config.beta) if config.name == "beta_vae" and config.beta is not None else 1.0


__all__ = [
    "ACTIVE_KL",
    "DIPVAE",
    "OBJECTIVE_CLASSES",
    "TERMS",
    "AnnealedVAE",
    "BetaTCVAE",
    "BetaVAE",
    "FactorVAE",
    "LossTerms",
    "Objective",
    "Runtime",
    "capacity",
    "elbo_terms",
    "kl_per_dimension",
    "make_objective",
    "permute_dims",
    "reconstruction_nll",
    "to_image",
    "total_correlation",
    "vae_loss",
    "validation_kl_weight",
]
