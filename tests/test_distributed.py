"""Training across processes: `torchrun` with gloo on the CPU against one process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import TINY
from sbvae.errors import ConfigError
from sbvae.training.distributed import World, check_batch


def torchrun(*args: str) -> subprocess.CompletedProcess:
    # --standalone: the rendezvous takes a free port, so other jobs on the machine cannot collide with it
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "sbvae",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_shards_cover_the_global_batch_once():
    rows = [list(range(12))[World(rank, 3).shard(12)] for rank in range(3)]
    assert rows == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    check_batch(World(0, 3), 12, 2)
    with pytest.raises(ConfigError, match="does not split over 3"):
        check_batch(World(0, 3), 10, 0)
    with pytest.raises(ConfigError, match="micro_batch 3"):
        check_batch(World(0, 2), 8, 3)


def test_two_processes_train_the_same_model_as_one(tmp_path, trained_run):
    run = tmp_path / "ddp"
    done = torchrun("train", "--set", *TINY, "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    one = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    two = torch.load(run / "checkpoint.pt", weights_only=True)
    assert one["step"] == two["step"] == 6
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=1e-5)
    # one set of files, the same set one process writes, and the global batch's loss in the log
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in trained_run.iterdir())
    assert len(list((run / "tensorboard").iterdir())) == 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    single = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(rows, single):
        if a["split"] == "train":
            assert a["step"] == b["step"] and a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert done.stdout.count("done: step 6") == 1  # only rank 0 reports

    resumed = torchrun("train", "--resume", str(run), "--set", "train.steps=8", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 8


def test_a_batch_that_does_not_split_stops_every_rank(tmp_path):
    run = tmp_path / "odd"
    done = torchrun("train", "--set", *TINY, "train.batch_size=7", "--out", str(run), "--quiet")
    assert done.returncode != 0
    # every rank checks, but torchrun stops the others as soon as one fails, so a rank that is
    # slower to start (a busy machine) may be stopped before it prints: CI once saw one line of two
    assert done.stderr.count("sbvae: error: train.batch_size 7 does not split over 2 processes") >= 1
    assert not run.exists()


def test_an_existing_run_folder_stops_every_rank(tmp_path, trained_run):
    run = tmp_path / "taken"
    shutil.copytree(trained_run, run)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir())
    done = torchrun("train", "--set", *TINY, "--out", str(run), "--quiet")
    assert done.returncode != 0 and done.stderr.count("already exists and is not empty") >= 1
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.iterdir()) == before


def test_a_rank_ends_at_once_with_its_code_and_its_output_flushed():
    """After a process group, a rank exits without interpreter shutdown (gloo threads left
    alive by DDP can abort it there); its last unflushed output must still arrive."""
    script = (
        "import atexit, sys\n"
        "from sbvae.training import distributed\n"
        "distributed.end_rank(0)\n"  # not in a group: returns
        "atexit.register(print, 'shutdown ran')\n"
        "distributed._joined = True\n"
        "sys.stdout.write('last words'); sys.stderr.write('last error')\n"
        "distributed.end_rank(3)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (3, "last words", "last error")
