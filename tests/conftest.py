"""Shared fixtures: a tiny training config, an in-process CLI runner, folder snapshots."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from sbvae.cli import main
from sbvae.evaluation import probe as probe_module

# Small enough that a whole `sbvae train` (6 steps, pictures included) takes a few seconds on
# one core. One thread: the tensors are tiny, and the machine is shared.
TINY = [
    "data.image_size=32",
    "model.sbd_layers=2",
    "model.sbd_channels=16",
    "train.steps=6",
    "train.batch_size=8",
    "train.log_every=2",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "data.val_size=16",
    "train.threads=1",
    "train.mig_samples=200",
    "train.fidelity_samples=200",
]


@pytest.fixture(autouse=True, scope="session")
def _cache_of_this_session(tmp_path_factory):
    """Probes and uncompressed data copies go to a folder of this test session, never to the
    user's cache (``$XDG_CACHE_HOME/sbvae``); tests that need a fresh one set their own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """`sbvae train` sets torch's global thread count; keep it from leaking between tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def step_clock(monkeypatch) -> None:
    """Training time that does not depend on the machine: each reading of the training loop's
    clock (in this process) is half a second after the one before, so every step is logged as
    taking 0.5 s, whatever the decoder and however busy the machine; twins of the same length
    then finish at the same logged time."""
    readings = itertools.count(0.0, 0.5)
    monkeypatch.setattr("sbvae.training.loop.time", types.SimpleNamespace(perf_counter=lambda: next(readings)))


FULL_PROBE_STEPS = probe_module.PROBE_STEPS


@pytest.fixture(autouse=True, scope="session")
def _quick_probes():
    """Fidelity probes trained for a few steps: most tests check what is computed and where it
    goes, not what a probe reads, and a full probe costs about half a CPU-minute per dataset and
    image size. Tests that check what a probe reads use :func:`full_probes`. Processes started
    by a test (a study's workers, the CLI as a subprocess) train full probes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(probe_module, "PROBE_STEPS", 5)
        yield


@contextlib.contextmanager
def full_probes() -> Iterator[None]:
    """Within it, fidelity probes get their full training (:data:`FULL_PROBE_STEPS`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(probe_module, "PROBE_STEPS", FULL_PROBE_STEPS)
        yield


def study_metrics(monkeypatch, metrics: list[str]) -> None:
    """`sbvae reproduce` in this process evaluates its runs on ``metrics`` alone, whatever its
    experiment lists (worker processes too: a study hands each run its metrics)."""
    from sbvae.study import reproduce

    load = reproduce.load_experiment
    monkeypatch.setattr(reproduce, "load_experiment", lambda name: dataclasses.replace(load(name), metrics=metrics))


@pytest.fixture
def tiny_overrides() -> list[str]:
    """`--set` items for a run of a few seconds (a fresh list each time, safe to extend)."""
    return list(TINY)


def invoke(argv: list[str]) -> int:
    """Run the CLI in-process and return its exit code (argparse errors exit via SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*args) -> (code, stdout, stderr)`` for ``sbvae ARGS`` run in-process."""

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        code = invoke([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under ``folder`` (relative path -> (bytes, mtime_ns))."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished 6-step SBD run (checkpoints at steps 3 and 6). Tests must not modify it."""
    out = tmp_path_factory.mktemp("trained") / "run"
    code = invoke(["train", "--set", *TINY, "--out", str(out), "--quiet"])
    assert code == 0, "the tiny training run failed"
    return out


def small_trainer(out: Path, *overrides: str):
    """A CPU Trainer of the default preset shrunk to a 32 px, 8-channel SBD and batches of 12."""
    from sbvae.config import load_config
    from sbvae.training.loop import Trainer

    sizes = ["data.image_size=32", "model.sbd_layers=2", "model.sbd_channels=8", "train.batch_size=12"]
    return Trainer(load_config("default", [*sizes, *overrides]), out, torch.device("cpu"))


def wait_for(condition: Callable[[], bool], seconds: float = 240.0) -> None:
    """Poll ``condition`` until it holds; the bound only ends a broken run, it is not a timing assertion."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert condition(), "gave up waiting"
