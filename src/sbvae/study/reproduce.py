"""``sbvae reproduce EXPERIMENT``: SBD against DeConv, everything else equal, over seeds.

An experiment (``configs/experiments/NAME.yaml``, :mod:`sbvae.study.experiments`) names a base
preset, overrides, a number of seeds, an optional sweep (e.g. over beta), the metrics to compute
and the claims to test. Every run is an ordinary run folder under ``OUT/NAME/runs/``; a finished
run with the same config is reused, an interrupted one resumed, a shorter one extended, and a
same-config run of another experiment used where it is (:mod:`sbvae.study.runner`), so
re-running the command finishes a study. The outcome is ``results.json`` (every number),
``results.md`` (the tables and the verdicts, :mod:`sbvae.study.markdown`) and a comparison page,
all in ``OUT/NAME/`` (:mod:`sbvae.study.results_folder`). The runs are made on a backend
(:mod:`sbvae.study.backends`): this machine, or a Ray cluster.

Two comparisons are reported (:mod:`sbvae.study.summary`). *Equal steps*: both decoders trained
for the same steps. *Equal time*: each SBD run as it was when its *twin* (the DeConv run of the
same seed and variant) finished, read from its logged rows or from an equal-time snapshot
(:mod:`sbvae.study.equal_time`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sbvae.errors import ConfigError, UserError
from sbvae.study.backends import LocalBackend
from sbvae.study.equal_time import equal_time_snapshots
from sbvae.study.experiments import Experiment, experiment_names, load_experiment, plan
from sbvae.study.invocations import InvocationClock
from sbvae.study.markdown import results_markdown
from sbvae.study.records import AblationResult, ClaimResult, RunRecord, Snapshot
from sbvae.study.results_folder import publish, unfinished
from sbvae.study.runner import Backend, check_runs, ensure_runs, set_aside
from sbvae.study.summary import ablation_results, summarize

__all__ = ["experiment_names", "regenerate_command", "reproduce", "reproduce_all"]


def regenerate_command(
    name: str, out: str | Path, seeds: int | None, steps: int | None, scale: str, overrides: Sequence[str]
) -> str:
    """The ``sbvae reproduce`` call that rebuilds a folder with the same settings (execution
    options such as ``--jobs`` and ``--backend`` left out: they change no number)."""
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
    failed: list[dict[str, Any]],
    ablations: list[AblationResult],
) -> dict[str, Any]:
    return {
        "experiment": experiment.name,
        "description": experiment.description,
        "scale": scale,
        "command": command,
        "claims": [asdict(c) for c in experiment.claims],
        "summary": [e.to_json() for e in summary],
        "ablation": [a.to_json() for a in ablations],
        "runs": [r.to_json() for r in records],
        "equal_time_snapshots": [s.to_json() for s in snapshots],
        "unfinished": failed,
    }


STUDY_KEYS = (
    "experiment",
    "scale",
    "command",
    "claims",
    "summary",
    "ablation",
    "runs",
    "equal_time_snapshots",
    "unfinished",
)
"""What a ``results.json`` says about its study; the rest (invocations, git commit, library
versions, the experiment's description as it read then) is bookkeeping about who wrote it."""
OLDER_FILES: dict[str, Any] = {"equal_time_snapshots": [], "unfinished": [], "ablation": []}
"""The study keys of a file written before they were listed, as they were then."""


def expected_time(experiment: Experiment, seeds: int | None, steps: int | None, scale: str) -> str | None:
    """A line with the wall time the experiment's YAML expects, when it is run as packaged (its
    seeds and steps at the CPU scale, the setting the estimate was made for); else ``None``."""
    packaged = seeds in (None, experiment.seeds) and steps is None and scale == "cpu"
    if experiment.wall_time is None or not packaged:
        return None
    return (
        f"{experiment.name}: about {experiment.wall_time.minutes} min in all with --jobs 2 on a 2-core CPU "
        "(finished runs are reused, so a resumed study takes less)"
    )


def reproduce(
    name: str,
    out: str | Path = "results",
    seeds: int | None = None,
    steps: int | None = None,
    scale: str = "cpu",
    fresh: bool = False,
    overrides: Sequence[str] = (),
    device: str | None = None,
    log: Callable[[str], None] = print,
    num_train: int = 10_000,
    backend: Backend | None = None,
) -> int:
    """Run (or finish) one experiment and write its results folder ``OUT/NAME``; returns how
    many of its runs failed (each reported with its last error line; the others go on).
    ``num_train``: evaluation samples per run (disentanglement_lib's 10,000; half as many test;
    fidelity samples and test images as many, at most 2,000);
    ``backend``: where the runs are made (:mod:`sbvae.study.backends`; default: in turn, here).
    """
    backend = LocalBackend() if backend is None else backend
    experiment = load_experiment(name)
    try:
        specs = plan(experiment, seeds, steps, scale, overrides)
    except ConfigError as exc:
        raise UserError(f"experiment {name}: {exc}") from None
    driver, runs_device = backend.devices(device)
    folder = Path(out) / name
    runs_dir = folder / "runs"
    if fresh:
        backend.check(specs)
        for earlier in (runs_dir, folder / "equal-time"):
            if earlier.exists():
                log(f"--fresh: earlier runs set aside in {set_aside(earlier)}")
    check_runs(specs, runs_dir, backend)  # a study that would be refused writes nothing
    if (expected := expected_time(experiment, seeds, steps, scale)) is not None:
        log(expected)
    runs_dir.mkdir(parents=True, exist_ok=True)
    clock = InvocationClock(folder)
    try:
        outcomes = ensure_runs(specs, runs_dir, experiment.metrics, runs_device, log, backend, num_train, Path(out))
        records = [o.record for o in outcomes if o.record is not None]
        snapshots, snapshot_outcomes = equal_time_snapshots(
            experiment, specs, records, folder / "equal-time", runs_device, log, num_train, backend
        )
    except UserError:
        clock.withdraw()
        raise
    failed = unfinished([*outcomes, *snapshot_outcomes])
    summary = summarize(experiment, records, snapshots)
    ablations = ablation_results(experiment, records)
    command = regenerate_command(name, out, seeds, steps, scale, overrides)
    publish(
        folder,
        _results_json(experiment, scale, command, summary, records, snapshots, failed, ablations),
        lambda invocations: results_markdown(
            experiment, summary, records, invocations, command, snapshots, failed, ablations
        ),
        STUDY_KEYS,
        OLDER_FILES,
        records,
        clock,
        driver,
        log,
        fresh,
        traversals=True,
    )
    return len(failed)


def reproduce_all(out: str | Path = "results", **options: Any) -> int:
    """:func:`reproduce` for every packaged experiment, in name order; returns how many runs
    failed in all."""
    return sum(reproduce(name, out, **options) for name in experiment_names())
