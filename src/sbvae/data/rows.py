"""Rows of 8-bit images read from a file by index, without loading the file.

A dataset file holds its images as one array ``[N, ...]`` of ``uint8``. Only the rows a batch
asks for are read: by ``pread`` where the rows lie one after another in the file (a ``.npy``,
an uncompressed ``.npz`` member, a contiguous HDF5 dataset), through h5py elsewhere (a chunked
or compressed HDF5 dataset), row by row in increasing order. Neither maps the file into the process, so
its resident memory does not grow with the rows read; the operating system's page cache
keeps what is read often.

A compressed ``.npz`` member cannot be read by index; :func:`uncompressed_copy` writes it once,
as a plain ``.npy``, into a cache folder (a temporary file renamed into place when complete, so
a half-written copy is never left under the final name).
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np

from sbvae.errors import UserError, first_line


class Rows(Protocol):
    """``count`` rows of shape ``row_shape``, read by index."""

    count: int
    row_shape: tuple[int, ...]

    def read(self, index: np.ndarray) -> np.ndarray:
        """Rows ``[len(index), *row_shape]`` (uint8) in the order of ``index``."""
        ...


def _unique(index: np.ndarray, count: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct indices and where each of ``index`` is among them."""
    index = np.asarray(index, dtype=np.int64)
    if len(index) and (index.min() < 0 or index.max() >= count):
        raise IndexError(f"{source}: row index outside [0, {count})")
    return np.unique(index, return_inverse=True)


class RawRows:
    """Rows stored one after another from byte ``offset`` of the file ``path``.

    ``source`` names the file in messages. The file is opened on first use in each process
    (a process started by fork opens its own)."""

    def __init__(self, path: Path, offset: int, count: int, row_shape: tuple[int, ...], source: str) -> None:
        self.path, self.offset, self.count, self.row_shape, self.source = path, offset, count, row_shape, source
        self.row_bytes = math.prod(row_shape)
        self._fd: int | None = None
        self._pid = -1
        end = offset + count * self.row_bytes
        size = path.stat().st_size
        if size < end:
            raise UserError(f"{source} is truncated: its images need {end:,} bytes, the file has {size:,}")

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, index: np.ndarray) -> np.ndarray:
        unique, where = _unique(index, self.count, self.source)
        out = np.empty((len(unique), self.row_bytes), dtype=np.uint8)
        fd = self._file()
        for i, row in enumerate(unique.tolist()):
            got = os.preadv(fd, [out[i]], self.offset + row * self.row_bytes)
            if got != self.row_bytes:
                raise UserError(f"{self.source} ended before row {row} (was it truncated?)")
        return out[where].reshape(len(where), *self.row_shape)

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


class H5Rows:
    """Rows of an HDF5 dataset read through h5py, one by one in increasing order."""

    def __init__(self, path: Path, key: str, count: int, row_shape: tuple[int, ...], source: str) -> None:
        self.path, self.key, self.count, self.row_shape, self.source = path, key, count, row_shape, source
        self._dataset: Any = None
        self._pid = -1

    def read(self, index: np.ndarray) -> np.ndarray:
        import h5py

        unique, where = _unique(index, self.count, self.source)
        if self._dataset is None or self._pid != os.getpid():
            self._dataset, self._pid = h5py.File(self.path, "r")[self.key], os.getpid()
        rows = np.empty((len(unique), *self.row_shape), dtype=np.uint8)
        try:
            for i, row in enumerate(unique.tolist()):  # one by one: many times faster than a list selection
                rows[i] = self._dataset[row]
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.source}: cannot read its {self.key}: {first_line(exc)}") from None
        return rows[where]


@dataclass(frozen=True)
class NpyMember:
    """An array inside an ``.npz``: its dtype and shape, and where its data starts in the file
    (None when the member is compressed)."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    offset: int | None
    crc: int


def _npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    return np.lib.format.read_array_header_2_0(stream)


def _local_header_size(path: Path, info: zipfile.ZipInfo) -> int:
    """Bytes of a member's local header (fixed part, name and extra field) in the zip file."""
    with path.open("rb") as f:
        f.seek(info.header_offset)
        fixed = f.read(30)
    if len(fixed) < 30 or fixed[:4] != b"PK\x03\x04":
        raise UserError(f"{path}: the zip entry of {info.filename} is damaged")
    name_length, extra_length = struct.unpack("<HH", fixed[26:30])
    return 30 + name_length + extra_length


def npz_members(path: Path) -> dict[str, NpyMember]:
    """The arrays of the ``.npz`` at ``path`` by name (``UserError`` if it is not a readable one)."""
    members = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as stream:
                    shape, fortran, dtype = _npy_header(stream)  # type: ignore[arg-type]
                    header = stream.tell()
                if fortran and len(shape) > 1:
                    raise UserError(f"{path}: {info.filename} is stored in Fortran order; save it in C order")
                offset = None
                if info.compress_type == zipfile.ZIP_STORED:
                    offset = info.header_offset + _local_header_size(path, info) + header
                members[info.filename[: -len(".npy")]] = NpyMember(
                    info.filename[: -len(".npy")], dtype, tuple(shape), offset, info.CRC
                )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise UserError(f"{path} is not a readable .npz file (damaged or cut short?): {first_line(exc)}") from None
    return members


def load_member(path: Path, name: str) -> np.ndarray:
    """A (small) member of an ``.npz`` read whole into memory."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return np.asarray(archive[name])
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise UserError(f"{path}: cannot read {name}: {first_line(exc)}") from None


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/sbvae``, else ``~/.cache/sbvae``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sbvae"


def uncompressed_copy(path: Path, member: NpyMember, cache: Path | None) -> Path:
    """A plain ``.npy`` of a compressed ``.npz`` member in ``cache`` (:func:`default_cache` if
    None), written the first time and reused afterwards. Its name holds the member's checksum
    and the file's size, so a changed file gets a fresh copy."""
    folder = cache or default_cache()
    size = path.stat().st_size
    target = folder / f"{path.stem}.{member.name}.{member.crc:08x}.{size}.npy"
    if target.is_file():
        return target
    if folder.exists() and not folder.is_dir():
        raise UserError(f"data.cache {folder} is not a folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.{os.getpid()}.partial"
    done = False
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member.name + ".npy") as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 24)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, target)
        done = True
    except (zipfile.BadZipFile, EOFError, ValueError, zlib.error) as exc:
        raise UserError(f"{path}: {member.name} cannot be decompressed: {first_line(exc)}") from None
    finally:
        partial.unlink(missing_ok=True)
        if created and not done:  # leave no trace of a copy that failed
            shutil.rmtree(folder, ignore_errors=True)
    return target


def npy_rows(path: Path, source: str) -> RawRows:
    """The rows of a plain ``.npy`` of ``uint8`` (the first axis indexes them)."""
    with path.open("rb") as f:
        shape, _, dtype = _npy_header(f)
        offset = f.tell()
    if dtype != np.uint8 or not shape:
        raise UserError(f"{source}: expected uint8 images, found {dtype} of shape {shape}")
    return RawRows(path, offset, shape[0], tuple(shape[1:]), source)


def member_rows(path: Path, member: NpyMember, cache: Path | None) -> RawRows:
    """Rows of an ``.npz`` member: in place if it is stored, else from its uncompressed copy."""
    source = f"{path} ({member.name})"
    if member.offset is not None:
        return RawRows(path, member.offset, member.shape[0], member.shape[1:], source)
    return npy_rows(uncompressed_copy(path, member, cache), source)


def h5_rows(path: Path, key: str, source: str) -> Rows:
    """Rows of the HDF5 dataset ``key``: by ``pread`` when it is stored contiguous and
    uncompressed, else through h5py."""
    import h5py

    with h5py.File(path, "r") as f:
        dataset = f[key]
        shape = tuple(dataset.shape)
        offset = dataset.id.get_offset() if dataset.chunks is None else None
    if offset is not None:
        return RawRows(path, int(offset), shape[0], shape[1:], source)
    return H5Rows(path, key, shape[0], shape[1:], source)
