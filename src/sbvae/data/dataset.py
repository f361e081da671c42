"""A dataset with exact ground truth: a factor distribution plus the renderer that draws it."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch

from sbvae.data.factors import Continuous, Discrete, FactorDistribution, find_factor
from sbvae.data.sprites import SpriteRenderer


class Batch(NamedTuple):
    """Images ``[N, C, H, W]`` in [0, 1] with the factors that made them.

    ``values`` ``[N, K]`` float64 (physical values) and ``labels`` ``[N, K]`` int64 (class
    indices), columns in the order of the dataset's ``factor_names``; both on the CPU.
    """

    images: torch.Tensor
    values: torch.Tensor
    labels: torch.Tensor


def derive_seed(seed: int, purpose: str) -> int:
    """A seed for one purpose (``"train"``, ``"val"``, ...) that does not collide with others."""
    return (seed * 1_000_003 + zlib.crc32(purpose.encode())) % (2**63)


def make_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator seeded for ``purpose``; factor sampling always happens on the CPU."""
    return torch.Generator().manual_seed(derive_seed(seed, purpose))


@dataclass(frozen=True)
class SpriteDataset:
    """Samples factors from ``factors`` and renders them with ``renderer``."""

    name: str
    factors: FactorDistribution
    renderer: SpriteRenderer

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.factors.names

    @property
    def channels(self) -> int:
        return self.renderer.channels

    @property
    def image_size(self) -> int:
        return self.renderer.image_size

    def factor(self, name: str) -> Discrete | Continuous:
        """The named factor; ``KeyError`` (naming the known factors) if there is none."""
        try:
            return find_factor(self.factors, name)
        except KeyError:
            raise KeyError(f"{self.name} has no factor '{name}' (factors: {', '.join(self.factor_names)})") from None

    def centre_values(self, n: int) -> torch.Tensor:
        """``[n, K]`` factor values with every factor at its centre (see ``Discrete.centre``)."""
        centre = [self.factor(name).centre for name in self.factor_names]
        return torch.tensor(centre, dtype=torch.float64).repeat(n, 1)

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """Draw images for ``[N, K]`` factor values (columns = ``factor_names``)."""
        columns = {name: values[:, i] for i, name in enumerate(self.factor_names)}
        return self.renderer.render(columns, device)

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        """Draw ``n`` factor settings from ``generator`` and render them on ``device``."""
        values = self.factors.sample(n, generator)
        return Batch(self.render(values, device), values, self.factors.labels(values))

    def stream(self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Iterator[Batch]:
        """An endless stream of fresh batches; its position is the generator's state."""
        while True:
            yield self.sample(batch_size, generator, device)

    def fixed_set(self, n: int, seed: int, split: str, device: torch.device | str = "cpu") -> Batch:
        """A reproducible held set (``split`` = ``"val"`` or ``"test"``) for ``seed``."""
        return self.sample(n, make_generator(seed, split), device)
