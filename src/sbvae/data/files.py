"""The field's dataset files, and a user's own images, as datasets (``data.path``).

Formats (``data.format``, or recognised from the file when not given):

* ``dsprites_npz``: dSprites (Matthey et al. 2017), an ``.npz`` with ``imgs`` uint8
  ``[N, H, W]`` (0 and 1), ``latents_classes`` int ``[N, 6]`` and ``latents_values`` float
  ``[N, 6]``, columns colour, shape, scale, orientation, x, y. A factor with one value (the
  colour) is dropped. Pixels are read as they are (0 and 1); a file with 0 to 255 is scaled.
* ``shapes3d_h5``: 3D Shapes (Kim and Mnih 2018), an HDF5 file with ``images`` uint8
  ``[N, H, W, 3]`` and ``labels`` float ``[N, 6]``, columns floor_hue, wall_hue, object_hue,
  scale, shape, orientation.
* ``mpi3d_npz``: MPI3D (Gondal et al. 2019), an ``.npz`` with ``images`` uint8
  ``[N, H, W, 3]`` and no labels: the grid is known from ``N`` (:data:`MPI3D_GRIDS`), its
  factors' values are their class indices.
* ``chairs_folder``, ``image_folder``: see :mod:`sbvae.data.folders`.

Each file with factors is a full factorial grid whose rows run in mixed-radix order, the last
factor fastest. dSprites and 3D Shapes carry their labels, and both are checked: the distinct
values of each column make the grid (so a file with fewer values per factor than the published
one is read the same way), and every row must sit at its grid index. Drawing factor values and
reading the row at their index then gives the same dataset interface as a renderer's.

Only the rows a batch needs are read (:mod:`sbvae.data.rows`); a compressed ``.npz`` member (the
published dSprites is one), or one stored in Fortran order, is first copied once, uncompressed and
in C order, to the cache folder ``data.cache``. Images must be uint8; factor tables must hold
finite numbers; what a file declares is checked against what it holds and against the memory
available before anything is allocated, and an HDF5 file's datasets are read only from it.
Images are scaled to ``data.image_size`` on the fly: by area averaging when smaller than the
file's, by repeating pixels (nearest) when larger.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from sbvae.data.dataset import Dataset, GroundTruthDataset
from sbvae.data.factors import Discrete, Product
from sbvae.data.folders import chairs_folder, image_folder, image_magic, is_chairs_folder
from sbvae.data.memo import grid_index
from sbvae.data.presets import make_dataset
from sbvae.data.rows import Rows, check_memory, h5_dataset, h5_rows, load_member, member_rows, npz_members
from sbvae.data.sprites import SHAPES
from sbvae.errors import UserError

FORMATS = ("dsprites_npz", "shapes3d_h5", "mpi3d_npz", "chairs_folder", "image_folder")

DSPRITES_COLUMNS = ("colour", "shape", "scale", "orientation", "x", "y")
DSPRITES_KEYS = ("imgs", "latents_classes", "latents_values")
SHAPES3D_COLUMNS = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SHAPES3D_SHAPES = ("cube", "cylinder", "sphere", "capsule")

Grid = list[tuple[str, int, tuple[str, ...] | None]]
"""A grid's factors in file order: name, number of values, names of the values (or None)."""


def _mpi3d_grid(colours: tuple[str, ...], shapes: tuple[str, ...]) -> Grid:
    return [
        ("object_color", len(colours), colours),
        ("object_shape", len(shapes), shapes),
        ("object_size", 2, ("small", "large")),
        ("camera_height", 3, ("top", "center", "bottom")),
        ("background_color", 3, ("purple", "sea green", "salmon")),
        ("horizontal_axis", 40, None),
        ("vertical_axis", 40, None),
    ]


MPI3D_GRIDS: dict[int, Grid] = {
    1_036_800: _mpi3d_grid(
        ("white", "green", "red", "blue", "brown", "olive"),
        ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere"),
    ),
}
"""MPI3D's grid by its number of images: mpi3d_toy, mpi3d_realistic and mpi3d_real all hold
6 x 6 x 2 x 3 x 3 x 40 x 40 = 1,036,800 images (rr-learning/disentanglement_dataset)."""


class DataSpec(Protocol):
    """What :func:`build_dataset` reads of a config's ``data`` section."""

    @property
    def preset(self) -> str: ...
    @property
    def image_size(self) -> int: ...
    @property
    def supersample(self) -> int: ...
    @property
    def path(self) -> str | None: ...
    @property
    def format(self) -> str | None: ...
    @property
    def cache(self) -> str | None: ...


def build_dataset(spec: DataSpec) -> Dataset:
    """The dataset a config's ``data`` section names: the file at ``path`` when it is set, else
    the preset."""
    if spec.path is None:
        return make_dataset(spec.preset, spec.image_size, spec.supersample)
    return open_data(spec.path, spec.image_size, spec.format, spec.cache)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Square images ``[N, C, S, S]`` at ``size`` pixels: area averaging to shrink, nearest to grow."""
    if images.shape[-1] == size:
        return images
    mode = "area" if size < images.shape[-1] else "nearest-exact"
    return F.interpolate(images, size=(size, size), mode=mode)


class GridFile(GroundTruthDataset):
    """A full factorial grid of images in a file: factor values -> grid index -> row."""

    def __init__(
        self,
        name: str,
        factors: Product,
        rows: Rows,
        image_size: int,
        pixel_max: int,
        plane_factors: tuple[str, str],
    ) -> None:
        self.name, self.factors, self.rows, self.plane_factors = name, factors, rows, plane_factors
        self._size, self._max = image_size, pixel_max
        self.sizes = factors.num_classes

    @property
    def image_size(self) -> int:
        return self._size

    @property
    def channels(self) -> int:
        return 1 if len(self.rows.row_shape) == 2 else self.rows.row_shape[2]

    def rows_at(self, index: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images ``[N, C, S, S]`` in [0, 1] of the file's rows ``index`` ``[N]``."""
        raw = torch.from_numpy(self.rows.read(index.numpy()))
        raw = raw[:, None] if raw.dim() == 3 else raw.permute(0, 3, 1, 2)
        images = raw.to(device).float() / self._max
        return resize(images, self._size).contiguous()

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        labels = self.factors.labels(values.detach().cpu().double())
        return self.rows_at(grid_index(labels, self.sizes), device)


def _check_grid(source: str, what: str, labels: np.ndarray, sizes: list[int]) -> None:
    """``labels`` ``[N, K]`` must be every combination once, in mixed-radix order."""
    if math.prod(sizes) != len(labels):
        grid = " x ".join(map(str, sizes))
        raise UserError(
            f"{source}: {what} is not a full factor grid ({len(labels):,} rows, but {grid} = "
            f"{math.prod(sizes):,} combinations)"
        )
    if not torch.equal(grid_index(torch.from_numpy(labels).long(), sizes), torch.arange(len(labels))):
        raise UserError(f"{source}: the rows of {what} are not in grid order (the last factor varying fastest)")


def _factors(columns: Sequence[tuple[str, np.ndarray, Sequence[str] | None]]) -> Product:
    return Product(*(Discrete(name, values.tolist(), names) for name, values, names in columns))


BATCH_ROWS = 64
"""Images read at once that must fit in memory (raw and as floats) for a file to be opened."""


def _check_images(source: str, key: str, dtype: np.dtype, shape: tuple[int, ...], channels: tuple[int, ...]) -> None:
    """uint8 ``[N, S, S]`` (``channels`` empty) or ``[N, S, S, C]`` with C in ``channels``, N > 0,
    of which :data:`BATCH_ROWS` images fit in memory."""
    if dtype != np.uint8:
        raise UserError(f"{source}: {key} holds {dtype}, expected uint8 (8-bit images): save them as uint8")
    ndim = 3 if not channels else 4
    ok = len(shape) == ndim and shape[0] > 0 and shape[1] == shape[2] and shape[1] > 0
    if ok and channels:
        ok = shape[3] in channels
    if not ok:
        expected = "[N, S, S]" if not channels else f"[N, S, S, {'|'.join(map(str, channels))}]"
        raise UserError(f"{source}: {key} has shape {list(shape)}, expected {expected} (square images)")
    check_memory(source, f"{BATCH_ROWS} of its images", BATCH_ROWS * math.prod(shape[1:]) * 5)  # uint8 and float32


def _check_dtype(source: str, key: str, dtype: np.dtype, kind: str) -> None:
    if dtype.kind not in kind:
        expected = {"iu": "integer", "fiu": "numeric"}[kind]
        raise UserError(f"{source}: {key} holds {dtype}, expected {expected}")


def _table_fits(source: str, what: str, rows: int, columns: int) -> None:
    """Factor tables ``[rows, columns]`` are read whole, as 8-byte numbers, and sorted: about four
    copies must fit in memory."""
    check_memory(source, what, 4 * rows * columns * 8)


def _check_finite(source: str, key: str, table: np.ndarray, columns: Sequence[str]) -> None:
    """Every value of the factor table ``key`` must be a finite number."""
    bad = np.argwhere(~np.isfinite(table))
    if len(bad):
        row, column = bad[0]
        raise UserError(
            f"{source}: {key} holds NaN or infinity (row {row}, {columns[column]}): every factor value must be "
            f"a finite number"
        )


def _pixel_max(rows: Rows) -> int:
    """The value of a white pixel: 1 for images of 0 and 1 (dSprites), 255 for 8-bit grey levels."""
    probe = rows.read(np.unique(np.linspace(0, rows.count - 1, 16).round().astype(np.int64)))
    return 1 if probe.max() <= 1 else 255


def dsprites_file(path: Path, image_size: int, cache: Path | None) -> GridFile:
    """A dSprites ``.npz`` (see the module's docstring)."""
    source = str(path)
    members = npz_members(path)
    missing = [k for k in DSPRITES_KEYS if k not in members]
    if missing:
        raise UserError(
            f"{source} has no {', '.join(missing)}: a dSprites file holds {', '.join(DSPRITES_KEYS)} "
            f"(found: {', '.join(members) or 'nothing'})"
        )
    imgs = members["imgs"]
    _check_images(source, "imgs", imgs.dtype, imgs.shape, ())
    for key, kind in (("latents_classes", "iu"), ("latents_values", "fiu")):
        member = members[key]
        _check_dtype(source, key, member.dtype, kind)
        if member.shape != (imgs.shape[0], len(DSPRITES_COLUMNS)):
            raise UserError(
                f"{source}: {key} has shape {list(member.shape)}, expected [{imgs.shape[0]}, {len(DSPRITES_COLUMNS)}]"
            )
    _table_fits(source, "its latents_classes and latents_values", 2 * imgs.shape[0], len(DSPRITES_COLUMNS))
    classes = load_member(path, "latents_classes").astype(np.int64)
    values = load_member(path, "latents_values").astype(np.float64)
    _check_finite(source, "latents_values", values, DSPRITES_COLUMNS)
    if classes.min() < 0:
        raise UserError(f"{source}: latents_classes holds negative classes")
    sizes = [int(c) + 1 for c in classes.max(axis=0)]
    _check_grid(source, "latents_classes", classes, sizes)
    strides = [math.prod(sizes[k + 1 :]) for k in range(len(sizes))]
    columns = []
    for k, name in enumerate(DSPRITES_COLUMNS):
        if sizes[k] > 1:  # a factor with one value says nothing
            grid = values[np.arange(sizes[k]) * strides[k], k]
            if len(np.unique(grid)) != sizes[k]:
                raise UserError(f"{source}: latents_values gives two classes of {name} the same value")
            names = SHAPES if name == "shape" and sizes[k] == len(SHAPES) else None
            columns.append((name, grid, names))
    del classes, values
    rows = member_rows(path, imgs, cache)
    factors = _factors(columns)
    plane = ("x", "y") if {"x", "y"} <= set(factors.names) else _first_two(factors)
    return GridFile(path.stem, factors, rows, image_size, _pixel_max(rows), plane)


def _first_two(factors: Product) -> tuple[str, str]:
    if len(factors.names) < 2:
        raise UserError(f"the file has {len(factors.names)} factor with more than one value; at least 2 are needed")
    return factors.names[0], factors.names[1]


def _h5(path: Path) -> Any:
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path} is not a readable HDF5 file: {str(exc).splitlines()[0]}") from None


def shapes3d_file(path: Path, image_size: int) -> GridFile:
    """A 3D Shapes ``.h5`` (see the module's docstring)."""
    source = str(path)
    with _h5(path) as f:
        images, labels = (h5_dataset(f, key, source) for key in ("images", "labels"))
        missing = [k for k, found in (("images", images), ("labels", labels)) if found is None]
        if missing:
            raise UserError(
                f"{source} has no {', '.join(missing)}: a 3D Shapes file holds images and labels "
                f"(found: {', '.join(f.keys()) or 'nothing'})"
            )
        if not hasattr(images, "dtype") or not hasattr(labels, "dtype"):
            raise UserError(f"{source}: images and labels must be datasets, not groups")
        _check_images(source, "images", images.dtype, tuple(images.shape), (1, 3))
        _check_dtype(source, "labels", labels.dtype, "fiu")
        if tuple(labels.shape) != (images.shape[0], len(SHAPES3D_COLUMNS)):
            raise UserError(
                f"{source}: labels has shape {list(labels.shape)}, "
                f"expected [{images.shape[0]}, {len(SHAPES3D_COLUMNS)}]"
            )
        _table_fits(source, "its labels", images.shape[0], len(SHAPES3D_COLUMNS))
        try:
            table = np.asarray(labels[()], dtype=np.float64)
        except OSError as exc:
            raise UserError(f"{source}: cannot read its labels: {str(exc).splitlines()[0]}") from None
        try:
            rows = h5_rows(path, images, source)
        except OSError as exc:
            raise UserError(f"{source}: cannot read its images: {str(exc).splitlines()[0]}") from None
    _check_finite(source, "labels", table, SHAPES3D_COLUMNS)
    grids = [np.unique(table[:, k]) for k in range(table.shape[1])]
    classes = np.stack([np.searchsorted(g, table[:, k]) for k, g in enumerate(grids)], axis=1)
    _check_grid(source, "labels", classes, [len(g) for g in grids])
    del table, classes
    columns = []
    for name, grid in zip(SHAPES3D_COLUMNS, grids):
        if len(grid) > 1:
            names = SHAPES3D_SHAPES if name == "shape" and len(grid) == len(SHAPES3D_SHAPES) else None
            columns.append((name, grid, names))
    factors = _factors(columns)
    plane = ("orientation", "scale") if {"orientation", "scale"} <= set(factors.names) else _first_two(factors)
    return GridFile(path.stem, factors, rows, image_size, 255, plane)


def mpi3d_file(path: Path, image_size: int, cache: Path | None) -> GridFile:
    """An MPI3D ``.npz`` (see the module's docstring and :data:`MPI3D_GRIDS`)."""
    source = str(path)
    members = npz_members(path)
    if "images" not in members:
        found = ", ".join(members) or "nothing"
        raise UserError(f"{source} has no images: an MPI3D file holds images (found: {found})")
    images = members["images"]
    _check_images(source, "images", images.dtype, images.shape, (3,))
    grid = MPI3D_GRIDS.get(images.shape[0])
    if grid is None:
        known = "; ".join(f"{n:,} ({' x '.join(str(s) for _, s, _ in g)})" for n, g in MPI3D_GRIDS.items())
        raise UserError(f"{source} holds {images.shape[0]:,} images, not an MPI3D grid (known: {known})")
    factors = _factors([(name, np.arange(size, dtype=np.float64), names) for name, size, names in grid if size > 1])
    rows = member_rows(path, images, cache)
    return GridFile(path.stem, factors, rows, image_size, 255, ("horizontal_axis", "vertical_axis"))


ZIP_MAGIC, HDF5_MAGIC = b"PK\x03\x04", b"\x89HDF\r\n\x1a\n"


def _magic(path: Path, length: int = 8) -> bytes:
    with path.open("rb") as f:
        return f.read(length)


def detect_format(path: str) -> str:
    """The format of ``path`` (one of :data:`FORMATS`) from what it holds, or a ``UserError``."""
    if glob.has_magic(path) and not os.path.exists(path):
        return "image_folder"
    where = Path(path)
    if not where.exists():
        raise UserError(f"data.path {path} does not exist")
    if where.is_dir():
        return "chairs_folder" if is_chairs_folder(where) else "image_folder"
    head = _magic(where)
    if head.startswith(HDF5_MAGIC):
        return "shapes3d_h5"
    if head.startswith(ZIP_MAGIC):
        keys = set(npz_members(where))
        if set(DSPRITES_KEYS) <= keys:
            return "dsprites_npz"
        if "images" in keys:
            return "mpi3d_npz"
        raise UserError(
            f"{path} holds {', '.join(sorted(keys)) or 'no arrays'}: neither a dSprites file "
            f"({', '.join(DSPRITES_KEYS)}) nor an MPI3D file (images)"
        )
    if image_magic(head):
        return "image_folder"
    raise UserError(
        f"{path} is not a dataset sbvae reads: a dSprites or MPI3D .npz, a 3D Shapes .h5, "
        f"a folder of images or the 3D Chairs renderings"
    )


_OPENED: dict[tuple[object, ...], Dataset] = {}
_KEEP = 4


def _signature(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


def open_data(path: str, image_size: int, format: str | None = None, cache: str | None = None) -> Dataset:
    """The dataset at ``path`` at ``image_size`` pixels (``format``: one of :data:`FORMATS`, or
    None to recognise it). The last few opened are kept, so opening one again is free."""
    if image_size <= 0 or image_size % 16:
        raise UserError(f"data.image_size must be a positive multiple of 16, not {image_size}")
    if format is not None and format not in FORMATS:
        raise UserError(f"data.format '{format}' is unknown (known: {', '.join(FORMATS)})")
    key = (path, image_size, format, cache, _signature(path))
    if key in _OPENED:
        return _OPENED[key]
    kind = format or detect_format(path)
    where = Path(path)
    if kind != "image_folder" and not where.exists():
        raise UserError(f"data.path {path} does not exist")
    folder = Path(cache) if cache else None
    data: Dataset
    if kind == "dsprites_npz":
        data = dsprites_file(where, image_size, folder)
    elif kind == "mpi3d_npz":
        data = mpi3d_file(where, image_size, folder)
    elif kind == "shapes3d_h5":
        data = shapes3d_file(where, image_size)
    elif kind == "chairs_folder":
        data = chairs_folder(where, image_size)
    else:
        data = image_folder(path, image_size)
    while len(_OPENED) >= _KEEP:
        _OPENED.pop(next(iter(_OPENED)))
    _OPENED[key] = data
    return data
