"""A table of rendered results over a finite grid of keys, filled in batches on first use.

A renderer whose output depends on a finite grid of factor combinations (a mixed-radix index
into the grid) ray-casts each combination the first time a batch asks for it, in one batch with
the other new ones, and looks it up afterwards. The table lives on the device the results are
asked for (one per device) and is allocated at its full size the first time; its pages are
touched only as rows are filled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from sbvae.data.factors import Discrete, Product


def grid_index(labels: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Mixed-radix index ``[N]`` of integer labels ``[N, K]`` on a grid of ``sizes`` (the last
    factor varies fastest, as in the 3D Shapes and dSprites files)."""
    index = torch.zeros(len(labels), dtype=torch.int64)
    for column, size in enumerate(sizes):
        index = index * size + labels[:, column]
    return index


def grid_labels(index: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """The inverse of :func:`grid_index`: labels ``[N, K]`` of indices ``[N]``."""
    columns = []
    for size in reversed(sizes):
        columns.append(index % size)
        index = index // size
    return torch.stack(columns[::-1], dim=1)


def grid_values(factors: Product, labels: torch.Tensor) -> torch.Tensor:
    """The values ``[N, K]`` (float64) at integer labels ``[N, K]`` of a product of discrete
    factors (``TypeError`` if a part is not a :class:`Discrete` factor)."""
    columns = []
    for i, part in enumerate(factors.parts):
        if not isinstance(part, Discrete):
            raise TypeError(f"{part!r} is not a discrete factor: a grid needs discrete factors")
        columns.append(part.values[labels[:, i]])
    return torch.stack(columns, dim=1)


class Memo:
    """Results ``compute(keys, device)`` ``[n, ...]`` of integer keys in ``[0, size)``, stored
    as ``dtype`` after the first time each key is asked for."""

    def __init__(
        self,
        size: int,
        compute: Callable[[torch.Tensor, torch.device], torch.Tensor],
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.size, self.compute, self.dtype = size, compute, dtype
        self._tables: dict[torch.device, torch.Tensor] = {}
        self._filled: dict[torch.device, torch.Tensor] = {}

    def filled(self, device: torch.device | str = "cpu") -> int:
        """How many keys are stored for ``device``."""
        mask = self._filled.get(torch.device(device))
        return int(mask.sum()) if mask is not None else 0

    def __call__(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """The results of ``keys`` ``[N]`` (CPU int64) on ``device``, computing the missing ones."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        filled = self._filled.setdefault(device, torch.zeros(self.size, dtype=torch.bool))
        missing = keys[~filled[keys]].unique()
        if len(missing):
            rows = self.compute(missing, device)
            if device not in self._tables:
                self._tables[device] = torch.empty((self.size, *rows.shape[1:]), dtype=self.dtype, device=device)
            self._tables[device][missing.to(device)] = rows.to(self.dtype)
            filled[missing] = True
        return self._tables[device][keys.to(device)]
