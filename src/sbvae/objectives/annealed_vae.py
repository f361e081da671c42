"""AnnealedVAE (Burgess et al. 2018, "Understanding disentangling in beta-VAE", eq. 8).

The reconstruction NLL plus ``gamma * |KL - C|``: the KL is held near a capacity ``C`` that
rises linearly from 0 to ``c_max`` nats over ``c_steps`` steps, so the latents take in
information a little at a time. The KL is the batch mean, as in disentanglement_lib.
"""

from __future__ import annotations

import torch

from sbvae.objectives.base import hyperparameter, kl_per_dimension
from sbvae.objectives.batch import BatchPenaltyObjective

TERMS = {"capacity": "capacity C (nats)"}
"""What AnnealedVAE logs beside the ELBO's terms."""


def capacity(step: int, c_max: float, c_steps: int) -> float:
    """C at ``step`` (0 for the first): ``c_max * step / c_steps``, then ``c_max``."""
    return c_max * min(1.0, step / c_steps)


class AnnealedVAE(BatchPenaltyObjective):
    """Reconstruction NLL + ``gamma * |KL - C(step)|``."""

    kl_weight = 0.0

    def capacity(self, step: int) -> float:
        return capacity(step, hyperparameter(self.config, "c_max"), int(hyperparameter(self.config, "c_steps")))

    def penalty(
        self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kl = kl_per_dimension(mean, logvar).sum(dim=1).mean()
        c = self.capacity(step)
        return hyperparameter(self.config, "gamma") * (kl - c).abs(), {"capacity": torch.tensor(c, device=kl.device)}
