"""Equal time: each SBD run as it stood when its twin (the DeConv run of the same seed and
variant) finished training.

Validation error and MIG are read from the SBD's logged rows at that elapsed training time
(:func:`logged_at`). Scores that need the model itself (:data:`CHECKPOINT_METRICS`) come from an
*equal-time snapshot*: the SBD trained again, same config and seed, only up to the step it had
logged at that time (``OUT/NAME/equal-time/``). Training is a function of the config, the seed
and the step, so the snapshot is the run as it stood then; :func:`snapshot_check` records how
closely its logged validation error matches the full run's at the same step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sbvae.study.experiments import Experiment, RunSpec
from sbvae.study.records import Row, RunRecord, Snapshot, twins, variant_key
from sbvae.study.runner import Backend, Outcome, ensure_runs
from sbvae.training.run_folder import split_rows

# Claimed scores that need a checkpoint: at equal time they come from equal-time snapshots.
CHECKPOINT_METRICS = ("heldout_sse", "heldout_gap", "heldout_position_r2")
# What an equal-time snapshot is evaluated on besides reconstruction (cheap; also a check).
SNAPSHOT_METRICS = ["mig"]


@dataclass(frozen=True)
class LoggedAt:
    """A run's last logged training step, validation error and MIG (with the steps they were
    logged at) within ``seconds`` of training; None for what was not logged by then."""

    seconds: float
    step: int | None
    val_sse: float | None
    val_sse_step: int | None
    discrete_mig: float | None
    mig_step: int | None


def logged_at(rows: list[Row], budget: float) -> LoggedAt:
    """The run's last logged training step, validation error and MIG at or before ``budget``
    seconds of training. Training time is read only where the loss is logged, so a validation or
    MIG row counts from the first loss row at or after its step (an upper bound on its time)."""
    elapsed = sorted((r["step"], r["elapsed"]) for r in split_rows(rows, "train", "elapsed"))
    steps = [step for step, seconds in elapsed if seconds <= budget]

    def seconds_at(step: int) -> float:
        return next((seconds for logged, seconds in elapsed if logged >= step), float("inf"))

    def last(split: str, key: str) -> tuple[int | None, float | None]:
        points = [(r["step"], r[key]) for r in split_rows(rows, split, key) if seconds_at(r["step"]) <= budget]
        return points[-1] if points else (None, None)

    sse_step, sse = last("val", "sse")
    mig_step, mig = last("mig", "discrete_mig")
    return LoggedAt(budget, max(steps, default=None), sse, sse_step, mig, mig_step)


def snapshot_specs(specs: Sequence[RunSpec], records: list[RunRecord]) -> list[tuple[str, RunSpec]]:
    """Each SBD run again (with the name of the run it repeats), trained only to the step it
    had logged when its twin finished training; none for an SBD run that had finished by then,
    had logged no step yet, or has no record (it failed)."""
    by_name = {r.name: r for r in records}
    twin_of = twins(records)
    out = []
    for spec in specs:
        twin = twin_of.get((variant_key(spec.variant), spec.seed))
        if spec.decoder != "sbd" or twin is None or spec.name not in by_name:
            continue
        step = logged_at(by_name[spec.name].rows, twin.training_seconds).step
        if step is None or step >= spec.config.train.steps:
            continue
        config = copy.deepcopy(spec.config)
        config.train.steps = step
        out.append((spec.name, replace(spec, name=f"{spec.name}-step{step}", config=config)))
    return out


def snapshot_check(snapshot: RunRecord, full: RunRecord) -> Snapshot:
    """The snapshot with the validation error both it and the full run logged last at the same
    step."""

    def val(rows: list[Row], step: int | None) -> float | None:
        return next((r["sse"] for r in split_rows(rows, "val") if r["step"] == step), None)

    full_steps = {r["step"] for r in split_rows(full.rows, "val")}
    steps = [r["step"] for r in split_rows(snapshot.rows, "val") if r["step"] in full_steps]
    step = steps[-1] if steps else None
    return Snapshot(
        snapshot.name,
        full.name,
        snapshot.config.train.steps,
        step,
        val(snapshot.rows, step),
        val(full.rows, step),
        snapshot.values,
    )


def equal_time_snapshots(
    experiment: Experiment,
    specs: Sequence[RunSpec],
    records: list[RunRecord],
    folder: Path,
    device: str,
    log: Callable[[str], None],
    num_train: int,
    backend: Backend,
) -> tuple[list[Snapshot], list[Outcome]]:
    """Train and score the equal-time snapshots an experiment's claims need (none for claims
    whose scores are logged during training) on ``backend``; with every snapshot run's outcome
    (a failed one has no snapshot)."""
    if not any(c.metric in CHECKPOINT_METRICS for c in experiment.claims):
        return [], []
    pairs = snapshot_specs(specs, records)
    if not pairs:
        return [], []
    folder.mkdir(exist_ok=True)
    outcomes = ensure_runs(
        [s for _, s in pairs], folder, SNAPSHOT_METRICS, device, log, backend, num_train, folder.parent.parent
    )
    full = {r.name: r for r in records}
    snapshots = [snapshot_check(o.record, full[name]) for (name, _), o in zip(pairs, outcomes) if o.record is not None]
    return snapshots, outcomes
