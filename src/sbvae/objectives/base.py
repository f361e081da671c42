"""What every objective shares: loss terms, the likelihoods, the analytic KL, the interface.

Losses are in nats per image. The Gaussian likelihood has a fixed, explicit ``sigma`` and
includes its normalising constant, so its NLL is a true negative log-density in nats. The
Bernoulli likelihood treats the decoder output as logits (binary cross-entropy; for pixels
strictly between 0 and 1 this is a cross-entropy, not a normalised density).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sbvae.config import ObjectiveConfig
from sbvae.models import VAE, VAEOutput

ACTIVE_KL = 0.1
"""A latent whose mean KL (nats) is below this counts as inactive."""

NO_TERMS: Mapping[str, torch.Tensor] = MappingProxyType({})


class LossTerms(NamedTuple):
    """Batch means in nats per image; ``kl_per_dim`` is ``[k]``; ``extra`` holds the method's
    own terms by name (scalars: its penalty, a discriminator's loss and accuracy), empty for
    beta-VAE."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor
    extra: Mapping[str, torch.Tensor] = NO_TERMS

    def named(self) -> dict[str, torch.Tensor]:
        """Every term by name, in the order they are logged: loss, recon, kl, kl_per_dim, extra."""
        return {"loss": self.loss, "recon": self.recon, "kl": self.kl, "kl_per_dim": self.kl_per_dim, **self.extra}

    def warmed_up(self, weight: float) -> LossTerms:
        """The same terms with the regulariser (everything the loss adds to the reconstruction
        NLL) weighed by ``weight``: the loss the KL warm-up trains on (unchanged at 1)."""
        if weight == 1.0:
            return self
        return self._replace(loss=self.recon + weight * (self.loss - self.recon))

    @classmethod
    def from_named(cls, terms: Mapping[str, torch.Tensor]) -> LossTerms:
        """The inverse of :meth:`named`."""
        extra = MappingProxyType({k: v for k, v in terms.items() if k not in ("loss", "recon", "kl", "kl_per_dim")})
        return cls(terms["loss"], terms["recon"], terms["kl"], terms["kl_per_dim"], extra)


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


def elbo_terms(
    images: torch.Tensor, out: VAEOutput, likelihood: str, sigma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The negative ELBO's batch means: reconstruction NLL, KL, and the KL of each latent ``[k]``."""
    recon = reconstruction_nll(images, out.decoded, likelihood, sigma).mean()
    kl_dims = kl_per_dimension(out.mean, out.logvar).mean(dim=0)
    return recon, kl_dims.sum(), kl_dims


def to_image(decoded: torch.Tensor, likelihood: str) -> torch.Tensor:
    """Turn decoder output into a displayable image in [0, 1] (the likelihood's mean)."""
    if likelihood == "bernoulli":
        return torch.sigmoid(decoded)
    return decoded.clamp(0, 1)


def _same(module: nn.Module) -> nn.Module:
    return module


def _own(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


@dataclass(frozen=True)
class Runtime:
    """Where an objective trains and among which processes: what the Trainer hands to
    :meth:`Objective.setup`. ``gather`` concatenates every process's rows in rank order (the
    rows themselves on one process); ``wrap`` makes a module of the objective train across the
    processes (DistributedDataParallel; the module itself on one process)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    latent_dim: int = 10
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    gather: Callable[[torch.Tensor], torch.Tensor] = _own
    wrap: Callable[[nn.Module], nn.Module] = _same

    def own_rows(self, rows_per_process: int) -> slice:
        """This process's rows of a gathered batch."""
        return slice(self.rank * rows_per_process, (self.rank + 1) * rows_per_process)


class Objective(ABC):
    """What training minimises. One training step of the Trainer calls, in order:

    1. :meth:`begin_batch` with the VAE and this process's whole batch (its images and
       reparameterisation noise), before any gradient: an objective whose penalty is a
       statistic of the batch computes it here (see :mod:`sbvae.objectives.batch`), and a
       FactorVAE its discriminator's gradients;
    2. :meth:`loss` once per chunk of that batch (``train.micro_batch``; one chunk without it),
       with the network the step calls (the VAE, or its DistributedDataParallel wrapper) and
       the chunk's ``rows`` of the batch; the Trainer backpropagates each chunk's loss, weighted
       by the chunk's share of the batch, into the VAE;
    3. :meth:`end_batch`: after every chunk's backward, the terms to log beside the loss's;
    4. after the VAE's optimizer step, :meth:`apply_updates`: the objective's own optimizers.

    An objective may own trainable modules (returned by :meth:`modules`, built in :meth:`setup`
    on the Runtime's device) and keeps their optimizers; :meth:`state_dict` and
    :meth:`load_state_dict` carry both through checkpoints so that a resume is exact.
    """

    def __init__(self, config: ObjectiveConfig) -> None:
        self.config = config
        self.runtime = Runtime()

    def setup(self, runtime: Runtime) -> None:
        """Place the objective (and build any module it owns) for ``runtime``."""
        self.runtime = runtime

    def regulariser_weight(self, step: int) -> float:
        """The KL warm-up's weight of the regulariser at ``step`` (0 for the first):
        ``(step + 1) / kl_warmup`` during the warm-up, then 1 (always 1 without one). The
        Trainer applies it to every chunk's loss (:meth:`LossTerms.warmed_up`)."""
        warmup = self.config.kl_warmup or 0
        return min(1.0, (step + 1) / warmup) if warmup else 1.0

    def begin_batch(self, model: VAE, images: torch.Tensor, noise: torch.Tensor, step: int) -> None:
        """Before the first chunk of a step: this process's whole batch (nothing by default)."""

    @abstractmethod
    def loss(
        self, net: nn.Module, images: torch.Tensor, noise: torch.Tensor, step: int, rows: slice | None = None
    ) -> LossTerms:
        """The loss terms of one chunk (rows ``rows`` of the batch, all of it if None) at
        training step ``step`` (0 for the first)."""

    def end_batch(self, step: int) -> dict[str, torch.Tensor]:
        """After every chunk's backward: the gradients of the objective's own modules, and the
        terms to log (none by default)."""
        return {}

    def apply_updates(self) -> None:
        """Step the objective's own optimizers (after the VAE's)."""

    def modules(self) -> dict[str, nn.Module]:
        """Trainable modules the objective owns besides the VAE (none by default)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint must hold to resume the objective exactly."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def hyperparameter(config: ObjectiveConfig, key: str) -> float:
    """One of the method's own hyperparameters (filled with its default by the config)."""
    value = getattr(config, key)
    if value is None:  # pragma: no cover - ObjectiveConfig fills every key of its method
        raise ValueError(f"objective.{key} is not set for {config.name}")
    return float(value)
