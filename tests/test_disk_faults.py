"""Faults of the machine (a full disk, a name too long) end in one line and exit 2, and leave
the last checkpoint as it was with no temporary file behind."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import snapshot
from sbvae.errors import environment_fault


def _mount_small_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder on a disk that fills up: a small tmpfs where this process may mount one (root),
    otherwise a normal folder where every checkpoint write fails with ENOSPC part-way."""
    folder = tmp_path / "disk"
    mounted = _mount_small_tmpfs(folder, "4m")
    if not mounted:

        def save_then_fail(obj, handle, *args, **kwargs):
            handle.write(b"\0" * 1000)
            raise RuntimeError("writer failed") from OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("sbvae.training.run_folder.torch.save", save_then_fail)
    yield folder, mounted
    if mounted:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(full_disk, trained_run, run_cli):
    folder, mounted = full_disk
    run = folder / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("*.png", "*.gif", "*.html", "tensorboard"))
    if mounted:  # fill the disk, leaving less than a checkpoint
        free = shutil.disk_usage(folder).free
        (folder / "filler").write_bytes(b"\0" * max(0, free - (run / "checkpoint.pt").stat().st_size // 2))
    before = (run / "checkpoint.pt").read_bytes()
    code, _, err = run_cli("train", "--resume", run, "--set", "train.steps=9", "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("sbvae: error: ") and "No space left on device" in err
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.rglob("*.tmp"))
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 6


def test_a_folder_name_too_long_is_one_line(tmp_path, run_cli, tiny_overrides):
    before = snapshot(tmp_path)
    code, _, err = run_cli("train", "--set", *tiny_overrides, "--out", tmp_path / ("a" * 300), "--quiet")
    assert code == 2 and err.count("\n") == 1 and "File name too long" in err, err
    assert snapshot(tmp_path) == before


def test_an_environment_fault_is_found_down_the_chain_of_causes():
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/data/run/checkpoint.pt.tmp")
        except OSError as inner:
            raise RuntimeError("unexpected pos") from inner
    except RuntimeError as outer:
        assert environment_fault(outer) == "/data/run/checkpoint.pt.tmp: Read-only file system"
    assert environment_fault(OSError(errno.ENOENT, "No such file or directory")) is None  # a user's path
    assert environment_fault(ValueError("a bug")) is None


def test_a_read_only_folder_is_one_line(tmp_path, run_cli, tiny_overrides, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:  # no mount here: a mkdir that fails as on a read-only mount

        def read_only(self, *args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system", str(self))

        monkeypatch.setattr(Path, "mkdir", read_only)
    try:
        code, _, err = run_cli("train", "--set", *tiny_overrides, "--out", folder / "run", "--quiet")
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(folder)], check=False)
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err, err
