"""beta-TCVAE (Chen, Li, Grosse, Duvenaud 2018, "Isolating Sources of Disentanglement in VAEs").

The KL of the ELBO splits into index-code mutual information, total correlation (TC) and
dimension-wise KL; beta-TCVAE weighs the TC by ``beta``. With the other two weights at 1 (as
disentanglement_lib trains it) the loss is the negative ELBO plus ``(beta - 1) * TC``. The TC
here keeps the constant ``(k - 1) log M`` (see :func:`total_correlation`), so the loss is
``(beta - 1)(k - 1) log M`` above disentanglement_lib's, with the same gradient.
"""

from __future__ import annotations

import math

import torch

from sbvae.objectives.base import hyperparameter
from sbvae.objectives.batch import BatchPenaltyObjective

TERMS = {"tc": "total correlation estimate (nats)"}
"""What beta-TCVAE logs beside the ELBO's terms."""


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(x; mean, exp(logvar))`` elementwise (broadcasting)."""
    return -0.5 * ((x - mean) ** 2 * torch.exp(-logvar) + logvar + math.log(2 * math.pi))


def total_correlation(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The total correlation ``E[log q(z) - sum_l log q(z_l)]`` of the batch's aggregate
    posterior ``q(z) = (1/M) sum_i q(z | x_i)``, estimated at the batch's samples ``z`` ``[M, k]``
    of the Gaussian posteriors ``(mean, logvar)`` ``[M, k]``.

    Chen et al.'s minibatch-weighted sampling, with the batch itself standing for the data: the
    density of every sample under every row's posterior, mixed over the rows, for the joint and
    for each latent alone. disentanglement_lib drops the constant ``(k - 1) log M``, which does not
    change the gradient; with it the estimate approaches the TC of ``q(z)`` as ``M`` grows.
    """
    m = len(z)
    log_q = gaussian_log_density(z[:, None, :], mean[None], logvar[None])  # [j, i, l]: log q(z_jl | x_i)
    log_joint = torch.logsumexp(log_q.sum(dim=2), dim=1) - math.log(m)  # log q(z_j)
    log_marginals = (torch.logsumexp(log_q, dim=1) - math.log(m)).sum(dim=1)  # sum_l log q(z_jl)
    return (log_joint - log_marginals).mean()


class BetaTCVAE(BatchPenaltyObjective):
    """Reconstruction NLL + KL + ``(beta - 1)`` * TC, the TC estimated on the whole batch."""

    def penalty(
        self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        tc = total_correlation(z, mean, logvar)
        return (hyperparameter(self.config, "beta") - 1) * tc, {"tc": tc}
