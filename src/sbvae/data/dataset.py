"""The dataset interface (images drawn by key), data with ground truth, and images alone."""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch

from sbvae.data.factors import Continuous, Discrete, FactorDistribution, find_factor
from sbvae.data.sprites import SpriteRenderer
from sbvae.errors import UserError


class Batch(NamedTuple):
    """Images ``[N, C, H, W]`` in [0, 1] with the factors that made them.

    ``values`` ``[N, K]`` float64 (physical values) and ``labels`` ``[N, K]`` int64 (class
    indices), columns in the order of the dataset's ``factor_names``; both on the CPU. Data
    without ground truth has ``K = 0``.
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


class Dataset(ABC):
    """What training and the pictures need of any data: images of one size, drawn by key.

    A *key* identifies one image: its factor values ``[K]`` for data with ground truth, its
    index for a set of images. Drawing keys on the CPU from a seeded generator and turning
    only some of them into images is what lets several processes share one global batch.
    """

    name: str
    has_ground_truth: bool = False

    @property
    @abstractmethod
    def image_size(self) -> int: ...

    @property
    @abstractmethod
    def channels(self) -> int: ...

    @abstractmethod
    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` keys ``[n, ...]`` drawn with ``generator``."""

    @abstractmethod
    def images(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images ``[N, C, H, W]`` in [0, 1] of ``keys``, on ``device``."""

    def labels(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Factor values (float64) and labels (int64) ``[N, K]`` of ``keys``; ``K = 0`` here."""
        return torch.zeros(len(keys), 0, dtype=torch.float64), torch.zeros(len(keys), 0, dtype=torch.int64)

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Batch:
        """Draw ``n`` keys from ``generator``: their images on ``device``, with their factors."""
        keys = self.draw(n, generator)
        return Batch(self.images(keys, device), *self.labels(keys))

    def stream(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> Iterator[Batch]:
        """An endless stream of fresh batches; its position is the generator's state."""
        while True:
            yield self.sample(batch_size, generator, device)

    def fixed_set(self, n: int, seed: int, split: str, device: torch.device | str = "cpu") -> Batch:
        """A reproducible held set (``split`` = ``"val"`` or ``"test"``) for ``seed``."""
        return self.sample(n, make_generator(seed, split), device)


class GroundTruthDataset(Dataset):
    """Data whose every image comes from known factor values: keys are the values ``[N, K]``
    (columns in the order of ``factor_names``), drawn from ``factors``, and :meth:`render`
    makes the image of any values (procedurally, or by looking them up in a file)."""

    has_ground_truth = True
    factors: FactorDistribution
    plane_factors: tuple[str, str] = ("x", "y")
    """The two factors the latent-geometry plot shows unless it is told others."""

    @abstractmethod
    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """Images for ``[N, K]`` factor values (columns = ``factor_names``)."""

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.factors.names

    def factor(self, name: str) -> Discrete | Continuous:
        """The named factor; ``KeyError`` (naming the known factors) if there is none."""
        try:
            return find_factor(self.factors, name)
        except KeyError:
            raise KeyError(f"{self.name} has no factor '{name}' (factors: {', '.join(self.factor_names)})") from None

    def value_text(self, name: str, value: float) -> str:
        """How figures print ``value`` of factor ``name``: the name of its grid value if the
        factor names its values (a shape's class), else the number with two decimals."""
        factor = self.factor(name)
        names = getattr(factor, "value_names", None)
        if names is None:
            return f"{value:.2f}"
        return names[int(factor.labels(torch.tensor([[value]], dtype=torch.float64))[0, 0])]

    def centre_values(self, n: int) -> torch.Tensor:
        """``[n, K]`` factor values with every factor at its centre (see ``Discrete.centre``)."""
        centre = [self.factor(name).centre for name in self.factor_names]
        return torch.tensor(centre, dtype=torch.float64).repeat(n, 1)

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.factors.sample(n, generator)

    def images(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.render(keys, device)

    def labels(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return keys, self.factors.labels(keys)


@dataclass(frozen=True)
class SpriteDataset(GroundTruthDataset):
    """Samples factors from ``factors`` and renders them with ``renderer``."""

    name: str
    factors: FactorDistribution
    renderer: SpriteRenderer

    @property
    def channels(self) -> int:
        return self.renderer.channels

    @property
    def image_size(self) -> int:
        return self.renderer.image_size

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        columns = {name: values[:, i] for i, name in enumerate(self.factor_names)}
        return self.renderer.render(columns, device)


class SceneRenderer(Protocol):
    """What :class:`SceneDataset` needs of a renderer: images of ``[N, K]`` factor values."""

    @property
    def image_size(self) -> int: ...

    @property
    def channels(self) -> int: ...

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor: ...

    def cast(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """The same images, ray-cast afresh even where ``render`` would look them up."""
        ...


@dataclass(frozen=True)
class SceneDataset(GroundTruthDataset):
    """Samples factors from ``factors`` and renders them with a 3D scene's ``renderer`` (which
    reads the value columns in the order of ``factors``); ``plane_factors`` as for any
    :class:`GroundTruthDataset`."""

    name: str
    factors: FactorDistribution
    renderer: SceneRenderer
    plane_factors: tuple[str, str]

    @property
    def channels(self) -> int:
        return self.renderer.channels

    @property
    def image_size(self) -> int:
        return self.renderer.image_size

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.renderer.render(values, device)


class ImageDataset(Dataset):
    """A set of images without ground truth (``[N, C, H, W]`` in [0, 1], square); keys are
    indices drawn uniformly. Training and reconstructions work on it; the disentanglement
    metrics and the latent-geometry plot need factors and decline it."""

    def __init__(self, name: str, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[-1] != images.shape[-2] or len(images) == 0:
            raise ValueError(
                f"{name}: expected a non-empty [N, C, H, W] stack of square images, got shape {tuple(images.shape)}"
            )
        self.name, self._images = name, images

    @property
    def image_size(self) -> int:
        return int(self._images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self._images.shape[1])

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(len(self._images), (n,), generator=generator)

    def images(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        return self._images[keys].to(device, torch.float32)


def require_ground_truth(data: Dataset, purpose: str) -> GroundTruthDataset:
    """``data`` if it has ground-truth factors, else a one-line :class:`UserError` saying
    that ``purpose`` (e.g. "the disentanglement metrics") needs them."""
    if not isinstance(data, GroundTruthDataset):
        raise UserError(
            f"{purpose} need ground-truth factors, and dataset {data.name} has none (it is a set of images)"
        )
    return data
