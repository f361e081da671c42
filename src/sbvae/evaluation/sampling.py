"""The thin layer between a model and the metrics: encode ground-truth samples in batches.

Metrics never see a model. They get arrays (codes ``[N, D]``, labels ``[N, K]``) or, for the
sampler-based scores (FactorVAE, BetaVAE), two callables: one that draws factor values and
one that renders and encodes them. Encoding streams in fixed-size batches under
``torch.inference_mode``, so peak memory does not grow with the number of samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from sbvae.data import GroundTruthDataset, require_ground_truth
from sbvae.models import VAE

Representation = Literal["mean", "sampled"]
SampleValues = Callable[[int, torch.Generator], torch.Tensor]
"""``(n, generator) -> [n, K]`` float64 factor values."""
EncodeValues = Callable[[torch.Tensor], np.ndarray]
"""``[n, K]`` factor values -> ``[n, D]`` codes (renders, then encodes)."""


@dataclass
class GroundTruthSampler:
    """Draws factors from ``dataset``, renders them on ``device`` and encodes them with ``model``.

    ``representation`` is the posterior mean (what papers report, the default) or one sample
    ``mean + exp(logvar / 2) * eps`` with ``eps`` from ``noise_seed``.
    """

    dataset: GroundTruthDataset
    model: VAE
    device: torch.device
    representation: Representation = "mean"
    batch_size: int | None = None
    """Images rendered and encoded at once; codes do not depend on it. Default: 128 on a CPU,
    where larger batches ran up to twice as slow (docs/performance.md), 1,024 on a GPU."""
    noise_seed: int = 0

    def __post_init__(self) -> None:
        require_ground_truth(self.dataset, "the disentanglement metrics")
        # the batch in use: batch_size, or its default for the device
        self.batch: int = self.batch_size or (1024 if self.device.type == "cuda" else 128)
        if self.representation not in ("mean", "sampled"):
            raise ValueError(f"representation must be 'mean' or 'sampled', not {self.representation!r}")
        self._noise = torch.Generator().manual_seed(self.noise_seed)

    def sample_values(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.dataset.factors.sample(n, generator)

    @torch.inference_mode()
    def encode_values(self, values: torch.Tensor) -> np.ndarray:
        """Render and encode ``[n, K]`` factor values in batches; returns ``[n, D]`` float32
        (disentanglement_lib's dtype, which its histogram bin edges depend on)."""
        chunks = []
        for mean, logvar in self._posteriors(values):
            if self.representation == "sampled":
                eps = torch.randn(mean.shape, generator=self._noise).to(mean.device)
                mean = mean + torch.exp(0.5 * logvar) * eps
            chunks.append(mean.float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0))

    def _posteriors(self, values: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(mean, logvar)`` of the images of ``values``, rendered and encoded batch by batch."""
        for start in range(0, len(values), self.batch):
            mean, logvar = self.model.encoder(self.dataset.render(values[start : start + self.batch], self.device))
            yield mean, logvar

    @torch.inference_mode()
    def images_per_second(self, generator: torch.Generator, batches: int = 4) -> float:
        """How fast ``encode_values`` renders and encodes: ``batches`` batches of fresh samples
        from ``generator``, timed after one to warm up (the posterior noise is not drawn from)."""
        values = self.sample_values((batches + 1) * self.batch, generator)
        for _ in self._posteriors(values[: self.batch]):
            pass
        tick = time.perf_counter()
        for mean, _ in self._posteriors(values[self.batch :]):
            mean.cpu()
        return batches * self.batch / (time.perf_counter() - tick)

    def codes_and_labels(self, n: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` fresh samples: codes ``[n, D]`` and integer factor labels ``[n, K]``."""
        values = self.sample_values(n, generator)
        return self.encode_values(values), self.dataset.factors.labels(values).numpy()


def encode_means(
    model: VAE,
    data: GroundTruthDataset,
    values: torch.Tensor,
    device: torch.device | str = "cpu",
    batch_size: int | None = None,
) -> np.ndarray:
    """Posterior means ``[..., D]`` of the images of factor values ``[..., K]``."""
    sampler = GroundTruthSampler(data, model, torch.device(device), batch_size=batch_size)
    return sampler.encode_values(values.reshape(-1, values.shape[-1])).reshape(*values.shape[:-1], -1)
