"""The (beta-)VAE objective in nats per image.

loss = reconstruction NLL summed over pixels + beta * KL(q(z|x) || N(0, I)), averaged over
the batch. The Gaussian likelihood has a fixed, explicit ``sigma`` and includes its
normalising constant, so its NLL is a true negative log-density in nats. The Bernoulli
likelihood treats the decoder output as logits (binary cross-entropy; for pixels strictly
between 0 and 1 this is a cross-entropy, not a normalised density).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from sbvae.models import VAEOutput


class LossTerms(NamedTuple):
    """Batch means in nats per image; ``kl_per_dim`` is ``[k]``."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor


def reconstruction_nll(images: torch.Tensor, decoded: torch.Tensor, likelihood: str,
                       sigma: float) -> torch.Tensor:
    """Per-image negative log-likelihood ``[N]``, summed over pixels and channels."""
    if likelihood == "gaussian":
        per_pixel = 0.5 * ((images - decoded) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    elif likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(decoded, images, reduction="none")
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}")
    return per_pixel.flatten(1).sum(dim=1)


def kl_per_dimension(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL of each latent to N(0, 1), ``[N, k]``."""
    return 0.5 * (mean**2 + logvar.exp() - 1 - logvar)


def vae_loss(images: torch.Tensor, out: VAEOutput, likelihood: str = "gaussian",
             sigma: float = 0.1, beta: float = 1.0) -> LossTerms:
    """The beta-VAE loss of one batch (beta = 1 is the plain negative ELBO)."""
    recon = reconstruction_nll(images, out.decoded, likelihood, sigma).mean()
    kl_dims = kl_per_dimension(out.mean, out.logvar).mean(dim=0)
    kl = kl_dims.sum()
    return LossTerms(recon + beta * kl, recon, kl, kl_dims)


def to_image(decoded: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Turn decoder output into a displayable image in [0, 1] (the likelihood's mean)."""
    if likelihood == "bernoulli":
        return torch.sigmoid(decoded)
    return decoded.clamp(0, 1)
