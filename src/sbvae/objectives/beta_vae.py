"""The beta-VAE objective (Higgins et al. 2017): reconstruction NLL + beta * KL(q(z|x) || N(0, I))."""

from __future__ import annotations

import torch
from torch import nn

from sbvae.models import VAEOutput
from sbvae.objectives.base import LossTerms, Objective, elbo_terms, hyperparameter


def vae_loss(
    images: torch.Tensor, out: VAEOutput, likelihood: str = "gaussian", sigma: float = 0.1, beta: float = 1.0
) -> LossTerms:
    """The beta-VAE loss of one batch (beta = 1 is the plain negative ELBO)."""
    recon, kl, kl_dims = elbo_terms(images, out, likelihood, sigma)
    return LossTerms(recon + beta * kl, recon, kl, kl_dims)


class BetaVAE(Objective):
    """beta-VAE (its KL weight rises from 0 to ``beta`` during a KL warm-up, as every method's
    regulariser does: :meth:`Objective.regulariser_weight`)."""

    def loss(
        self, net: nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int, rows: slice | None = None
    ) -> LossTerms:
        c = self.config
        return vae_loss(images, net(images, noise), c.likelihood, c.sigma, hyperparameter(c, "beta"))
