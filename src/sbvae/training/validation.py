"""The ELBO's terms, the squared error and the active latents of a model on fixed images."""

from __future__ import annotations

from typing import Any

import torch

from sbvae.config import ObjectiveConfig
from sbvae.data import make_generator
from sbvae.models import DECODE_BATCH, VAE, VAEOutput
from sbvae.objectives import ACTIVE_KL, to_image, vae_loss, validation_kl_weight


def forward_in_batches(
    model: VAE, images: torch.Tensor, noise: torch.Tensor, batch_size: int = DECODE_BATCH
) -> VAEOutput:
    """``model(images, noise)`` computed ``batch_size`` rows at a time, so that the decoder's
    activations take the memory of one batch (see :meth:`VAE.decode`)."""
    outputs = [model(part, eps) for part, eps in zip(images.split(batch_size), noise.split(batch_size))]
    return VAEOutput(*(torch.cat(field) for field in zip(*outputs)))


@torch.no_grad()
def elbo_statistics(
    model: VAE, images: torch.Tensor, objective: ObjectiveConfig, seed: int, chunk: int = 256
) -> dict[str, Any]:
    """Mean loss terms over ``images`` with seeded noise (no global RNG consumed), plus
    ``sse``: the per-image sum of squared errors of the reconstruction in [0, 1].

    The terms are the ELBO's for every objective: ``recon``, ``kl`` and ``loss`` = recon + w * kl
    with w beta-VAE's ``beta``, 1 (the negative ELBO) for the other methods (see
    :func:`sbvae.objectives.validation_kl_weight`)."""
    was_training = model.training
    model.eval()
    noise_rng = make_generator(seed, "eval-noise")
    beta = validation_kl_weight(objective)
    totals: list[torch.Tensor] = []
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk]
        noise = torch.randn(len(part), model.encoder.latent_dim, generator=noise_rng).to(part.device)
        out = forward_in_batches(model, part, noise)
        terms = vae_loss(part, out, objective.likelihood, objective.sigma, beta)
        sse = ((to_image(out.decoded, objective.likelihood) - part) ** 2).flatten(1).sum(1).mean()
        scalars = torch.stack([sse, terms.loss, terms.recon, terms.kl])
        totals.append(torch.cat([scalars, terms.kl_per_dim]) * len(part))
    model.train(was_training)
    mean = torch.stack(totals).sum(0) / len(images)
    sse, loss, recon, kl, kl_dims = mean[0], mean[1], mean[2], mean[3], mean[4:]
    return {
        "loss": loss.item(),
        "recon": recon.item(),
        "kl": kl.item(),
        "sse": sse.item(),
        "kl_per_dim": kl_dims.tolist(),
        "active_latents": int((kl_dims > ACTIVE_KL).sum()),
    }
