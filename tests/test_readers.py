"""Readers beside a writer: two processes writing one file each leave a whole file and no
temporary; `evaluate`, `visualize` and `report` on a folder being trained say so, read its
checkpoint and leave the writer's lock alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from sbvae.errors import CheckpointError
from sbvae.training.run_folder import LOCK_FILE, RunLock, atomic_write_bytes, training_process

WAIT = 60  # seconds: only ends a broken test, never a timing assertion


def interleaved(target: Path, first: Callable[[BinaryIO], object], second: Callable[[BinaryIO], object]) -> list:
    """Start writing ``target`` with ``first`` in a thread; once it is inside its write, write
    it whole with ``second``; then let the first go on. The exceptions the first raised."""
    inside, resume = threading.Event(), threading.Event()
    raised: list[BaseException] = []

    def write_first(handle: BinaryIO) -> None:
        handle.write(b"first ")
        inside.set()
        assert resume.wait(WAIT)
        first(handle)

    def run() -> None:
        try:
            atomic_write_bytes(target, write_first)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert inside.wait(WAIT)
        atomic_write_bytes(target, second)
    finally:
        resume.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    return raised


def test_two_writers_of_one_file_each_write_a_whole_file(tmp_path):
    target = tmp_path / "traversals.png"
    raised = interleaved(target, lambda h: h.write(b"whole"), lambda h: h.write(b"second whole"))
    assert raised == []
    assert target.read_bytes() == b"first whole"  # the last to finish wins, whole
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left


def test_a_writer_that_fails_removes_only_its_own_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_bytes(b"old")

    def fail(handle: BinaryIO) -> None:
        raise RuntimeError("stopped")

    inside, resume = threading.Event(), threading.Event()

    def slow(handle: BinaryIO) -> None:
        handle.write(b"second ")
        inside.set()
        assert resume.wait(WAIT)
        handle.write(b"whole")

    thread = threading.Thread(target=atomic_write_bytes, args=(target, slow))
    thread.start()
    try:
        assert inside.wait(WAIT)
        with pytest.raises(RuntimeError, match="stopped"):
            atomic_write_bytes(target, fail)
        assert target.read_bytes() == b"old"
    finally:
        resume.set()
        thread.join(WAIT)
    assert target.read_bytes() == b"second whole"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_temporary_names_are_unique_and_end_in_tmp(tmp_path):
    target = tmp_path / "report.html"
    names = []
    for _ in range(2):
        atomic_write_bytes(target, lambda h: names.append(Path(h.name).name))
    assert names[0] != names[1]
    for name in names:
        assert re.fullmatch(rf"report\.html\.{os.getpid()}\.[0-9a-f]{{8,}}\.tmp", name), name


# ---------------------------------------------------------------------- beside `sbvae train`

HOLD = """
import sys
from sbvae.training.run_folder import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes it
"""


@pytest.fixture
def held_run(tmp_path, trained_run) -> Iterator[tuple[Path, int]]:
    """A copy of the trained run whose lock another process holds, as `sbvae train` does."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield run, holder.pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder ends, and the kernel drops its lock
        try:
            holder.wait(WAIT)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def still_held(run: Path, pid: int) -> None:
    assert (run / LOCK_FILE).read_text() == str(pid)  # the reader did not touch the lock file
    with pytest.raises(CheckpointError, match=f"in use by process {pid}"):
        RunLock(run).acquire()


READERS = [
    (("visualize", "--only", "kl"), "kl.png", "these figures show"),
    (("report", "--no-figures"), "report.html", "this report shows"),
    (("evaluate", "--metrics", "mig", "--num-train", "50", "--num-test", "20"), "metrics.json", "these scores are"),
]


@pytest.mark.parametrize(("args", "written", "note"), READERS, ids=[r[0][0] for r in READERS])
def test_a_reader_of_a_folder_being_trained_says_so_and_leaves_the_lock(held_run, run_cli, args, written, note):
    run, pid = held_run
    (run / written).unlink()
    assert training_process(run) == str(pid)
    code, _, err = run_cli(args[0], run, *args[1:])
    assert code == 0, err
    (line,) = [line for line in err.splitlines() if line.strip()]
    assert line.startswith(f"warning: {run} is being trained by process {pid}: {note}")
    assert (run / written).is_file() and not list(run.glob("*.tmp"))
    still_held(run, pid)


def test_a_folder_nobody_trains_gives_no_note_and_no_lock_file(tmp_path, trained_run, run_cli):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / LOCK_FILE).unlink()  # e.g. a run copied from elsewhere
    assert training_process(run) is None
    code, _, err = run_cli("report", run, "--no-figures")
    assert code == 0 and err == ""
    assert not (run / LOCK_FILE).exists()  # looking does not create it
    (run / LOCK_FILE).write_text("12345")  # left by a killed process: nobody holds it
    assert training_process(run) is None
    with RunLock(run):  # this process holds it (training draws its own report at the end)
        assert training_process(run) is None


def test_resuming_replaces_config_yaml_whole(tmp_path, trained_run, run_cli):
    """A reader that opened ``config.yaml`` before `sbvae train --resume` rewrote it reads the
    whole old file, never a truncated one: the new file is renamed into place."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = (run / "config.yaml").read_text()
    with open(run / "config.yaml") as reader:
        code, _, err = run_cli("train", "--resume", run, "--set", "train.steps=7", "--quiet")
        assert code == 0, err
        assert reader.read() == before
    assert "steps: 7" in (run / "config.yaml").read_text() and "steps: 7" not in before
