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
    """beta-VAE, with the KL weight rising linearly from 0 to ``beta`` over ``kl_warmup`` steps."""

    def kl_weight(self, step: int) -> float:
        """Beta at ``step``: ``beta * (step + 1) / kl_warmup`` during the warm-up, then ``beta``."""
        warmup, beta = int(hyperparameter(self.config, "kl_warmup")), hyperparameter(self.config, "beta")
        return beta * min(1.0, (step + 1) / warmup) if warmup else beta

    def loss(
        self, net: nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int, rows: slice | None = None
    ) -> LossTerms:
        c = self.config
        return vae_loss(images, net(images, noise), c.likelihood, c.sigma, self.kl_weight(step))
