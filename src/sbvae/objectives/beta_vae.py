"""The beta-VAE objective (Higgins et al. 2017): reconstruction NLL + beta * KL(q(z|x) || N(0, I))."""

from __future__ import annotations

import torch

from sbvae.models import VAEOutput
from sbvae.objectives.base import (
    LossTerms,
    Objective,
    kl_per_dimension,
    reconstruction_nll,
)


def vae_loss(
    images: torch.Tensor, out: VAEOutput, likelihood: str = "gaussian", sigma: float = 0.1, beta: float = 1.0
) -> LossTerms:
    """The beta-VAE loss of one batch (beta = 1 is the plain negative ELBO)."""
    recon = reconstruction_nll(images, out.decoded, likelihood, sigma).mean()
    kl_dims = kl_per_dimension(out.mean, out.logvar).mean(dim=0)
    kl = kl_dims.sum()
    return LossTerms(recon + beta * kl, recon, kl, kl_dims)


class BetaVAE(Objective):
    """beta-VAE, with the KL weight rising linearly from 0 to ``beta`` over ``kl_warmup`` steps."""

    def kl_weight(self, step: int) -> float:
        """Beta at ``step``: ``beta * (step + 1) / kl_warmup`` during the warm-up, then ``beta``."""
        warmup, beta = self.config.kl_warmup, self.config.beta
        return beta * min(1.0, (step + 1) / warmup) if warmup else beta

    def loss(self, net: torch.nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int) -> LossTerms:
        c = self.config
        return vae_loss(images, net(images, noise), c.likelihood, c.sigma, self.kl_weight(step))
