"""What every objective shares: loss terms, the likelihoods, the analytic KL, the interface.

Losses are in nats per image. The Gaussian likelihood has a fixed, explicit ``sigma`` and
includes its normalising constant, so its NLL is a true negative log-density in nats. The
Bernoulli likelihood treats the decoder output as logits (binary cross-entropy; for pixels
strictly between 0 and 1 this is a cross-entropy, not a normalised density).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from sbvae.config import ObjectiveConfig

ACTIVE_KL = 0.1
"""A latent whose mean KL (nats) is below this counts as inactive."""


class LossTerms(NamedTuple):
    """Batch means in nats per image; ``kl_per_dim`` is ``[k]``."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor


def reconstruction_nll(images: torch.Tensor, decoded: torch.Tensor, likelihood: str, sigma: float) -> torch.Tensor:
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


def to_image(decoded: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Turn decoder output into a displayable image in [0, 1] (the likelihood's mean)."""
    if likelihood == "bernoulli":
        return torch.sigmoid(decoded)
    return decoded.clamp(0, 1)


class Objective(ABC):
    """What training minimises. Given the network the training step calls (the VAE, or its
    DistributedDataParallel wrapper), a batch, its reparameterisation noise and the step
    number, :meth:`loss` returns the batch's loss terms in nats per image.

    An objective may own trainable modules of its own (a FactorVAE discriminator): it returns
    them from :meth:`modules` and keeps their optimizers; :meth:`state_dict` and
    :meth:`load_state_dict` carry both through checkpoints so that a resume is exact.
    """

    def __init__(self, config: ObjectiveConfig) -> None:
        self.config = config

    @abstractmethod
    def loss(self, net: torch.nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int) -> LossTerms:
        """The loss terms of one batch at training step ``step`` (0 for the first)."""

    def modules(self) -> dict[str, torch.nn.Module]:
        """Trainable modules the objective owns besides the VAE (none by default)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint must hold to resume the objective exactly."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
