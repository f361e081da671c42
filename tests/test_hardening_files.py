"""Dataset files made by an attacker or a careless user (issue 27: items 1, 2, 4, 5, 6, 7, 11, 16).

Every bad file is written here by a builder of :data:`BAD_FILES` (``benchmarks/fault_injection.py``
runs the same builders through the command line). Each must end in one line naming the file and
what to do, exit code 2, with nothing written (no cache copy, no partial file) and no file read
but the one named.
"""

from __future__ import annotations

import functools
import struct
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import snapshot
from sbvae.data import open_data
from sbvae.errors import UserError
from test_cli import assert_one_line_error
from test_data_files import all_values, as_nchw, product, write_dsprites, write_shapes3d

DSPRITES_KEYS = ("imgs", "latents_classes", "latents_values")

# -- writing files ---------------------------------------------------------------------------


@functools.cache
def _rendered(kind: str) -> dict[str, np.ndarray]:
    """The arrays of a small dSprites or 3D Shapes file, rendered once."""
    with tempfile.TemporaryDirectory() as folder:
        if kind == "dsprites":
            write_dsprites(Path(folder) / "source.npz", compressed=False)
            with np.load(Path(folder) / "source.npz") as archive:
                return {key: archive[key] for key in DSPRITES_KEYS}
        write_shapes3d(Path(folder) / "source.h5")
        with h5py.File(Path(folder) / "source.h5") as f:
            return {key: f[key][()] for key in ("images", "labels")}


def dsprites_arrays() -> dict[str, np.ndarray]:
    """The arrays of a small dSprites file (see ``write_dsprites``), as a dict to change."""
    return {key: array.copy() for key, array in _rendered("dsprites").items()}


def shapes3d_arrays() -> dict[str, np.ndarray]:
    """The arrays of a small 3D Shapes file (see ``write_shapes3d``), as a dict to change."""
    return {key: array.copy() for key, array in _rendered("shapes3d").items()}


def write_zip(path: Path, arrays: dict[str, np.ndarray], method: int = zipfile.ZIP_STORED, extra: bytes = b"") -> Path:
    """An ``.npz`` of ``arrays`` with the zip compression ``method``; ``extra`` is written after
    the array data of the first member."""
    with zipfile.ZipFile(path, "w", method) as archive:
        for i, (name, array) in enumerate(arrays.items()):
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array)
                member.write(extra if i == 0 else b"")
    return path


def write_headers(path: Path, declared: dict[str, tuple[tuple[int, ...], str]]) -> Path:
    """An ``.npz`` whose members are only ``.npy`` headers declaring ``name: (shape, descr)``."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, (shape, descr) in declared.items():
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array_header_1_0(member, {"descr": descr, "fortran_order": False, "shape": shape})
    return path


def patch_central_entry(path: Path, member: str, offset: int, value: int) -> None:
    """Set the 2-byte field at ``offset`` of ``member``'s entry in the zip's central directory
    (8: flags, 10: compression method)."""
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x01\x02")
    while start >= 0:
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46 : start + 46 + name_length] == member.encode():
            struct.pack_into("<H", data, start + offset, value)
            path.write_bytes(bytes(data))
            return
        start = data.find(b"PK\x01\x02", start + 46)
    raise AssertionError(f"{member} is not in {path}")


def damage_middle(path: Path, member: str) -> None:
    """Zero 64 bytes in the middle of ``member``'s compressed data."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    middle = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def write_fortran(path: Path, arrays: dict[str, np.ndarray], keys=DSPRITES_KEYS, compressed: bool = True) -> Path:
    """An ``.npz`` of ``arrays`` with the members ``keys`` stored in Fortran order (as
    ``numpy.savez`` saves a Fortran-ordered array)."""
    saved = {key: np.asfortranarray(array) if key in keys else array for key, array in arrays.items()}
    (np.savez_compressed if compressed else np.savez)(path, **saved)
    return path


def write_h5(path: Path, arrays: dict[str, np.ndarray], **special: Callable[[h5py.File, str], None]) -> Path:
    """An HDF5 file holding ``arrays``, except the keys in ``special``, made by ``special[key](f, key)``."""
    with h5py.File(path, "w") as f:
        for key, array in arrays.items():
            if key in special:
                special[key](f, key)
            else:
                f.create_dataset(key, data=array)
    return path


# -- the bad files ---------------------------------------------------------------------------

Source = tuple[Path, Path | None]
"""What ``sbvae data`` is given: the dataset file, and the cache folder (or None: a fresh one)."""


def _wide_npz(folder: Path) -> Source:
    arrays = dsprites_arrays()
    arrays["imgs"] = arrays["imgs"].astype(">u2")
    np.savez(folder / "wide.npz", **arrays)
    return folder / "wide.npz", None


def _wide_h5(folder: Path) -> Source:
    arrays = shapes3d_arrays()
    arrays["images"] = arrays["images"].astype(np.uint16)
    return write_h5(folder / "wide.h5", arrays), None


def _outside(folder: Path, data: bytes) -> Path:
    """A file beside the dataset that it must never read (a stand-in for a system file)."""
    path = folder / "outside.bin"
    path.write_bytes(data)
    return path


def _external_storage(folder: Path, key: str = "images") -> Source:
    arrays = shapes3d_arrays()
    outside = _outside(folder, arrays[key].tobytes())

    def external(f: h5py.File, name: str) -> None:
        array = arrays[name]
        f.create_dataset(name, array.shape, array.dtype, external=[(str(outside), 0, h5py.h5f.UNLIMITED)])

    return write_h5(folder / "external.h5", arrays, **{key: external}), None


def _external_link(folder: Path) -> Source:
    arrays = shapes3d_arrays()
    write_h5(folder / "other.h5", arrays)
    link = lambda f, name: f.__setitem__(name, h5py.ExternalLink(str(folder / "other.h5"), "/images"))
    return write_h5(folder / "linked.h5", arrays, images=link), None


def _soft_link_to_an_external_link(folder: Path) -> Source:
    arrays = shapes3d_arrays()
    write_h5(folder / "other.h5", arrays)

    def links(f: h5py.File, name: str) -> None:
        f["elsewhere"] = h5py.ExternalLink(str(folder / "other.h5"), "/")
        f[name] = h5py.SoftLink("/elsewhere/images")

    return write_h5(folder / "soft-external.h5", arrays, images=links), None


def _virtual_elsewhere(folder: Path) -> Source:
    arrays = shapes3d_arrays()
    write_h5(folder / "other.h5", arrays)

    def virtual(f: h5py.File, name: str) -> None:
        layout = h5py.VirtualLayout(arrays[name].shape, np.uint8)
        layout[:] = h5py.VirtualSource(str(folder / "other.h5"), "/images", arrays[name].shape)
        f.create_virtual_dataset(name, layout)

    return write_h5(folder / "virtual.h5", arrays, images=virtual), None


def _soft_link_loop(folder: Path) -> Source:
    def loop(f: h5py.File, name: str) -> None:
        f[name] = h5py.SoftLink("/again")
        f["again"] = h5py.SoftLink(f"/{name}")

    return write_h5(folder / "loop.h5", shapes3d_arrays(), images=loop), None


def _huge_npz(folder: Path) -> Source:
    n = 10**12
    declared = {"imgs": ((n, 64, 64), "|u1"), "latents_classes": ((n, 6), "<i8"), "latents_values": ((n, 6), "<f8")}
    return write_headers(folder / "huge.npz", declared), None


def _huge_h5(folder: Path) -> Source:
    n = 10**12
    with h5py.File(folder / "huge.h5", "w") as f:
        f.create_dataset("images", (n, 64, 64, 3), np.uint8, chunks=(1, 64, 64, 3))
        f.create_dataset("labels", (n, 6), np.float64)
    return folder / "huge.h5", None


def _long_member(folder: Path) -> Source:
    arrays = dsprites_arrays()
    return write_zip(folder / "long.npz", arrays, zipfile.ZIP_DEFLATED, extra=bytes(50 * 2**20)), None


def _huge_header(folder: Path) -> Source:
    path = folder / "header.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("imgs.npy", "w") as member:
        length = 50 * 2**20
        member.write(b"\x93NUMPY\x02\x00" + struct.pack("<I", length))
        member.write(b" " * length)
    return path, None


def _damaged(folder: Path, method: int) -> Source:
    path = write_zip(folder / "damaged.npz", dsprites_arrays(), method)
    damage_middle(path, "imgs.npy")
    return path, None


def _encrypted(folder: Path) -> Source:
    path = write_zip(folder / "encrypted.npz", dsprites_arrays(), zipfile.ZIP_DEFLATED)
    patch_central_entry(path, "imgs.npy", 8, 0x1)
    return path, None


def _unknown_method(folder: Path) -> Source:
    path = write_zip(folder / "method.npz", dsprites_arrays(), zipfile.ZIP_DEFLATED)
    patch_central_entry(path, "latents_values.npy", 10, 99)  # 99: AES encryption
    return path, None


def _cache_under_a_file(folder: Path) -> Source:
    write_dsprites(folder / "d.npz")
    (folder / "notes.txt").write_text("a file, not a folder")
    return folder / "d.npz", folder / "notes.txt" / "cache"


def _dangling_cache(folder: Path) -> Source:
    write_dsprites(folder / "d.npz")
    (folder / "cache").symlink_to(folder / "gone")
    return folder / "d.npz", folder / "cache"


def _nan_latents(folder: Path) -> Source:
    arrays = dsprites_arrays()
    arrays["latents_values"][0, 1] = np.nan
    np.savez(folder / "nan.npz", **arrays)
    return folder / "nan.npz", None


def _nan_labels(folder: Path) -> Source:
    arrays = shapes3d_arrays()
    arrays["labels"][5, 0] = np.nan
    return write_h5(folder / "nan.h5", arrays), None


BAD_FILES: dict[str, tuple[Callable[[Path], Source], tuple[str, ...]]] = {
    "npz: big-endian uint16 images": (_wide_npz, ("wide.npz", "imgs", ">u2", "uint8")),
    "h5: uint16 images": (_wide_h5, ("wide.h5", "images", "uint16", "uint8")),
    "h5: images in an external file": (_external_storage, ("external.h5", "images", "external")),
    "h5: labels in an external file": (lambda f: _external_storage(f, "labels"), ("external.h5", "labels", "external")),
    "h5: an external link": (_external_link, ("linked.h5", "images", "another file")),
    "h5: a soft link to an external link": (_soft_link_to_an_external_link, ("soft-external.h5", "another file")),
    "h5: a virtual dataset of another file": (_virtual_elsewhere, ("virtual.h5", "images", "another file")),
    "h5: a soft-link loop": (_soft_link_loop, ("loop.h5", "images", "loop")),
    "npz: 570 bytes declaring 10^12 images": (_huge_npz, ("huge.npz", "imgs", "declares")),
    "h5: declaring 10^12 images": (_huge_h5, ("huge.h5", "labels", "memory")),
    "npz: a member 50 MB past its array": (_long_member, ("long.npz", "imgs", "declares")),
    "npz: a 50 MB .npy header": (_huge_header, ("header.npz", "imgs", "header")),
    "npz: a damaged LZMA member": (lambda f: _damaged(f, zipfile.ZIP_LZMA), ("damaged.npz", "imgs")),
    "npz: a damaged bzip2 member": (lambda f: _damaged(f, zipfile.ZIP_BZIP2), ("damaged.npz", "imgs")),
    "npz: an encrypted member": (_encrypted, ("encrypted.npz", "imgs", "encrypted")),
    "npz: an unknown compression method": (_unknown_method, ("method.npz", "latents_values", "compression")),
    "data.cache under a file": (_cache_under_a_file, ("notes.txt", "not a folder")),
    "data.cache a dangling link": (_dangling_cache, ("cache", "link")),
    "npz: NaN in latents_values": (_nan_latents, ("nan.npz", "latents_values", "NaN")),
    "h5: NaN in labels": (_nan_labels, ("nan.h5", "labels", "NaN")),
}


def assert_refused(run_cli, folder: Path, name: str) -> None:
    """``sbvae data`` on the bad file ``name`` ends in one line with its words, and writes nothing."""
    build, words = BAD_FILES[name]
    source, cache = build(folder)
    before = snapshot(folder)
    out = folder / "samples.png"
    code, _out, err = run_cli("data", source, "--out", out, "--cache", cache or folder / "fresh-cache")
    assert_one_line_error(code, err, *words)
    assert snapshot(folder) == before and not (folder / "fresh-cache").exists()


# -- 1. images wider than 8 bits -------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<u2", ">u2", "<u8"])
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_images_wider_than_8_bits_are_refused(tmp_path, run_cli, dtype, compressed):
    arrays = dsprites_arrays()
    arrays["imgs"] = arrays["imgs"].astype(dtype)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "wide.npz", **arrays)
    before = snapshot(tmp_path)
    code, _, err = run_cli("data", tmp_path / "wide.npz", "--out", tmp_path / "x.png", "--cache", tmp_path / "cache")
    assert_one_line_error(code, err, "wide.npz", "imgs", str(np.dtype(dtype)), "uint8")
    assert snapshot(tmp_path) == before  # no copy left in the cache


@pytest.mark.parametrize("dtype", ["<u2", ">u2", "<u8"])
@pytest.mark.parametrize("chunks", [None, (8, 64, 64, 3)])
def test_h5_images_wider_than_8_bits_are_refused(tmp_path, dtype, chunks):
    arrays = shapes3d_arrays()
    wide = lambda f, name: f.create_dataset(name, data=arrays[name].astype(dtype), chunks=chunks)
    path = write_h5(tmp_path / "wide.h5", arrays, images=wide)
    with pytest.raises(UserError, match=f"wide.h5: images holds {np.dtype(dtype)}, expected uint8"):
        open_data(str(path), 64)


@pytest.mark.parametrize("name", ["npz: big-endian uint16 images", "h5: uint16 images"])
def test_wide_images_on_the_command_line(tmp_path, run_cli, name):
    assert_refused(run_cli, tmp_path, name)


# -- 2 and 6. HDF5 datasets stored outside the file, links --------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "h5: images in an external file",
        "h5: labels in an external file",
        "h5: an external link",
        "h5: a soft link to an external link",
        "h5: a virtual dataset of another file",
        "h5: a soft-link loop",
    ],
)
def test_h5_data_outside_the_file_is_refused(tmp_path, run_cli, name):
    assert_refused(run_cli, tmp_path, name)


def test_h5_soft_links_and_virtual_datasets_inside_the_file_are_read(tmp_path):
    arrays = shapes3d_arrays()

    def soft(f: h5py.File, name: str) -> None:
        f.create_group("stored").create_dataset(name, data=arrays[name])
        f[name] = h5py.SoftLink(f"/stored/{name}")

    def virtual(f: h5py.File, name: str) -> None:
        f.create_dataset("stored_images", data=arrays[name], chunks=(8, 64, 64, 3))
        layout = h5py.VirtualLayout(arrays[name].shape, np.uint8)
        layout[:] = h5py.VirtualSource(".", "/stored_images", arrays[name].shape)
        f.create_virtual_dataset(name, layout)

    path = write_h5(tmp_path / "links.h5", arrays, images=virtual, labels=soft)
    data = open_data(str(path), 64)
    assert torch.equal(data.render(all_values(data)), as_nchw(arrays["images"]).float() / 255)


# -- 4 and 5. declared sizes, checked before allocating and copying ----------------------------


@pytest.mark.parametrize(
    "name",
    ["npz: 570 bytes declaring 10^12 images", "h5: declaring 10^12 images", "npz: a member 50 MB past its array"],
)
def test_declared_sizes_are_checked_before_allocating_or_copying(tmp_path, run_cli, name):
    assert_refused(run_cli, tmp_path, name)


def test_tables_and_batches_must_fit_in_memory(tmp_path, monkeypatch):
    """A batch of images is read at once and the factor tables whole: each must fit in the memory
    available (here made small) before it is allocated."""
    write_dsprites(tmp_path / "d.npz", compressed=False)  # 288 images of 64 x 64, tables [288, 6]
    monkeypatch.setattr("sbvae.data.rows.available_memory", lambda: 1_000_000)
    with pytest.raises(UserError, match=r"d\.npz: 64 of its images need about 1\.2 MB of memory, and 1\.0 MB"):
        open_data(str(tmp_path / "d.npz"), 64)
    monkeypatch.setattr("sbvae.data.files.BATCH_ROWS", 1)  # one image fits, the tables (110 kB) do not
    monkeypatch.setattr("sbvae.data.rows.available_memory", lambda: 50_000)
    with pytest.raises(UserError, match=r"d\.npz: its latents_classes and latents_values need about 0\.1 MB"):
        open_data(str(tmp_path / "d.npz"), 64)


def test_a_huge_npy_header_is_refused_before_it_is_read(tmp_path):
    path, _ = _huge_header(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="header"):
            open_data(str(path), 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20, f"{peak / 2**20:.0f} MB allocated to refuse a header"


# -- 6. damaged, encrypted and unknown zip members --------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "npz: a damaged LZMA member",
        "npz: a damaged bzip2 member",
        "npz: an encrypted member",
        "npz: an unknown compression method",
    ],
)
def test_unreadable_zip_members_are_one_line(tmp_path, run_cli, name):
    assert_refused(run_cli, tmp_path, name)


# -- 7. the cache folder -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["data.cache under a file", "data.cache a dangling link"])
def test_a_cache_that_cannot_be_a_folder_is_one_line(tmp_path, run_cli, name):
    assert_refused(run_cli, tmp_path, name)


def test_a_stopped_copy_removes_only_its_own_temporary_file(tmp_path, monkeypatch):
    """Another process finishes its copy into the cache folder while this one copies; this one is
    stopped: its partial file goes, the other's copy stays."""
    write_dsprites(tmp_path / "d.npz")
    cache = tmp_path / "cache"

    def others_finish_then_stop(source, sink, length=0):
        (cache / "other.imgs.npy").write_bytes(b"another process's finished copy")
        raise KeyboardInterrupt

    monkeypatch.setattr("sbvae.data.rows.shutil.copyfileobj", others_finish_then_stop)
    with pytest.raises(KeyboardInterrupt):
        open_data(str(tmp_path / "d.npz"), 64, cache=str(cache))
    assert [p.name for p in cache.iterdir()] == ["other.imgs.npy"]


# -- 11. factor tables -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["npz: NaN in latents_values", "h5: NaN in labels"])
def test_non_finite_factor_values_are_refused_when_the_file_is_opened(tmp_path, run_cli, name):
    assert_refused(run_cli, tmp_path, name)


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_factor_values_are_refused(tmp_path, value):
    arrays = dsprites_arrays()
    arrays["latents_values"][3, 4] = value
    np.savez(tmp_path / "inf.npz", **arrays)
    with pytest.raises(UserError, match=r"inf\.npz: latents_values holds NaN or infinity \(row 3, x\)"):
        open_data(str(tmp_path / "inf.npz"), 64)


# -- 16. Fortran order -------------------------------------------------------------------------------


@pytest.mark.parametrize("fortran", [("latents_classes",), DSPRITES_KEYS])
@pytest.mark.parametrize("compressed", [False, True])
def test_members_in_fortran_order_are_read(tmp_path, fortran, compressed):
    arrays = dsprites_arrays()
    write_fortran(tmp_path / "f.npz", arrays, fortran, compressed)
    with np.load(tmp_path / "f.npz") as archive:
        assert all(archive[key].flags.f_contiguous for key in fortran)
    data = open_data(str(tmp_path / "f.npz"), 64, cache=str(tmp_path / "cache"))
    values = all_values(data)
    assert torch.equal(data.render(values), as_nchw(arrays["imgs"]).float())
    assert torch.equal(data.labels(values)[1], torch.from_numpy(product(arrays["latents_classes"].max(0) + 1)[:, 1:]))
    copies = list((tmp_path / "cache").iterdir()) if (tmp_path / "cache").exists() else []
    assert len(copies) == int(compressed or "imgs" in fortran)  # images in Fortran order are converted once
    assert not [p for p in copies if p.name.startswith(".")]
