"""Composable distributions over named generative factors (after spriteworld's).

A distribution draws a ``[N, K]`` tensor of factor *values* for its ``names`` and turns
values into integer class *labels* (what disentanglement metrics need). Leaves are
:class:`Discrete` (a grid of values) and :class:`Continuous` (a uniform range, labelled by
its bin over ``bins`` equal-width bins). :class:`Product` joins leaves into a factor space;
:class:`SetMinus` removes a region (held-out experiments) and :class:`Intersection` keeps
only a region (dependent factors, e.g. positions inside a disc).

Values are float64 on the CPU and drawn from a ``torch.Generator``, so the same seed gives
the same factors on every device.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

DEFAULT_BINS = 20
"""Bins used to label a continuous factor (disentanglement_lib's MIG also uses 20 bins)."""


class FactorDistribution(ABC):
    """A distribution over the factors named in ``names`` (columns of the value tensor)."""

    names: tuple[str, ...]

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``[n, K]`` float64 factor values."""

    @abstractmethod
    def contains(self, values: torch.Tensor) -> torch.Tensor:
        """Boolean ``[N]``: which rows of ``values`` (columns = ``names``) lie in the support."""

    @abstractmethod
    def labels(self, values: torch.Tensor) -> torch.Tensor:
        """Integer ``[N, K]`` class labels of ``values``."""

    @property
    @abstractmethod
    def num_classes(self) -> tuple[int, ...]:
        """Number of label classes of each factor."""

    def columns(self, values: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
        """Select this distribution's columns from a wider value tensor with ``names``."""
        index = [list(names).index(n) for n in self.names]
        return values[:, index]


class Factor(FactorDistribution, ABC):
    """One named factor."""

    def __init__(self, name: str) -> None:
        self.names = (name,)


class Discrete(Factor):
    """A factor drawn uniformly from a finite grid of values; its label is the grid index.

    ``value_names``, if given, name the values in grid order (a shape's classes), for figures.
    """

    def __init__(self, name: str, values: Sequence[float], value_names: Sequence[str] | None = None) -> None:
        super().__init__(name)
        if len(values) == 0:
            raise ValueError(f"factor {name} needs at least one value")
        if value_names is not None and len(value_names) != len(values):
            raise ValueError(f"factor {name} has {len(values)} values but {len(value_names)} value names")
        self.values = torch.as_tensor(list(values), dtype=torch.float64)
        self.value_names = tuple(value_names) if value_names is not None else None

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(self.values), (n,), generator=generator)
        return self.values[index][:, None]

    def span(self, count: int) -> torch.Tensor:
        """Up to ``count`` of the grid's values, evenly spread from the first to the last."""
        if count >= len(self.values):
            return self.values.clone()
        index = torch.linspace(0, len(self.values) - 1, count).round().long()
        return self.values[index]

    @property
    def centre(self) -> float:
        """The middle grid value (what figures hold this factor at)."""
        return float(self.values[(len(self.values) - 1) // 2])

    def _nearest(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        distance = (values[:, :1] - self.values[None, :]).abs()
        return distance.min(dim=1)

    def contains(self, values: torch.Tensor) -> torch.Tensor:
        return self._nearest(values)[0] < 1e-9

    def labels(self, values: torch.Tensor) -> torch.Tensor:
        return self._nearest(values)[1][:, None]

    @property
    def num_classes(self) -> tuple[int, ...]:
        return (len(self.values),)

    def __repr__(self) -> str:
        return f"Discrete({self.names[0]!r}, {len(self.values)} values)"


class Continuous(Factor):
    """A factor uniform on ``[low, high)``; its label is its bin among ``bins`` equal bins."""

    def __init__(self, name: str, low: float, high: float, bins: int = DEFAULT_BINS) -> None:
        super().__init__(name)
        if not high > low:
            raise ValueError(f"factor {name} needs high > low, got [{low}, {high})")
        self.low, self.high, self.bins = float(low), float(high), int(bins)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return (self.low + (self.high - self.low) * u)[:, None]

    def span(self, count: int) -> torch.Tensor:
        """``count`` evenly spaced values, the centres of ``count`` equal cells of the range."""
        return self.low + (self.high - self.low) * (torch.arange(count, dtype=torch.float64) + 0.5) / count

    @property
    def centre(self) -> float:
        return 0.5 * (self.low + self.high)

    def contains(self, values: torch.Tensor) -> torch.Tensor:
        v = values[:, 0]
        return (v >= self.low) & (v < self.high)

    def labels(self, values: torch.Tensor) -> torch.Tensor:
        scaled = (values[:, :1] - self.low) / (self.high - self.low) * self.bins
        return scaled.floor().long().clamp(0, self.bins - 1)

    @property
    def num_classes(self) -> tuple[int, ...]:
        return (self.bins,)

    def __repr__(self) -> str:
        return f"Continuous({self.names[0]!r}, {self.low}, {self.high}, bins={self.bins})"


class Product(FactorDistribution):
    """Independent factors side by side: the columns are the parts' columns in order."""

    def __init__(self, *parts: FactorDistribution) -> None:
        self.parts = parts
        self.names = tuple(n for p in parts for n in p.names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"factor names repeat: {self.names}")

    def _split(self, values: torch.Tensor) -> list[torch.Tensor]:
        sizes = [len(p.names) for p in self.parts]
        return list(torch.split(values, sizes, dim=1))

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.cat([p.sample(n, generator) for p in self.parts], dim=1)

    def contains(self, values: torch.Tensor) -> torch.Tensor:
        inside = torch.ones(len(values), dtype=torch.bool)
        for part, cols in zip(self.parts, self._split(values)):
            inside &= part.contains(cols)
        return inside

    def labels(self, values: torch.Tensor) -> torch.Tensor:
        return torch.cat([p.labels(c) for p, c in zip(self.parts, self._split(values))], dim=1)

    @property
    def num_classes(self) -> tuple[int, ...]:
        return tuple(c for p in self.parts for c in p.num_classes)

    def __repr__(self) -> str:
        return f"Product({', '.join(map(repr, self.parts))})"


class _Restricted(FactorDistribution):
    """Shared machinery for a base distribution filtered by a region (rejection sampling)."""

    max_rounds = 1000

    def __init__(self, base: FactorDistribution, region: FactorDistribution) -> None:
        missing = set(region.names) - set(base.names)
        if missing:
            raise ValueError(f"region names {sorted(missing)} are not factors of the base")
        self.base, self.region = base, region
        self.names = base.names

    @abstractmethod
    def _keep(self, values: torch.Tensor) -> torch.Tensor:
        """Boolean mask of base samples to keep."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        kept: list[torch.Tensor] = []
        count = 0
        for _ in range(self.max_rounds):
            draw = self.base.sample(max(n - count, 1) * 2, generator)
            draw = draw[self._keep(draw)]
            kept.append(draw)
            count += len(draw)
            if count >= n:
                return torch.cat(kept)[:n]
        raise RuntimeError(f"{self!r} accepted too few samples; is the region almost empty?")

    def contains(self, values: torch.Tensor) -> torch.Tensor:
        return self.base.contains(values) & self._keep(values)

    def labels(self, values: torch.Tensor) -> torch.Tensor:
        return self.base.labels(values)

    @property
    def num_classes(self) -> tuple[int, ...]:
        return self.base.num_classes


class SetMinus(_Restricted):
    """``base`` without the points inside ``region`` (the region may name a subset of factors)."""

    def _keep(self, values: torch.Tensor) -> torch.Tensor:
        return ~self.region.contains(self.region.columns(values, self.names))

    def __repr__(self) -> str:
        return f"SetMinus({self.base!r}, {self.region!r})"


class Intersection(_Restricted):
    """``base`` restricted to the points inside ``region``."""

    def _keep(self, values: torch.Tensor) -> torch.Tensor:
        return self.region.contains(self.region.columns(values, self.names))

    def __repr__(self) -> str:
        return f"Intersection({self.base!r}, {self.region!r})"


class Region(FactorDistribution, ABC):
    """A set of factor values defined by a test, for ``SetMinus`` and ``Intersection``; it
    cannot be sampled on its own."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise TypeError(f"{self!r} is a region: use it inside SetMinus or Intersection")

    def labels(self, values: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{self!r} is a region and has no labels")

    @property
    def num_classes(self) -> tuple[int, ...]:
        raise TypeError(f"{self!r} is a region and has no classes")


class Disc(Region):
    """Points ``(a, b)`` within ``radius`` of ``centre`` (e.g. positions inside a circle)."""

    def __init__(self, a: str, b: str, centre: tuple[float, float], radius: float) -> None:
        self.names = (a, b)
        self.centre, self.radius = centre, float(radius)

    def contains(self, values: torch.Tensor) -> torch.Tensor:
        du, dv = values[:, 0] - self.centre[0], values[:, 1] - self.centre[1]
        return du**2 + dv**2 <= self.radius**2

    def __repr__(self) -> str:
        return f"Disc({self.names[0]!r}, {self.names[1]!r}, {self.centre}, {self.radius})"


class Band(Region):
    """Points where factor ``a`` is within ``width`` of factor ``b`` (a tied pair of factors)."""

    def __init__(self, a: str, b: str, width: float) -> None:
        self.names = (a, b)
        self.width = float(width)

    def contains(self, values: torch.Tensor) -> torch.Tensor:
        return (values[:, 0] - values[:, 1]).abs() <= self.width

    def __repr__(self) -> str:
        return f"Band({self.names[0]!r}, {self.names[1]!r}, {self.width})"


def find_factor(distribution: FactorDistribution, name: str) -> Discrete | Continuous:
    """The leaf factor called ``name`` inside a (possibly composed) distribution.

    Figures use its ``span`` and ``centre``; a restricted distribution's leaves are its base's.
    """
    if isinstance(distribution, (Discrete, Continuous)) and distribution.names[0] == name:
        return distribution
    children = getattr(distribution, "parts", ()) or ([distribution.base] if hasattr(distribution, "base") else [])
    for child in children:
        if name in child.names:
            return find_factor(child, name)
    raise KeyError(name)


def grid(low: float, high: float, count: int, endpoint: bool = True) -> list[float]:
    """``count`` evenly spaced values from ``low`` to ``high`` (numpy ``linspace`` semantics)."""
    if count == 1:
        return [float(low)]
    step = (high - low) / (count - 1 if endpoint else count)
    return [low + i * step for i in range(count)]


TWO_PI = 2 * math.pi
