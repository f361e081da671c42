"""Peak resident memory of the default run, whole and stage by stage, against a bound of 1 GB.

    .venv/bin/python benchmarks/memory.py [--steps 200] [--threads N] [--samples 1000,10000,40000]
                                          [--fresh-probe]

1. ``sbvae train --set train.steps=STEPS`` in a fresh process: its peak resident memory, what
   ``/usr/bin/time -v`` reports as the maximum resident set size. Its end (MIG and fidelity on
   10,000 and 2,000 samples, every figure, the report) is that of the 14,000-step default, and
   a few hundred steps reach the whole run's peak.
2. The same run in this process, stage by stage: each stage's peak (Linux ``VmHWM``, reset
   before the stage through ``/proc/self/clear_refs``) and the resident memory before and after
   it; the figures one by one; last, for comparison, the traversal GIF's images decoded in one
   pass, as before issue 28 (now they are decoded ``DECODE_BATCH`` at a time).
3. Encoding ever larger samples with the run's model: the peak above the resident memory
   before each, which stays flat because encoding streams in bounded batches.

The fidelity probe comes from the user's cache, as in ``sbvae train``; with ``--fresh-probe``
each run trains its own (in a temporary cache folder), as the first run on a machine does.
Sizes are in the units of ``/usr/bin/time`` and ``/proc``: kB, MB = 1,000 kB, GB = 1,000,000 kB.
Linux only.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from sbvae.config import load_config
from sbvae.data import build_dataset, make_generator, require_ground_truth
from sbvae.evaluation.during_training import FidelityLogger, MigLogger
from sbvae.evaluation.fidelity import fidelity_probe
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.training.callbacks import Callback
from sbvae.training.device import select_device
from sbvae.training.loop import MetricsLog, Trainer, train
from sbvae.training.run_folder import FIGURE_FILES, load_model
from sbvae.viz.report import run_report
from sbvae.viz.run_figures import GIF_INPUTS, write_figures

BOUND_KB = 1_000_000
"""The bound of issue 28: 1 GB resident."""
GIF_FRAMES = 24
"""Frames of the traversal GIF (``traversal_gif``'s default)."""


def status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``: resident now; ``VmHWM``: its peak)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def verdict(peak_kb: int) -> str:
    return f"{peak_kb / 1e6:.2f} GB, {'within' if peak_kb <= BOUND_KB else 'OVER'} the bound of {BOUND_KB / 1e6:.0f} GB"


def row(name: str, before: int, peak: int, after: int) -> str:
    """One stage of the table: resident memory before, peak, peak above before, after (kB in, MB out)."""
    columns = [before, peak, peak - before, after]
    return f"{name:<58}" + "".join(f"{kb / 1e3:>{11 if i == 0 else 8}.0f}" for i, kb in enumerate(columns))


class Stages:
    """Consecutive stages of this process, each printed with its peak when the next starts."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.before = 0
        self.rows: list[tuple[str, int, int]] = []
        """(name, resident kB before, peak kB) of every stage ended."""
        print(f"\n{'stage':<58}{'RSS before':>11}{'peak':>8}{'above':>8}{'after':>8}   (MB)")

    def start(self, name: str) -> None:
        """End the current stage, if any, and start ``name``."""
        self.stop()
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
        self.name, self.before = name, status_kb("VmRSS")

    def stop(self) -> None:
        if self.name is None:
            return
        peak, after = status_kb("VmHWM"), status_kb("VmRSS")
        self.rows.append((self.name, self.before, peak))
        print(row(self.name, self.before, peak, after))
        self.name = None


class StagedEnd(Callback):
    """``callback``, its end measured as stage ``name``."""

    def __init__(self, callback: Callback, name: str, stages: Stages) -> None:
        self.callback, self.name, self.stages = callback, name, stages

    def on_step(self, trainer: Trainer, log: MetricsLog) -> None:
        self.callback.on_step(trainer, log)

    def on_end(self, trainer: Trainer, log: MetricsLog) -> None:
        self.stages.start(self.name)
        self.callback.on_end(trainer, log)


class ProbeFirst(Callback):
    """At the end, before the scores: the fidelity probe, trained when not cached (the scores then
    find it in memory)."""

    def __init__(self, stages: Stages) -> None:
        self.stages = stages

    def on_end(self, trainer: Trainer, log: MetricsLog) -> None:
        self.stages.start("fidelity probe: loaded, or trained if not cached")
        fidelity_probe(trainer.config, log=print)


class FiguresOneByOne(Callback):
    """What ``FiguresAndReport`` does at the end, a stage per figure, then the report, then the
    GIF's images decoded in one pass (the way they were before issue 28)."""

    def __init__(self, stages: Stages) -> None:
        self.stages = stages

    def on_end(self, trainer: Trainer, log: MetricsLog) -> None:
        for name in FIGURE_FILES:
            self.stages.start(f"figure {name}")
            write_figures(trainer.config, trainer.model, trainer.paths, [name], device=trainer.device)
        self.stages.start("report")
        run_report(trainer.paths.root)
        latent_dim = trainer.config.model.latent_dim
        codes = torch.zeros(latent_dim * GIF_FRAMES * GIF_INPUTS, latent_dim, device=trainer.device)
        self.stages.start(f"for comparison: the GIF's {len(codes)} images decoded at once")
        with torch.no_grad():
            trainer.model.decoder(codes)
        self.stages.stop()


def whole_run(steps: int, overrides: list[str], folder: Path) -> int:
    """Peak resident kB of ``sbvae train`` (``steps`` steps) in a fresh process."""
    command = [sys.executable, "-m", "sbvae", "train", "--quiet", "--out", str(folder / "whole")]
    done = subprocess.run([*command, "--set", f"train.steps={steps}", *overrides], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"sbvae train failed:\n{done.stderr}")
    print("".join(f"  {line}\n" for line in done.stdout.splitlines() if "fidelity probe" in line), end="")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB on Linux


def staged_run(steps: int, overrides: list[str], folder: Path, stages: Stages) -> Path:
    """The same run in this process, its training and its end measured stage by stage."""
    config = load_config("default", [f"train.steps={steps}", *overrides])
    scores = StagedEnd(MigLogger(), "scores at the end: MIG, fidelity", stages)
    callbacks = [ProbeFirst(stages), scores, FidelityLogger(), FiguresOneByOne(stages)]
    stages.start(f"training: {steps} steps, validation, checkpoints")
    return train(config, folder / "staged", progress=False, callbacks=callbacks)


def encoding(run_dir: Path, counts: list[int], stages: Stages) -> None:
    """Encode ``counts`` fresh samples in turn with the run's model, each count a stage."""
    device = select_device(None)
    config, model, _ = load_model(run_dir, device)
    sampler = GroundTruthSampler(require_ground_truth(build_dataset(config.data), "encoding"), model, device)
    sampler.codes_and_labels(counts[0], make_generator(0, "warm-up"))  # one-time allocations
    for count in counts:
        stages.start(f"encode {count:,} samples (batches of {sampler.batch})")
        sampler.codes_and_labels(count, make_generator(0, "benchmark"))
    stages.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, help="train.threads (default: the default's)")
    parser.add_argument("--samples", default="1000,10000,40000", help="sample counts to encode")
    parser.add_argument(
        "--fresh-probe", action="store_true", help="train the fidelity probe in each run, as a first run does"
    )
    args = parser.parse_args()
    overrides = [] if args.threads is None else [f"train.threads={args.threads}"]
    start_up = status_kb("VmHWM")
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"sbvae train --set train.steps={args.steps} {' '.join(overrides)}".rstrip() + ", a fresh process:")
        cache = [f"data.cache={folder / 'whole-cache'}"] if args.fresh_probe else []
        print(f"  peak resident {verdict(whole_run(args.steps, [*overrides, *cache], folder))}")
        stages = Stages()
        print(row("start-up: imports", 0, start_up, start_up))
        cache = [f"data.cache={folder / 'staged-cache'}"] if args.fresh_probe else []
        run_dir = staged_run(args.steps, [*overrides, *cache], folder, stages)
        run_peak = max([start_up, *(peak for _, _, peak in stages.rows[:-1])])  # not the comparison
        counts = [int(n) for n in args.samples.split(",")]
        encoding(run_dir, counts, stages)
    print(f"\npeak of the run's stages in this process: {verdict(run_peak)}")
    above = ", ".join(f"{(peak - before) / 1e3:.0f}" for _, before, peak in stages.rows[-len(counts) :])
    print(f"encoding {args.samples} samples: {above} MB above the resident memory before")


if __name__ == "__main__":
    main()
