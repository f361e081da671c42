"""What a study keeps: a run's record, an equal-time snapshot, a claim's result, a sweep cell's
result.

Each record's ``to_json`` writes exactly the keys ``results.json`` holds for it. The *twin* of
an SBD run is the DeConv run of the same seed and variant (:func:`twins`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sbvae.config import Config
from sbvae.evaluation.heldout import heldout_statistics
from sbvae.evaluation.live_units import unit_statistics
from sbvae.evaluation.position import position_statistics
from sbvae.study.experiments import Ablation, Claim, RunSpec
from sbvae.study.stats import Comparison, Interval
from sbvae.training.run_folder import RunPaths, read_metrics, read_scores, split_rows

Row = dict[str, Any]  # a row of metrics.jsonl


def variant_key(variant: dict[str, Any]) -> str:
    """A sweep variant as a comparable string (key order does not matter)."""
    return json.dumps(variant, sort_keys=True)


@dataclass(frozen=True)
class RunRecord:
    """One finished run of a study: what it is, where it is, its scores and its logged rows.

    ``values``: its scores by name (``test_sse``, the metrics' scores, held-out and geometry
    scores); ``heldout``: its held-out statistics, None for data without a held-out region;
    ``late_val_drop``: see :func:`late_drop`; ``rows``: its metrics.jsonl (not written to
    results.json)."""

    name: str
    decoder: str
    seed: int
    variant: dict[str, Any]
    run: Path
    training_seconds: float
    late_val_drop: float | None
    values: dict[str, float]
    heldout: dict[str, Any] | None
    config: Config
    rows: list[Row]

    @property
    def variant_key(self) -> str:
        return variant_key(self.variant)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decoder": self.decoder,
            "seed": self.seed,
            "variant": self.variant,
            "run": str(self.run),
            "training_seconds": self.training_seconds,
            "late_val_drop": self.late_val_drop,
            "values": self.values,
            "heldout": self.heldout,
            "config": self.config.to_dict(),
        }


@dataclass(frozen=True)
class Snapshot:
    """An SBD run trained again to the step it had logged when its twin finished.

    ``repeats``: the name of the full run it repeats; ``step``: the step it was trained to;
    ``val_step``: the last step at which both it and the full run logged the validation error,
    ``val_sse`` and ``full_run_val_sse`` that error in each (equal when it is the same run);
    ``values``: its scores."""

    name: str
    repeats: str
    step: int
    val_step: int | None
    val_sse: float | None
    full_run_val_sse: float | None
    values: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "of": self.repeats,
            "step": self.step,
            "val_step": self.val_step,
            "val_sse": self.val_sse,
            "full_run_val_sse": self.full_run_val_sse,
            "values": self.values,
        }


@dataclass(frozen=True)
class EqualTimeResult:
    """A claim at equal time: each SBD run's value when its twin finished, the twin's final
    value, per seed (``metric`` names where the SBD's value was read: ``val_sse`` for
    ``test_sse``), and their comparison."""

    metric: str
    sbd: list[float]
    deconv: list[float]
    comparison: Comparison
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "sbd": self.sbd,
            "deconv": self.deconv,
            **self.comparison.to_dict(),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class ClaimResult:
    """One claim for one variant: both decoders' final values per seed, their comparison at
    equal steps and its verdict, and the comparison at equal time where it can be made."""

    claim: Claim
    variant: dict[str, Any]
    sbd: list[float]
    deconv: list[float]
    equal_steps: Comparison
    verdict: str
    equal_time: EqualTimeResult | None = None

    @property
    def metric(self) -> str:
        return self.claim.metric

    def to_json(self) -> dict[str, Any]:
        entry = {
            "variant": self.variant,
            "claim": self.claim.number,
            "text": self.claim.text,
            "metric": self.claim.metric,
            "higher_is_better": self.claim.higher_is_better,
            "sbd": self.sbd,
            "deconv": self.deconv,
            "equal_steps": self.equal_steps.to_dict(),
            "verdict": self.verdict,
        }
        if self.equal_time is not None:
            entry["equal_time"] = self.equal_time.to_json()
        return entry


@dataclass(frozen=True)
class AblationResult:
    """An ablation at one value of its key (``variant``): SBD - DeConv at the baseline value
    and here, the SBD here against the SBD at the baseline (``change``), and the verdict."""

    ablation: Ablation
    variant: dict[str, Any]
    baseline: Comparison
    here: Comparison
    change: Comparison
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "claim": self.ablation.number,
            "text": self.ablation.text,
            "metric": self.ablation.metric,
            "key": self.ablation.key,
            "baseline_value": self.ablation.baseline,
            "baseline": self.baseline.to_dict(),
            "here": self.here.to_dict(),
            "change": self.change.to_dict(),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class CellResult:
    """One cell of a sweep (one value of each grid key): how many runs it planned and
    finished, and each score's mean with its interval over the finished seeds."""

    variant: dict[str, Any]
    planned: int
    finished: int
    scores: dict[str, Interval]

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "planned": self.planned,
            "finished": self.finished,
            "scores": {name: interval.to_dict() for name, interval in self.scores.items()},
        }


def twins(records: list[RunRecord]) -> dict[tuple[str, int], RunRecord]:
    """The DeConv runs by (variant key, seed): the twin of an SBD run is found under its own."""
    return {(r.variant_key, r.seed): r for r in records if r.decoder == "deconv"}


def late_drop(rows: list[Row], steps: int) -> float | None:
    """How much the validation error still fell over the last quarter of training (a fraction
    of its value at three quarters): near 0 for a run that has flattened. None when no
    validation error was logged by three quarters, or none after."""
    val = [(r["step"], r["sse"]) for r in split_rows(rows, "val", "sse")]
    earlier = [v for step, v in val if step <= 0.75 * steps]
    if not earlier or val[-1][0] <= 0.75 * steps:
        return None
    return (earlier[-1] - val[-1][1]) / earlier[-1]


def record(spec: RunSpec, run: Path, device: torch.device) -> RunRecord:
    """Everything results.json keeps about one run, read from its folder (its held-out,
    geometry and live-unit statistics computed if they are not cached there)."""
    scores = read_scores(run) or {}
    rows = read_metrics(RunPaths(run).metrics)
    elapsed = max((r.get("elapsed", 0.0) for r in split_rows(rows, "train")), default=0.0)
    values = {k: v for k, v in scores.get("scores", {}).items() if isinstance(v, (int, float))}
    values["test_sse"] = scores.get("reconstruction", {}).get("sse")
    heldout = heldout_statistics(run, device)
    if heldout is not None:
        values["heldout_sse"] = heldout["sse"]
        values["heldout_gap"] = heldout["sse"] - values["test_sse"]
        values["heldout_position_r2"] = heldout["heldout_position_r2"]
    values["position_r2"] = (heldout or position_statistics(run, device))["position_r2"]
    units = unit_statistics(run, device)
    if units is not None:
        values["last_layer_live"] = units["last_hidden_live"]
    return RunRecord(
        spec.name,
        spec.decoder,
        spec.seed,
        spec.variant,
        run,
        elapsed,
        late_drop(rows, spec.config.train.steps),
        values,
        heldout,
        spec.config,
        rows,
    )
