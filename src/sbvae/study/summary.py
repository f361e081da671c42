"""A reproduction per variant and claim: SBD against DeConv over seeds, at equal steps and at
equal time (:func:`summarize`); an ablation per value of its key (:func:`ablation_results`);
the run shown per decoder (:func:`traversal_runs`). A sweep per cell: each score over seeds
(:func:`cells`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sbvae.study.equal_time import CHECKPOINT_METRICS, logged_at
from sbvae.study.experiments import Claim, Experiment, RunSpec
from sbvae.study.records import (
    AblationResult,
    CellResult,
    ClaimResult,
    EqualTimeResult,
    RunRecord,
    Snapshot,
    twins,
    variant_key,
)
from sbvae.study.stats import Comparison, compare, describe, verdict

# A sweep's scores in this order first (MIG, test error), then the others as the runs have them.
FIRST_SCORES = ("discrete_mig", "test_sse")

# The claimed metrics logged during training, and the field of LoggedAt that holds each.
LOGGED = {"discrete_mig": "discrete_mig", "test_sse": "val_sse"}


def summarize(
    experiment: Experiment, records: list[RunRecord], snapshots: Sequence[Snapshot] = ()
) -> list[ClaimResult]:
    """Per variant (in the order the records first show them) and claim: both decoders'
    values by seed, the difference SBD - DeConv and the verdict; at equal steps, and at equal
    time where the metric was logged during training or an equal-time snapshot holds it."""
    variants = list(dict.fromkeys(r.variant_key for r in records))
    return [
        _claim_result(claim, json.loads(variant), [r for r in records if r.variant_key == variant], snapshots)
        for variant in variants
        for claim in experiment.claims
    ]


def _by_seed(records: list[RunRecord], decoder: str) -> list[RunRecord]:
    return sorted((r for r in records if r.decoder == decoder), key=lambda r: r.seed)


def _values(records: list[RunRecord], metric: str) -> list[float]:
    return [r.values[metric] for r in records if r.values.get(metric) is not None]


def _claim_result(
    claim: Claim, variant: dict[str, Any], group: list[RunRecord], snapshots: Sequence[Snapshot]
) -> ClaimResult:
    """One claim for the runs of one variant."""
    sbd, deconv = _values(_by_seed(group, "sbd"), claim.metric), _values(_by_seed(group, "deconv"), claim.metric)
    result = compare(sbd, deconv)
    timed = equal_time_pairs(claim.metric, group, snapshots)
    equal_time = None
    if timed is not None:
        label, sbd_at, deconv_at = timed
        timed_result = compare(sbd_at, deconv_at)
        equal_time = EqualTimeResult(
            label, sbd_at, deconv_at, timed_result, verdict(timed_result, claim.higher_is_better)
        )
    return ClaimResult(claim, variant, sbd, deconv, result, verdict(result, claim.higher_is_better), equal_time)


def equal_time_pairs(
    metric: str, group: list[RunRecord], snapshots: Sequence[Snapshot]
) -> tuple[str, list[float], list[float]] | None:
    """For the runs of one variant, per seed in order: each SBD run's value of ``metric`` when
    its twin finished training, and the twin's final value; with the name of what was compared
    (``val_sse`` for ``test_sse``). A logged metric is read from the rows; a checkpoint metric
    from the SBD's snapshot, or from the SBD's final scores when it had finished by then. Seeds
    without a twin or without both values are left out; None for a metric known neither from
    the logs nor from a snapshot."""
    if metric not in LOGGED and metric not in CHECKPOINT_METRICS:
        return None
    twin_of = twins(group)
    at_time = {s.repeats: s.values for s in snapshots}
    sbd_at, deconv_at = [], []
    for r in _by_seed(group, "sbd"):
        twin = twin_of.get((r.variant_key, r.seed))
        if twin is None:
            continue
        if metric in LOGGED:
            mine = getattr(logged_at(r.rows, twin.training_seconds), LOGGED[metric])
            theirs = getattr(logged_at(twin.rows, float("inf")), LOGGED[metric])
        else:
            finished = r.training_seconds <= twin.training_seconds
            mine = (r.values if finished else at_time.get(r.name, {})).get(metric)
            theirs = twin.values.get(metric)
        if mine is not None and theirs is not None:
            sbd_at.append(mine)
            deconv_at.append(theirs)
    return (LOGGED.get(metric, metric), sbd_at, deconv_at)


def ablation_verdict(baseline: Comparison, here: Comparison, change: Comparison, higher_is_better: bool) -> str:
    """How the SBD - DeConv gap changes from the baseline (``baseline``) to a variant (``here``),
    given the SBD of the variant against the SBD at the baseline (``change``), each a 95% Welch
    interval: *no gap at the baseline* unless the DeConv is better there (the claim not
    reproduced); else *stays* unless the variant's SBD is better than the baseline's (*widens*
    when it is worse); a better SBD *narrows* the gap while the DeConv is still better, and
    *closes* it otherwise."""
    if verdict(baseline, higher_is_better) != "not reproduced":
        return "no gap at the baseline"
    moved = verdict(change, higher_is_better)
    if moved != "reproduced":
        return "widens" if moved == "not reproduced" else "stays"
    return "narrows" if verdict(here, higher_is_better) == "not reproduced" else "closes"


def ablation_results(experiment: Experiment, records: list[RunRecord]) -> list[AblationResult]:
    """The experiment's ablation (if any) at every value of its key other than the baseline, in
    the order the records first show them; none without runs at the baseline."""
    ablation = experiment.ablation
    if ablation is None:
        return []
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        groups.setdefault(r.variant_key, []).append(r)
    results = []
    for key, group in groups.items():
        variant = json.loads(key)
        base = groups.get(variant_key({**variant, ablation.key: ablation.baseline}))
        if variant.get(ablation.key) == ablation.baseline or base is None:
            continue
        sbd, deconv = (
            _values(_by_seed(group, "sbd"), ablation.metric),
            _values(_by_seed(group, "deconv"), ablation.metric),
        )
        base_sbd = _values(_by_seed(base, "sbd"), ablation.metric)
        base_deconv = _values(_by_seed(base, "deconv"), ablation.metric)
        baseline, here, change = compare(base_sbd, base_deconv), compare(sbd, deconv), compare(sbd, base_sbd)
        judged = ablation_verdict(baseline, here, change, ablation.higher_is_better)
        results.append(AblationResult(ablation, variant, baseline, here, change, judged))
    return results


def traversal_runs(records: Sequence[RunRecord]) -> list[RunRecord]:
    """The run whose traversals a study shows, per variant and decoder (in the order the records
    first show them): the one with the median test error (the lower middle one of an even
    count); a rule fixed before any result, so no picture is chosen by eye."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.variant_key, r.decoder), []).append(r)
    chosen = []
    for group in groups.values():
        ranked = sorted(
            group, key=lambda r: (r.values.get("test_sse") is None, r.values.get("test_sse") or 0.0, r.seed)
        )
        chosen.append(ranked[(len(ranked) - 1) // 2])
    return chosen


def cells(specs: Sequence[RunSpec], records: Sequence[RunRecord]) -> list[CellResult]:
    """Per cell of a sweep (in the order the specs first show them): its planned and finished
    runs, and the mean with its 95% t interval over seeds of every score its runs have
    (:data:`FIRST_SCORES` first)."""
    variants = list(dict.fromkeys(variant_key(s.variant) for s in specs))
    results = []
    for key in variants:
        group = [r for r in records if r.variant_key == key]
        names = [m for m in FIRST_SCORES if any(m in r.values for r in group)]
        names += [m for r in group for m in r.values if m not in names]
        scores = {m: describe(_values(group, m)) for m in dict.fromkeys(names) if _values(group, m)}
        planned = sum(variant_key(s.variant) == key for s in specs)
        results.append(CellResult(json.loads(key), planned, len(group), scores))
    return results
