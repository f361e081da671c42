"""Objectives: what training minimises. Each implements :class:`Objective`."""

from sbvae.config import ObjectiveConfig
from sbvae.objectives.base import (
    ACTIVE_KL,
    LossTerms,
    Objective,
    kl_per_dimension,
    reconstruction_nll,
    to_image,
)
from sbvae.objectives.beta_vae import BetaVAE, vae_loss


def make_objective(config: ObjectiveConfig) -> Objective:
    """The objective ``config`` describes (beta-VAE, the only one so far)."""
    return BetaVAE(config)


__all__ = [
    "ACTIVE_KL",
    "BetaVAE",
    "LossTerms",
    "Objective",
    "kl_per_dimension",
    "make_objective",
    "reconstruction_nll",
    "to_image",
    "vae_loss",
]
