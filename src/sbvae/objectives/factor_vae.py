"""FactorVAE (Kim and Mnih 2018, "Disentangling by Factorising").

The negative ELBO plus ``gamma`` times the total correlation of ``q(z)``, estimated by a
discriminator that tells codes drawn from ``q(z)`` from codes whose dimensions were shuffled
independently across the batch (``permute_dims``, which samples the product of the marginals):
with ``D`` the probability of "drawn from q(z)", ``TC ~ E[log D / (1 - D)]``, the difference
of the two logits. The discriminator (Kim and Mnih's appendix A: six hidden layers of 1,000
units with leaky ReLU, two logits) trains by its own Adam (lr 1e-4, betas 0.5 and 0.9, as in
disentanglement_lib's study) to classify the two kinds.

Which codes the discriminator sees: those of the VAE's own batch, detached, and their
permutation (as disentanglement_lib does), not a second batch (as Kim and Mnih's Algorithm 2
does). A second batch would cost a second encoder pass each step for little gain: the
permuted codes are still a sample of the product of the marginals, only not independent of the
real ones. Both updates use the discriminator as it was before the step (as disentanglement_lib
does): the VAE's loss uses its TC estimate with its weights held fixed, and its own update
comes after every chunk's backward, on the whole batch (all processes' rows gathered, then
permuted alike everywhere), so micro-batches and processes give the same step as one batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sbvae.data import make_generator
from sbvae.models import VAE
from sbvae.objectives.base import LossTerms, Objective, Runtime, elbo_terms, hyperparameter

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


class FactorVAE(Objective):
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
        self._codes: list[torch.Tensor] = []

    def modules(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def begin_batch(self, model: VAE, images: torch.Tensor, noise: torch.Tensor, step: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._codes = []

    def loss(
        self, net: nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int, rows: slice | None = None
    ) -> LossTerms:
        out = net(images, noise)
        recon, kl, kl_dims = elbo_terms(images, out, self.config.likelihood, self.config.sigma)
        fixed = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        tc = tc_estimate(torch.func.functional_call(self.discriminator, fixed, (out.z,)))
        self._codes.append(out.z.detach())
        loss = recon + kl + hyperparameter(self.config, "gamma") * tc
        return LossTerms(loss, recon, kl, kl_dims, {"tc": tc.detach()})

    def end_batch(self, step: int) -> dict[str, torch.Tensor]:
        codes = torch.cat(self._codes)
        self._codes = []
        return self.discriminator_backward(codes)

    def discriminator_backward(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backpropagate the discriminator's loss, the cross-entropy of telling this process's
        ``codes`` (class 0) from its rows of the whole batch's permuted codes (class 1), into its
        weights; returns that loss and the accuracy."""
        permuted = permute_dims(self.runtime.gather(codes), self.permute_rng)[self.runtime.own_rows(len(codes))]
        logits = self.trained(torch.cat([codes, permuted]))
        labels = torch.cat([torch.zeros(len(codes)), torch.ones(len(codes))]).long().to(logits.device)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"disc_loss": loss.detach(), "disc_accuracy": accuracy}

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
