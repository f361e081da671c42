"""DIP-VAE (Kumar, Sattigeri, Balakrishnan 2018, "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", eqs. 6 and 7).

The negative ELBO plus a penalty that pushes the covariance of the aggregate posterior towards
the identity: ``lambda_od`` times the squared off-diagonal entries and ``lambda_d_factor *
lambda_od`` times the squared deviations of the diagonal from 1. DIP-VAE-I takes the covariance
of the posterior means, DIP-VAE-II that of the whole posterior (the means' covariance plus the
mean posterior variance), both over the batch.
"""

from __future__ import annotations

import torch

from sbvae.objectives.base import hyperparameter
from sbvae.objectives.batch import BatchPenaltyObjective

TERMS = {
    "cov_off_diag": "latent covariance: sum of squared off-diagonal entries",
    "cov_diag": "latent covariance: sum of squared (diagonal - 1)",
}
"""What DIP-VAE logs beside the ELBO's terms (unweighted)."""


def batch_covariance(x: torch.Tensor) -> torch.Tensor:
    """``E[x x^T] - E[x] E[x]^T`` over the rows of ``x`` ``[M, k]`` (normalised by M)."""
    centred = x - x.mean(dim=0)
    return centred.T @ centred / len(x)


def posterior_covariance(mean: torch.Tensor, logvar: torch.Tensor, kind: str) -> torch.Tensor:
    """The covariance DIP-VAE-I (``kind`` "i": of the means) or -II ("ii": of the posterior) penalises."""
    covariance = batch_covariance(mean)
    if kind == "ii":
        covariance = covariance + torch.diag(logvar.exp().mean(dim=0))
    return covariance


def off_diagonal_and_diagonal(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sum of the squared off-diagonal entries, and of the squared deviations of the diagonal from 1."""
    diagonal = torch.diagonal(covariance)
    return (covariance**2).sum() - (diagonal**2).sum(), ((diagonal - 1) ** 2).sum()


class DIPVAE(BatchPenaltyObjective):
    """DIP-VAE-I (``objective.name=dip_vae_i``) or DIP-VAE-II (``dip_vae_ii``)."""

    @property
    def kind(self) -> str:
        return "ii" if self.config.name == "dip_vae_ii" else "i"

    def penalty(
        self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        off, diag = off_diagonal_and_diagonal(posterior_covariance(mean, logvar, self.kind))
        lambda_od = hyperparameter(self.config, "lambda_od")
        lambda_d = hyperparameter(self.config, "lambda_d_factor") * lambda_od
        return lambda_od * off + lambda_d * diag, {"cov_off_diag": off, "cov_diag": diag}
