"""Rows of 8-bit images read from a file by index, without loading the file.

A dataset file holds its images as one array ``[N, ...]`` of ``uint8``. Only the rows a batch
asks for are read: by ``pread`` where the rows lie one after another in the file (a ``.npy``,
an uncompressed ``.npz`` member, a contiguous HDF5 dataset), through h5py elsewhere (a chunked
or compressed HDF5 dataset), row by row in increasing order. Neither maps the file into the process, so
its resident memory does not grow with the rows read; the operating system's page cache
keeps what is read often.

A compressed ``.npz`` member (or one stored in Fortran order) cannot be read by index;
:func:`uncompressed_copy` writes it once, as a plain ``.npy`` in C order, into a cache folder (a
temporary file renamed into place when complete, so a half-written copy is never left under the
final name; a copy that is stopped or refused removes its own temporary file, nothing else).

Nothing is allocated or copied on a file's word alone: every ``.npz`` member must hold exactly
the array its header declares (so a copy is bounded by the declared array), and what is read
whole (factor tables) or at once (a batch of images) must fit in the memory available
(:func:`check_memory`). HDF5 datasets are read only from the file named (:func:`h5_dataset`):
external links, external storage and virtual datasets of other files are refused.
"""

from __future__ import annotations

import io
import lzma
import math
import os
import shutil
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
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


def check_length(path: Path, end: int, source: str) -> None:
    """A ``UserError`` unless the file ``path`` holds at least ``end`` bytes (its data ends there)."""
    size = path.stat().st_size
    if size < end:
        raise UserError(f"{source} is truncated: its images need {end:,} bytes, the file has {size:,}")


class RawRows:
    """Rows stored one after another from byte ``offset`` of the file ``path``.

    ``source`` names the file in messages. The file is opened on first use in each process
    (a process started by fork opens its own)."""

    def __init__(self, path: Path, offset: int, count: int, row_shape: tuple[int, ...], source: str) -> None:
        self.path, self.offset, self.count, self.row_shape, self.source = path, offset, count, row_shape, source
        self.row_bytes = math.prod(row_shape)
        self._fd: int | None = None
        self._pid = -1
        check_length(path, offset + count * self.row_bytes, source)

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


def available_memory() -> int:
    """Bytes the machine can still give (``MemAvailable``), or its physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _size(count: int) -> str:
    return f"{count / 2**30:,.1f} GB" if count >= 2**30 else f"{count / 2**20:,.1f} MB"


def check_memory(source: str, what: str, need: int) -> None:
    """A one-line ``UserError`` when ``need`` bytes (for ``what`` of ``source``) exceed the
    memory available: checked before allocating, so a file declaring a huge array is refused
    without trying."""
    available = available_memory()
    if need > available:
        raise UserError(f"{source}: {what} need about {_size(need)} of memory, and {_size(available)} are available")


@dataclass(frozen=True)
class NpyMember:
    """An array inside an ``.npz``: its dtype, shape and order, the length of its ``.npy``
    header, and where its data starts in the file (None when the member is compressed)."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    offset: int | None
    crc: int
    header: int = 0
    fortran: bool = False

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


NPY_HEADER_MAX = 10_000
"""The longest ``.npy`` header read (NumPy's own bound): a longer one is refused before it is read."""


def _npy_header(stream: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """Shape, Fortran order, dtype and length in bytes of the ``.npy`` header that starts
    ``stream`` (``ValueError`` if it is not one, or is longer than :data:`NPY_HEADER_MAX`)."""
    magic = stream.read(8)
    version = np.lib.format.read_magic(io.BytesIO(magic))
    length_format = "<H" if version == (1, 0) else "<I"
    length_bytes = stream.read(struct.calcsize(length_format))
    if len(length_bytes) != struct.calcsize(length_format):
        raise ValueError("the .npy header is cut short")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > NPY_HEADER_MAX:
        raise ValueError(f"its .npy header says it is {length:,} bytes long; NumPy writes at most {NPY_HEADER_MAX:,}")
    whole = io.BytesIO(magic + length_bytes + stream.read(length))
    np.lib.format.read_magic(whole)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(whole)
    return tuple(shape), bool(fortran), dtype, whole.tell()


@contextmanager
def _damage_is_one_line(message: str) -> Iterator[None]:
    """Damaged zip or ``.npy`` data (a bad entry or checksum, a compressed stream cut short or
    corrupt, a bad header) as one ``UserError``: ``message: reason``. An OSError with an errno is
    the machine's, not the file's, and passes through."""
    try:
        yield
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, zlib.error, lzma.LZMAError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise UserError(f"{message}: {first_line(exc)}") from None


ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def _check_entry(path: Path, info: zipfile.ZipInfo) -> None:
    """A zip entry sbvae can read: not encrypted, compressed by a method Python's zipfile knows."""
    if info.flag_bits & 0x1:
        raise UserError(f"{path}: {info.filename} is encrypted; save the arrays again with numpy.savez")
    if info.compress_type not in ZIP_METHODS:
        raise UserError(
            f"{path}: {info.filename} uses zip compression method {info.compress_type}, which sbvae cannot "
            f"read; save the arrays again with numpy.savez or numpy.savez_compressed"
        )


def _local_header_size(path: Path, info: zipfile.ZipInfo) -> int:
    """Bytes of a member's local header (fixed part, name and extra field) in the zip file."""
    with path.open("rb") as f:
        f.seek(info.header_offset)
        fixed = f.read(30)
    if len(fixed) < 30 or fixed[:4] != b"PK\x03\x04":
        raise UserError(f"{path}: the zip entry of {info.filename} is damaged")
    name_length, extra_length = struct.unpack("<HH", fixed[26:30])
    return 30 + name_length + extra_length


def _member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> NpyMember:
    """The ``.npy`` member ``info``, whose zip entry must hold exactly the array its header declares."""
    _check_entry(path, info)
    with _damage_is_one_line(f"{path}: {info.filename} is not a readable .npy member"), archive.open(info) as stream:
        shape, fortran, dtype, header = _npy_header(stream)  # type: ignore[arg-type]
    nbytes = math.prod(shape) * dtype.itemsize
    if not dtype.hasobject and info.file_size != header + nbytes:
        raise UserError(
            f"{path}: {info.filename} declares {dtype} {list(shape)} ({header + nbytes:,} bytes with its header), "
            f"but its zip entry holds {info.file_size:,} bytes: the file is damaged or was not written by NumPy"
        )
    offset = None
    if info.compress_type == zipfile.ZIP_STORED:
        offset = info.header_offset + _local_header_size(path, info) + header
    return NpyMember(info.filename[: -len(".npy")], dtype, shape, offset, info.CRC, header, fortran and len(shape) > 1)


def npz_members(path: Path) -> dict[str, NpyMember]:
    """The arrays of the ``.npz`` at ``path`` by name (``UserError`` if it is not a readable one)."""
    with _damage_is_one_line(f"{path} is not a readable .npz file (damaged or cut short?)"), zipfile.ZipFile(path) as z:
        members = [_member(path, z, info) for info in z.infolist() if info.filename.endswith(".npy")]
    return {member.name: member for member in members}


def load_member(path: Path, name: str) -> np.ndarray:
    """A (small) member of an ``.npz`` read whole into memory."""
    with _damage_is_one_line(f"{path}: cannot read {name}"), np.load(path, allow_pickle=False) as archive:
        return np.asarray(archive[name])


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/sbvae``, else ``~/.cache/sbvae``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sbvae"


def _nearest_folder(folder: Path) -> Path:
    """The nearest folder that exists at or above ``folder``, the cache folder to be (a
    ``UserError`` if a file or a link to nothing is in the way)."""
    for place in (folder, *folder.absolute().parents):  # ends at the root, which exists
        if place.is_symlink() and not place.exists():
            raise UserError(
                f"data.cache {folder}: {place} is a link to {os.readlink(place)}, which does not exist; "
                f"make that folder or give another data.cache"
            )
        if place.exists():
            break
    if not place.is_dir():
        raise UserError(f"data.cache {folder} cannot be a folder: {place} is not a folder")
    return place


def _check_space(folder: Path, existing: Path, need: int, what: str) -> None:
    free = shutil.disk_usage(existing).free
    if need > free:
        raise UserError(
            f"data.cache {folder} has {_size(free)} free, and the uncompressed copy of {what} needs "
            f"{_size(need)}: free some space or give another data.cache"
        )


def _write_c_order(array: np.ndarray, sink: BinaryIO) -> None:
    """``array`` as a ``.npy`` in C order, written a block of rows at a time."""
    header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False, "shape": array.shape}
    np.lib.format.write_array_header_1_0(sink, header)
    step = max(1, (64 << 20) // max(1, math.prod(array.shape[1:]) * array.dtype.itemsize))
    for start in range(0, len(array), step):
        sink.write(np.ascontiguousarray(array[start : start + step]).data)


def _fortran_array(path: Path, member: NpyMember, partial: Path) -> np.ndarray:
    """A member in Fortran order mapped from the file: in place when stored, else from a plain copy
    of its data written to ``partial``."""
    if member.offset is not None:
        check_length(path, member.offset + member.nbytes, f"{path} ({member.name})")
        where, offset = path, member.offset
    else:
        with zipfile.ZipFile(path) as archive, archive.open(member.name + ".npy") as source, partial.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 24)
        where, offset = partial, member.header
    return np.memmap(where, member.dtype, "r", offset, member.shape, order="F")


def uncompressed_copy(path: Path, member: NpyMember, cache: Path | None) -> Path:
    """A plain ``.npy`` in C order of an ``.npz`` member (compressed, or in Fortran order) in
    ``cache`` (:func:`default_cache` if None), written the first time and reused afterwards. Its
    name holds the member's checksum and the file's size, so a changed file gets a fresh copy.
    The copy is the member's declared array (its zip entry is checked to hold exactly that), and
    the cache folder must have room for it first."""
    folder = cache or default_cache()
    size = path.stat().st_size
    target = folder / f"{path.stem}.{member.name}.{member.crc:08x}.{size}.npy"
    if target.is_file():
        return target
    plain_copy = member.fortran and member.offset is None  # a compressed member in Fortran order: two copies
    need = member.header + member.nbytes * (1 + plain_copy)
    _check_space(folder, _nearest_folder(folder), need, f"{path}'s {member.name}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"data.cache {folder} cannot be made: {exc.strerror}") from None
    partial = folder / f".{target.name}.{os.getpid()}.partial"
    fortran = folder / f".{target.name}.{os.getpid()}.fortran"
    try:
        with _damage_is_one_line(f"{path}: {member.name} cannot be decompressed"), partial.open("wb") as sink:
            if member.fortran:
                _write_c_order(_fortran_array(path, member, fortran), sink)
            else:
                with zipfile.ZipFile(path) as archive, archive.open(member.name + ".npy") as source:
                    shutil.copyfileobj(source, sink, 1 << 24)  # at most the entry's size: the declared array
                if sink.tell() != member.header + member.nbytes:
                    raise UserError(
                        f"{path}: {member.name} decompresses to {sink.tell():,} bytes, and its header declares "
                        f"{member.header + member.nbytes:,}"
                    )
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, target)
    finally:  # only this copy's own temporary files: another process may be using the folder
        partial.unlink(missing_ok=True)
        fortran.unlink(missing_ok=True)
    return target


def npy_rows(path: Path, source: str) -> RawRows:
    """The rows of a plain ``.npy`` of ``uint8`` in C order (the first axis indexes them)."""
    with path.open("rb") as f, _damage_is_one_line(f"{source}: its copy {path} is damaged"):
        shape, fortran, dtype, offset = _npy_header(f)
    if dtype != np.uint8 or not shape or (fortran and len(shape) > 1):
        raise UserError(f"{source}: expected uint8 images in C order, found {dtype} of shape {shape}")
    return RawRows(path, offset, shape[0], tuple(shape[1:]), source)


def member_rows(path: Path, member: NpyMember, cache: Path | None) -> RawRows:
    """Rows of an ``.npz`` member: in place if it is stored in C order, else from its copy."""
    source = f"{path} ({member.name})"
    if member.offset is not None and not member.fortran:
        return RawRows(path, member.offset, member.shape[0], member.shape[1:], source)
    return npy_rows(uncompressed_copy(path, member, cache), source)


MAX_LINKS = 40
"""Soft links followed to reach one HDF5 dataset; more is taken for a loop."""


def _follow(f: Any, key: str, source: str) -> Any:
    """The object at ``key`` in the open HDF5 file ``f``, reached through hard links, and soft
    links inside the file, one name at a time (None if it is not there). An external link, a loop
    of soft links or a link of any other kind is a ``UserError``: nothing outside ``f`` is opened."""
    import h5py

    node, names, hops = f["/"], [n for n in key.split("/") if n], 0
    while names:
        name = names.pop(0)
        if not isinstance(node, h5py.Group) or not node.id.links.exists(name.encode()):
            return None
        kind = node.id.links.get_info(name.encode()).type
        if kind == h5py.h5l.TYPE_HARD:
            node = node[name]
        elif kind == h5py.h5l.TYPE_SOFT:
            hops += 1
            if hops > MAX_LINKS:
                raise UserError(f"{source}: {key} is a loop of soft links; link it to a dataset in the file")
            target = node.id.links.get_val(name.encode()).decode()
            names = [n for n in target.split("/") if n] + names
            node = f["/"] if target.startswith("/") else node
        elif kind == h5py.h5l.TYPE_EXTERNAL:
            target = node.id.links.get_val(name.encode())[0].decode(errors="replace")
            raise UserError(
                f"{source}: {key} is a link to another file ({target}); sbvae reads only the file it is "
                f"given: copy the data into it"
            )
        else:
            raise UserError(f"{source}: {key} goes through a user-defined link, which sbvae does not follow")
    return node


def _stored_here(dataset: Any, key: str, source: str) -> None:
    if dataset.id.get_create_plist().get_external_count():
        raise UserError(
            f"{source}: {key} keeps its data in another file (HDF5 external storage); sbvae reads only "
            f"the file it is given: copy the data into it"
        )


def h5_dataset(f: Any, key: str, source: str) -> Any:
    """The object at ``key`` in the open HDF5 file ``f`` (None if it is not there), read only from
    ``f``: a ``UserError`` for an external link, a loop of soft links, a dataset kept in external
    files, or a virtual dataset whose parts are not plain datasets of ``f``."""
    import h5py

    dataset = _follow(f, key, source)
    if not isinstance(dataset, h5py.Dataset):
        return dataset
    _stored_here(dataset, key, source)
    parts = dataset.virtual_sources() if dataset.is_virtual else []
    elsewhere = sorted({part.file_name for part in parts} - {"."})  # "." is the file itself
    if elsewhere:
        raise UserError(
            f"{source}: {key} is a virtual dataset of another file ({elsewhere[0]}); sbvae reads only "
            f"the file it is given: copy the data into it"
        )
    for name in sorted({part.dset_name for part in parts}):
        part = _follow(f, name, source)
        if not isinstance(part, h5py.Dataset) or part.is_virtual:
            raise UserError(f"{source}: {key} is a virtual dataset of {name}, which is not a plain dataset of the file")
        _stored_here(part, key, source)
    return dataset


def h5_rows(path: Path, dataset: Any, source: str) -> Rows:
    """Rows of an HDF5 dataset (from :func:`h5_dataset`, so its name is a path through hard links):
    by ``pread`` when it is stored contiguous and uncompressed in the file, else through h5py."""
    shape = tuple(dataset.shape)
    offset = dataset.id.get_offset() if dataset.chunks is None and not dataset.is_virtual else None
    if offset is not None:
        return RawRows(path, int(offset), shape[0], shape[1:], source)
    return H5Rows(path, dataset.name, shape[0], shape[1:], source)
