"""``sbvae reproduce EXPERIMENT``: SBD against DeConv, everything else equal, over seeds.

An experiment (``configs/experiments/NAME.yaml``, :mod:`sbvae.study.experiments`) names a base
preset, overrides, a number of seeds, an optional sweep (e.g. over beta), the metrics to compute
and the claims to test. Every run is an ordinary run folder under ``OUT/NAME/runs/``; a finished
run with the same config is reused, an interrupted one resumed, a shorter one extended, and a
same-config run of another experiment used where it is (:mod:`sbvae.study.runner`), so
re-running the command finishes a study. The outcome is ``results.json`` (every number),
``results.md`` (the tables and the verdicts, :mod:`sbvae.study.markdown`) and a comparison page,
all in ``OUT/NAME/``. Re-summarising a study that reports what its files already say writes
nothing (and counts no invocation), so re-running over finished runs leaves a checkout clean.

Two comparisons are reported (:mod:`sbvae.study.summary`). *Equal steps*: both decoders trained
for the same steps. *Equal time*: each SBD run as it was when its *twin* (the DeConv run of the
same seed and variant) finished, read from its logged rows or from an equal-time snapshot
(:mod:`sbvae.study.equal_time`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sbvae.config import build_config
from sbvae.errors import ConfigError, UserError
from sbvae.evaluation.evaluate import library_versions
from sbvae.study.equal_time import equal_time_snapshots
from sbvae.study.experiments import Experiment, experiment_names, load_experiment, plan
from sbvae.study.invocations import InvocationClock, earlier_invocations
from sbvae.study.markdown import results_markdown
from sbvae.study.records import ClaimResult, RunRecord, Snapshot, record
from sbvae.study.runner import ensure_runs, set_aside
from sbvae.study.summary import summarize
from sbvae.training.device import select_device
from sbvae.training.run_folder import RunPaths, atomic_write_bytes, read_json_object
from sbvae.viz.report import compare_runs

__all__ = ["experiment_names", "regenerate_command", "reproduce", "reproduce_all"]


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        )
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def regenerate_command(
    name: str, out: str | Path, seeds: int | None, steps: int | None, scale: str, overrides: Sequence[str]
) -> str:
    """The ``sbvae reproduce`` call that rebuilds a folder with the same settings (execution
    options such as ``--jobs`` left out: they change no number)."""
    parts = ["sbvae reproduce", name]
    if Path(out) != Path("results"):
        parts.append(f"--out {out}")
    if scale != "cpu":
        parts.append(f"--scale {scale}")
    if seeds is not None:
        parts.append(f"--seeds {seeds}")
    if steps is not None:
        parts.append(f"--steps {steps}")
    if overrides:
        parts.append("--set " + " ".join(overrides))
    return " ".join(parts)


def _results_json(
    experiment: Experiment,
    scale: str,
    command: str,
    summary: list[ClaimResult],
    records: list[RunRecord],
    snapshots: list[Snapshot],
    invocations: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "experiment": experiment.name,
        "description": experiment.description,
        "scale": scale,
        "command": command,
        "claims": [asdict(c) for c in experiment.claims],
        "summary": [e.to_json() for e in summary],
        "runs": [r.to_json() for r in records],
        "equal_time_snapshots": [s.to_json() for s in snapshots],
        "invocations": invocations,
        "git_commit": _git_commit(),
        "versions": library_versions(),
    }


STUDY_KEYS = ("experiment", "scale", "command", "claims", "summary", "runs", "equal_time_snapshots")
"""What a ``results.json`` says about its study; the rest (invocations, git commit, library
versions, the experiment's description as it read then) is bookkeeping about who wrote it."""


def _study_text(results: dict[str, Any]) -> str | None:
    """The study a ``results.json`` reports, as canonical JSON: its :data:`STUDY_KEYS`, with each
    run's config given the defaults of keys added since it was written, and no snapshots when
    the file is from before they were listed. None when its runs do not all hold valid configs."""
    runs = results.get("runs")
    if not isinstance(runs, list):
        return None
    try:
        runs = [{**run, "config": build_config(run["config"]).to_dict()} for run in runs]
    except (ConfigError, KeyError, TypeError, AttributeError):
        return None
    study = {key: results.get(key) for key in STUDY_KEYS}
    study["equal_time_snapshots"] = results.get("equal_time_snapshots", [])
    study["runs"] = runs
    return json.dumps(study, sort_keys=True)


def _already_reported(folder: Path, results: dict[str, Any]) -> bool:
    """Whether ``folder``'s ``results.json`` and ``results.md`` already report the study
    ``results`` describes (bookkeeping aside)."""
    earlier = read_json_object(folder / "results.json")
    if earlier is None or not (folder / "results.md").is_file():
        return False
    now = _study_text(results)
    return now is not None and _study_text(earlier) == now


def _compare_page(records: list[RunRecord], folder: Path, device: torch.device, log: Callable[[str], None]) -> None:
    """Draw ``OUT/NAME/compare/`` when the runs' checkpoints are at hand, else say why not."""
    if all(RunPaths(r.run).checkpoint.is_file() for r in records):
        compare_runs([r.run for r in records], folder / "compare", device=device)
    else:
        log("checkpoints not at hand (not committed): the comparison page is left as it was")


def reproduce(
    name: str,
    out: str | Path = "results",
    seeds: int | None = None,
    steps: int | None = None,
    scale: str = "cpu",
    fresh: bool = False,
    overrides: Sequence[str] = (),
    device: str | torch.device | None = None,
    log: Callable[[str], None] = print,
    num_train: int = 10_000,
    jobs: int = 1,
) -> Path:
    """Run (or finish) one experiment and write its results folder; returns the folder.
    ``num_train``: evaluation samples per run (disentanglement_lib's 10,000; half as many test);
    ``jobs``: runs trained at once (see :func:`sbvae.study.runner.ensure_runs`)."""
    if jobs <= 0:
        raise UserError(f"--jobs must be positive, not {jobs}")
    experiment = load_experiment(name)
    try:
        specs = plan(experiment, seeds, steps, scale, overrides)
    except ConfigError as exc:
        raise UserError(f"experiment {name}: {exc}") from None
    device = device if isinstance(device, torch.device) else select_device(device)
    folder = Path(out) / name
    runs_dir = folder / "runs"
    for earlier in (runs_dir, folder / "equal-time"):
        if fresh and earlier.exists():
            log(f"--fresh: earlier runs set aside in {set_aside(earlier)}")
    runs_dir.mkdir(parents=True, exist_ok=True)
    clock = InvocationClock(folder)
    try:
        runs = ensure_runs(specs, runs_dir, experiment.metrics, device, log, num_train, jobs)
        records = [record(spec, run, device) for spec, run in zip(specs, runs)]
        snapshots = equal_time_snapshots(
            experiment, specs, records, folder / "equal-time", device, log, num_train, jobs
        )
    except UserError:
        clock.withdraw()
        raise
    summary = summarize(experiment, records, snapshots)
    command = regenerate_command(name, out, seeds, steps, scale, overrides)
    results = _results_json(experiment, scale, command, summary, records, snapshots, [])
    if not fresh and _already_reported(folder, results):  # nothing trained: a clean checkout stays clean
        clock.withdraw()
        if not (folder / "compare" / "compare.html").is_file():
            _compare_page(records, folder, device, log)
        log(f"nothing changed since {folder / 'results.json'} was written: it and results.md are left as they are")
        log((folder / "results.md").read_text())
        return folder
    invocations = [*earlier_invocations(folder / "results.json"), *clock.finish()]
    results["invocations"] = invocations
    atomic_write_bytes(folder / "results.json", lambda h: h.write(json.dumps(results, indent=2).encode()))
    text = results_markdown(experiment, summary, records, invocations, command, snapshots)
    atomic_write_bytes(folder / "results.md", lambda h: h.write(text.encode()))
    clock.settled()
    _compare_page(records, folder, device, log)
    log(text)
    return folder


def reproduce_all(out: str | Path = "results", **options: Any) -> list[Path]:
    """:func:`reproduce` for every packaged experiment, in name order."""
    return [reproduce(name, out, **options) for name in experiment_names()]
