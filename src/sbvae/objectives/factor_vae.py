"""FactorVAE (Kim and Mnih 2018, "Disentangling by Factorising").

The negative ELBO plus ``gamma`` times the total correlation of ``q(z)``, estimated by a
discriminator that tells codes drawn from ``q(z)`` from codes whose dimensions were shuffled
independently across the batch (``permute_dims``, which samples the product of the marginals):
with ``D`` the probability of "drawn from q(z)", ``TC ~ E[log D / (1 - D)]``, the difference
of the two logits. The discriminator (Kim and Mnih's appendix A: six hidden layers of 1,000
units with leaky ReLU, two logits) trains by its own Adam (lr 1e-4, betas 0.5 and 0.9, as in
disentanglement_lib's study) to classify the two kinds.

Which codes the discriminator sees: those of the VAE's own batch and their permutation (as
disentanglement_lib does), not a second batch (as Kim and Mnih's Algorithm 2 does), which would
cost a second encoder pass each step for little gain: the permuted codes are still a sample of
the product of the marginals, only not independent of the real ones.

How a step runs (the two passes of :mod:`sbvae.objectives.batch`): before the VAE's chunks,
the encoder runs once over the batch without gradients; one discriminator pass over those
codes and their permutation (every process's rows gathered, then permuted alike everywhere)
gives the discriminator's loss, backpropagated into its weights, and, through the same pass
with the weights held fixed, the gradient of the TC estimate with respect to each code, which
each chunk's loss then carries into the encoder. Both updates so use the discriminator as it
was before the step (as disentanglement_lib does), micro-batches and processes give the same
step as one batch, and the discriminator's large layers run once per step on the whole batch
instead of once per chunk.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sbvae.data import make_generator
from sbvae.models import VAE
from sbvae.objectives.base import Runtime, hyperparameter
from sbvae.objectives.batch import BatchPenaltyObjective, sample_latents

HIDDEN_UNITS = 1000
HIDDEN_LAYERS = 6
LEAKY_SLOPE = 0.2  # TensorFlow's leaky_relu default, which disentanglement_lib's discriminator uses
LEARNING_RATE = 1e-4
ADAM_BETAS = (0.5, 0.9)
TERMS = {
    "tc": "total correlation estimate (nats)",
    "disc_loss": "discriminator's cross-entropy (nats)",
    "disc_accuracy": "discriminator's accuracy",
}
"""What FactorVAE logs beside the ELBO's terms."""
SLOPE_FLOOR = 1e-20
"""Below this sigmoid of a code's logit gap, its TC gradient is not recovered from the
cross-entropy's backward (float32 products would near underflow) but taken on its own."""


class Discriminator(nn.Sequential):
    """Codes ``[N, k]`` -> two logits ``[N, 2]``: class 0 "drawn from q(z)", class 1 "permuted"."""

    def __init__(self, latent_dim: int, hidden: int = HIDDEN_UNITS, layers: int = HIDDEN_LAYERS) -> None:
        stack: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            stack += [nn.Linear(width, hidden), nn.LeakyReLU(LEAKY_SLOPE)]
            width = hidden
        super().__init__(*stack, nn.Linear(width, 2))


def permute_dims(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``z`` ``[N, k]`` with each column shuffled across the rows by its own random permutation."""
    order = torch.argsort(torch.rand(z.shape, generator=generator), dim=0).to(z.device)
    return z.gather(0, order)


def tc_estimate(logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's total-correlation estimate: the batch mean of ``logit_0 - logit_1``."""
    return (logits[:, 0] - logits[:, 1]).mean()


class FactorVAE(BatchPenaltyObjective):
    """Reconstruction NLL + KL + ``gamma`` * the discriminator's TC estimate."""

    discriminator: Discriminator

    def setup(self, runtime: Runtime) -> None:
        super().setup(runtime)
        self.discriminator = Discriminator(runtime.latent_dim).to(runtime.device)
        self.trained = runtime.wrap(self.discriminator)  # what the discriminator's own update calls
        fused = runtime.device.type in ("cpu", "cuda")  # one kernel for the update of ~5M weights
        self.optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=LEARNING_RATE, betas=ADAM_BETAS, fused=fused
        )
        self.permute_rng = make_generator(runtime.seed, "factor_vae-permute")

    def modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def penalty(
        self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``gamma`` times the TC estimate of ``z``, the discriminator's weights held fixed."""
        fixed = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        tc = tc_estimate(torch.func.functional_call(self.discriminator, fixed, (z,)))
        return hyperparameter(self.config, "gamma") * tc, {"tc": tc}

    def begin_batch(self, model: VAE, images: torch.Tensor, noise: torch.Tensor, step: int) -> None:
        with torch.no_grad():
            mean, logvar = model.encoder(images)
            codes = sample_latents(mean, logvar, noise)
        self.optimizer.zero_grad(set_to_none=True)
        tc_grad, logged = self.discriminator_backward(codes)
        gamma = hyperparameter(self.config, "gamma")
        self._grads = [gamma * tc_grad, None, None]
        self._value = gamma * logged["tc"]
        self._logged = logged

    def discriminator_backward(self, codes: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One discriminator pass over this process's ``codes`` (class 0) and its rows of the
        whole batch's permuted codes (class 1): backpropagates the cross-entropy of telling them
        apart into the discriminator's weights, and returns the gradient of each code's TC
        estimate (its logit gap) with respect to the code, weights fixed, with the terms to log:
        the codes' mean TC estimate, the cross-entropy and the accuracy.

        Both gradients come from one backward pass. The cross-entropy of two logits is a
        softplus of their gap, so its gradient with respect to a row's logits is a scalar
        ``slope`` times ``(1, -1)``, the gap's own gradient; and each row's backward through the
        network is linear in that row's upstream gradient alone. A code's gradient in that pass
        is therefore ``slope`` times the gradient of its gap, which is divided back out. Where
        the discriminator is so sure of a code that its slope nears float underflow, the gap's
        gradient is taken by a separate pass instead.
        """
        codes = codes.detach().requires_grad_()
        permuted = permute_dims(self.runtime.gather(codes.detach()), self.permute_rng)
        permuted = permuted[self.runtime.own_rows(len(codes))]
        logits = self.trained(torch.cat([codes, permuted]))
        n = len(codes)
        gap = logits[:, 0] - logits[:, 1]  # log D / (1 - D) per row: the TC estimate of a code row
        signs = torch.cat([torch.ones(n), -torch.ones(n)]).to(gap)  # +1 for codes (class 0), -1 permuted
        loss = F.softplus(-signs * gap).mean()  # the cross-entropy of the two logits
        slope = (-signs * torch.sigmoid(-signs * gap) / (2 * n)).detach()  # d loss / d gap, row by row
        exact = None
        if bool((slope[:n].abs() * 2 * n < SLOPE_FLOOR).any()):  # rare: a code the discriminator is sure of
            (exact,) = torch.autograd.grad(gap[:n].sum(), codes, retain_graph=True)
        logits.backward(torch.stack([slope, -slope], dim=1), inputs=[*self.discriminator.parameters(), codes])
        assert codes.grad is not None
        tc_grad = exact if exact is not None else codes.grad / slope[:n, None]
        labels = torch.cat([torch.zeros(n), torch.ones(n)]).long().to(logits.device)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return tc_grad, {"tc": gap[:n].mean().detach(), "disc_loss": loss.detach(), "disc_accuracy": accuracy}

    def apply_updates(self) -> None:
        self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "permute_rng": self.permute_rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.permute_rng.set_state(state["permute_rng"])
