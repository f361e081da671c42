"""Objectives whose penalty is taken on the whole batch (beta-TCVAE, DIP-VAE, AnnealedVAE, FactorVAE).

Such a penalty ``P(z, mean, logvar)`` couples the rows of a batch, so unlike the reconstruction
and the KL it cannot be summed chunk by chunk (``train.micro_batch``) or process by process
(``torchrun``). It is computed on the whole batch instead, in two passes:

1. :meth:`BatchPenaltyObjective.begin_batch`: the encoder runs once over this process's batch,
   without gradients; every process's rows are gathered; ``P`` and its gradient with respect to
   every row's ``(z, mean, logvar)`` are computed on the global batch (small tensors).
2. :meth:`BatchPenaltyObjective.loss`, per chunk: the chunk's forward pass gives the same rows
   with their graph, and the term ``P + L - detach(L)``, with ``L`` the chunk's mean of
   ``N * <dP/d row, row>`` (``N`` rows in the global batch), has the value ``P`` and, weighted
   by the chunks' shares and averaged over the processes, the gradient of ``P`` (the chain
   rule, split by rows).

The update is the one of ``P`` computed on the whole batch at once, up to float rounding, with
or without micro-batches and processes; it costs one more encoder pass (without gradients).
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from sbvae.models import VAE
from sbvae.objectives.base import LossTerms, Objective, elbo_terms


def sample_latents(mean: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The reparameterised sample ``mean + exp(logvar / 2) * noise`` (as the VAE draws it)."""
    return mean + torch.exp(0.5 * logvar) * noise


class BatchPenaltyObjective(Objective):
    """Reconstruction NLL + ``kl_weight`` * KL + a penalty of the whole batch's latents."""

    kl_weight = 1.0
    """The weight of the ELBO's KL term beside the penalty (0 when the penalty holds the KL)."""

    _grads: list[torch.Tensor | None] | None = None
    _value: torch.Tensor
    _logged: dict[str, torch.Tensor]

    @abstractmethod
    def penalty(
        self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The penalty of a batch of posterior samples and parameters (each ``[N, k]``) at
        ``step``, and the terms to log."""

    def begin_batch(self, model: VAE, images: torch.Tensor, noise: torch.Tensor, step: int) -> None:
        with torch.no_grad():
            mean, logvar = model.encoder(images)
            z = sample_latents(mean, logvar, noise)
        rows = [self.runtime.gather(t).detach().clone().requires_grad_() for t in (z, mean, logvar)]
        with torch.enable_grad():
            value, logged = self.penalty(rows[0], rows[1], rows[2], step)
            grads = torch.autograd.grad(value, rows, allow_unused=True)
        own, total = self.runtime.own_rows(len(images)), len(rows[0])
        self._grads = [None if g is None else g[own] * total for g in grads]
        self._value = value.detach()
        self._logged = {key: term.detach() for key, term in logged.items()}

    def loss(
        self, net: nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int, rows: slice | None = None
    ) -> LossTerms:
        if self._grads is None:
            raise RuntimeError("begin_batch() must run before loss()")
        out = net(images, noise)
        recon, kl, kl_dims = elbo_terms(images, out, self.config.likelihood, self.config.sigma)
        chunk = slice(None) if rows is None else rows
        linear = sum(
            ((g[chunk] * x).sum(dim=1) for g, x in zip(self._grads, (out.z, out.mean, out.logvar)) if g is not None),
            torch.zeros_like(out.z[:, 0]),
        ).mean()
        penalty = self._value + linear - linear.detach()
        return LossTerms(recon + self.kl_weight * kl + penalty, recon, kl, kl_dims, self._logged)
