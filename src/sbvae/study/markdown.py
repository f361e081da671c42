"""``results.md`` of a reproduction (what was run, the claims table, the decoders table, the
ablation table, the traversals, the runs table, the snapshots table) and of a sweep (what was
run, the cells table, the runs table); both list the runs that did not finish."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sbvae.study.equal_time import CHECKPOINT_METRICS
from sbvae.study.experiments import DECODERS, Experiment
from sbvae.study.invocations import wall_time_text
from sbvae.study.records import AblationResult, CellResult, ClaimResult, RunRecord, Snapshot
from sbvae.study.stats import Comparison, Interval, describe
from sbvae.study.summary import traversal_runs

SHAPE_FIDELITY = ("fidelity_shape", "fidelity_armrests", "fidelity_leg_length")
"""The fidelity of reconstructions shown beside MIG and test error: the shape of sprites and of
objects_room's object; chairs have no shape factor, so their armrests and leg length (issue
26's targets there). A run without one of them shows n/a."""
# Shown per run beside the claimed metrics, to read them against (in-distribution error,
# shape fidelity and geometry).
CONTEXT_METRICS = (
    "test_sse",
    "discrete_mig",
    *SHAPE_FIDELITY,
    "factor_vae_eval_accuracy",
    "position_r2",
    "last_layer_live",
)
DECODER_SCORES = ("discrete_mig", "test_sse", *SHAPE_FIDELITY)

VERDICTS = (
    "Verdicts: *reproduced* when the 95% Welch interval of SBD - DeConv excludes 0 on the claimed side, "
    "*not reproduced* when it excludes 0 on the other side, otherwise *inconclusive*."
)
LATE_DROP = (
    "*Late drop*: how much the validation error still fell over the last quarter of the steps, as a "
    "fraction of its value at three quarters; a run whose error still fell by more than about 10% had "
    "not flattened when it stopped. *last_layer_live*: the share of the decoder's last hidden layer's "
    "channels that still fire on some image (units.json; n/a for a run whose checkpoint was not kept)."
)
SNAPSHOTS = (
    "Each SBD run trained again from scratch, same config and seed, to the step it had logged when its "
    "DeConv twin finished training (`equal-time/`), for the scores that need the model at that time. "
    "Its last validation error beside the full run's at the same step shows that it is the same run."
)
UNFINISHED = (
    "Runs with no result here: the last line of the error that stopped each, or *not finished yet* for a run "
    "still to train or being trained. Running the same command again retries them, each from its last checkpoint."
)
CELLS = (
    "Each score's mean over the cell's finished seeds with its 95% t interval [low, high] (n/a with one seed); "
    "*runs*: finished of planned."
)
NO_EQUAL_TIME_VALUE = "no SBD value was logged before its DeConv twin finished"
DECODERS_INTRO = (
    "Mean ± sd over each decoder's finished seeds of MIG, test squared error per image and the fidelity of the "
    "reconstructions (the probe's accuracy on sprites' and objects_room's shape; on chairs, which have no "
    "shape, its accuracy on armrests and R^2 on leg length; n/a where the data has no such factor)."
)
ABLATION = (
    "SBD - DeConv at the baseline and at each other value, and the SBD there against the SBD at the baseline, "
    "each with its 95% Welch interval. The verdict, a rule fixed before any run: *no gap at the baseline* "
    "unless the DeConv is better there; else *stays* unless the SBD here is better than at the baseline "
    "(*widens* when it is worse); a better SBD *narrows* the gap while the DeConv is still better, and "
    "*closes* it when it no longer is."
)
TRAVERSALS = (
    "One run per decoder and variant, chosen by a rule fixed before any result: the one with the median test "
    "error (the lower middle one of an even count). Each row moves one latent from -2 to +2 around a validation "
    "image's posterior mean, the highest KL first (the run's own traversals.png, copied into `traversals/`)."
)


def fmt(value: float | None) -> str:
    """A number to four significant digits; ``n/a`` for None or NaN."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def _row(cells: Sequence[str]) -> str:
    return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _section(title: str, intro: str, table: list[str]) -> list[str]:
    return ["", f"## {title}", "", intro, "", *table]


def results_markdown(
    experiment: Experiment,
    summary: Sequence[ClaimResult],
    records: Sequence[RunRecord],
    invocations: list[dict[str, Any]],
    command: str,
    snapshots: Sequence[Snapshot] = (),
    unfinished: Sequence[dict[str, Any]] = (),
    ablations: Sequence[AblationResult] = (),
) -> str:
    """The human-readable outcome: what was run, the table per claim, the decoders' scores, the
    ablation, the traversals, the runs, the snapshots, the runs that did not finish."""
    claimed = list(dict.fromkeys(c.metric for c in experiment.claims))
    lines = [
        *overview(experiment, records, invocations, command),
        *claims_table(summary),
        *_section("Per decoder", DECODERS_INTRO, decoders_table(records)),
    ]
    if ablations:
        ablation = ablations[0].ablation
        lines += _section(f"Claim {ablation.number} ablation: {ablation.text}", ABLATION, ablation_table(ablations))
    lines += _section("Traversals", TRAVERSALS, traversals_table(records))
    lines += _section("Per run", LATE_DROP, runs_table(records, claimed))
    if snapshots:
        lines += _section("Equal-time snapshots", SNAPSHOTS, snapshots_table(snapshots))
    return "\n".join([*lines, *unfinished_section(unfinished)]) + "\n"


def unfinished_section(unfinished: Sequence[dict[str, Any]]) -> list[str]:
    """The runs without a result (see :func:`sbvae.study.results_folder.unfinished`); none when
    every run finished."""
    if not unfinished:
        return []
    rows = [[u["name"], u["error"] or "not finished yet"] for u in unfinished]
    return _section("Not finished", UNFINISHED, _table(["run", "last error"], rows))


def sweep_markdown(
    command: str,
    cells: Sequence[CellResult],
    records: Sequence[RunRecord],
    invocations: list[dict[str, Any]],
    unfinished: Sequence[dict[str, Any]] = (),
) -> str:
    """A sweep's outcome: what was run, each cell's scores over seeds, the runs, the runs that
    did not finish."""
    keys = list(dict.fromkeys(k for c in cells for k in c.variant))
    scores = list(dict.fromkeys(k for c in cells for k in c.scores))
    planned = sum(c.planned for c in cells)
    minutes = sum(r.training_seconds for r in records) / 60
    rows = [
        [
            *(str(c.variant[k]) for k in keys),
            f"{c.finished}/{c.planned}",
            *(_interval(c.scores[m]) if m in c.scores else "n/a" for m in scores),
        ]
        for c in cells
    ]
    lines = [
        "# Sweep",
        "",
        f"Command: `{command}` (the runs' config.yaml files hold every setting).",
        "",
        (
            f"Runs: {len(records)} finished of {planned} ({len(cells)} cells x seeds); training time "
            f"{minutes:.0f} min in all (as logged by each run); {wall_time_text(invocations, 'sbvae sweep')}."
        ),
        *_section("Per cell", CELLS, _table([*keys, "runs", *scores], rows)),
        *_section("Per run", LATE_DROP, runs_table(records, scores)),
        *unfinished_section(unfinished),
    ]
    return "\n".join(lines) + "\n"


def _interval(result: Interval) -> str:
    return f"{fmt(result.mean)} [{fmt(result.ci_low)}, {fmt(result.ci_high)}]"


def overview(
    experiment: Experiment, records: Sequence[RunRecord], invocations: list[dict[str, Any]], command: str
) -> list[str]:
    """The title, the description, the command, the runs and their time, how verdicts are given."""
    sweep = " x " + ", ".join(experiment.sweep) if experiment.sweep else ""
    records = distinct(records)
    minutes = sum(r.training_seconds for r in records) / 60
    return [
        f"# {experiment.name}",
        "",
        experiment.description,
        "",
        (
            f"Command: `{command}` (the experiment's YAML plus these options; the runs' config.yaml files "
            f"hold every setting)."
        ),
        "",
        (
            f"Runs: {len(records)} ({', '.join(DECODERS)} x seeds{sweep}); training time {minutes:.0f} min in "
            f"all (as logged by each run); {wall_time_text(invocations, 'sbvae reproduce')}. Metrics: "
            f"{', '.join(experiment.metrics)} (posterior means; see metrics.json in each run)."
        ),
        *wall_time_lines(experiment),
        "",
        VERDICTS,
        "",
    ]


def wall_time_lines(experiment: Experiment) -> list[str]:
    """The wall time the experiment is expected to take, and why (none if it does not say)."""
    if experiment.wall_time is None:
        return []
    expected, packaged = experiment.wall_time, f"{experiment.seeds} seeds per decoder, `--scale cpu`"
    return [
        "",
        f"Expected wall time as packaged ({packaged}) with `--jobs 2` on the 2-core machine: "
        f"about {expected.minutes} min. {expected.why}",
    ]


def _comparison_row(label: str, variant: str, metric: str, result: Comparison, verdict: str) -> list[str]:
    return [
        label,
        variant,
        metric,
        f"{fmt(result.mean_a)} ± {fmt(result.std_a)}",
        f"{fmt(result.mean_b)} ± {fmt(result.std_b)}",
        f"{fmt(result.difference)} [{fmt(result.ci_low)}, {fmt(result.ci_high)}]",
        fmt(result.p_value),
        verdict,
    ]


def claims_table(summary: Sequence[ClaimResult]) -> list[str]:
    """A row per claim and variant at equal steps, followed by its row at equal time if any."""
    rows = []
    for entry in summary:
        claim = entry.claim
        variant = _variant_text(entry.variant)
        rows.append(
            _comparison_row(
                f"{claim.number}: {claim.text}",
                variant,
                f"{claim.metric} (equal steps)",
                entry.equal_steps,
                entry.verdict,
            )
        )
        timed = entry.equal_time
        if timed is None:
            continue
        label = f"{claim.number} at equal time"
        if timed.sbd:
            rows.append(
                _comparison_row(
                    label, variant, f"{timed.metric} (SBD at DeConv's time)", timed.comparison, timed.verdict
                )
            )
        else:
            rows.append([label, variant, timed.metric, NO_EQUAL_TIME_VALUE, "", "", "", "n/a"])
    return _table(
        ["claim", "variant", "metric", "SBD mean ± sd", "DeConv mean ± sd", "SBD - DeConv [95% CI]", "p", "verdict"],
        rows,
    )


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    result = describe(values)
    return fmt(result.mean) if result.n == 1 else f"{fmt(result.mean)} ± {fmt(result.sd)}"


def _variant_text(variant: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant.items()) or "-"


def distinct(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Each run once (a run shared by several values of a sweep is listed under each)."""
    once: dict[str, RunRecord] = {}
    for r in records:
        once.setdefault(r.name, r)
    return list(once.values())


def decoders_table(records: Sequence[RunRecord]) -> list[str]:
    """A row per variant and decoder: its finished runs and the mean ± sd of MIG, test error and
    shape fidelity (:data:`DECODER_SCORES`, those any run has)."""
    scores = [m for m in DECODER_SCORES if any(r.values.get(m) is not None for r in records)]
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.variant_key, r.decoder), []).append(r)
    rows = [
        [
            _variant_text(group[0].variant),
            decoder,
            str(len(group)),
            *(_mean_sd([r.values[m] for r in group if r.values.get(m) is not None]) for m in scores),
        ]
        for (_, decoder), group in groups.items()
    ]
    return _table(["variant", "decoder", "runs", *scores], rows)


def ablation_table(ablations: Sequence[AblationResult]) -> list[str]:
    """A row per value of the ablation's key other than the baseline."""

    def interval(result: Comparison) -> str:
        return f"{fmt(result.difference)} [{fmt(result.ci_low)}, {fmt(result.ci_high)}]"

    first = ablations[0].ablation
    rows = [
        [
            _variant_text(a.variant),
            first.metric,
            interval(a.baseline),
            interval(a.here),
            f"{interval(a.change)}, p {fmt(a.change.p_value)}",
            a.verdict,
        ]
        for a in ablations
    ]
    base = f"{first.key}={first.baseline}"
    header = ["variant", "metric", f"SBD - DeConv at {base}", "SBD - DeConv here", f"SBD here - SBD at {base}"]
    return _table([*header, "verdict"], rows)


def traversals_table(records: Sequence[RunRecord]) -> list[str]:
    """A row per variant: a link to the traversals of each decoder's run (:func:`traversal_runs`)."""
    links: dict[str, dict[str, str]] = {}
    for r in traversal_runs(records):
        row = links.setdefault(_variant_text(r.variant), {})
        row[r.decoder] = f"[{r.name}](traversals/{r.name}.png)"
    rows = [[variant, *(row.get(d, "n/a") for d in DECODERS)] for variant, row in links.items()]
    return _table(["variant", *DECODERS], rows)


def runs_table(records: Sequence[RunRecord], first: Sequence[str]) -> list[str]:
    """A row per run (a run shared by several variants once): its training minutes, its late
    drop, the scores ``first`` and the context metrics any run has."""
    records = distinct(records)
    context = [m for m in CONTEXT_METRICS if m not in first and any(m in r.values for r in records)]
    columns = [*first, *context]
    rows = [
        [
            r.name,
            f"{r.training_seconds / 60:.1f}",
            "n/a" if r.late_val_drop is None else f"{100 * r.late_val_drop:.0f}%",
            *(fmt(r.values.get(c)) for c in columns),
        ]
        for r in records
    ]
    return _table(["run", "training min", "late drop", *columns], rows)


def snapshots_table(snapshots: Sequence[Snapshot]) -> list[str]:
    """A row per equal-time snapshot: the run it repeats, its step, the validation error it and
    the full run logged at the same step, and its checkpoint scores."""
    rows = [
        [
            s.name,
            s.repeats,
            str(s.step),
            str(s.val_step),
            fmt(s.val_sse),
            fmt(s.full_run_val_sse),
            *(fmt(s.values.get(m)) for m in CHECKPOINT_METRICS),
        ]
        for s in snapshots
    ]
    return _table(
        ["snapshot", "of", "step", "validation step", "its val_sse", "full run's val_sse", *CHECKPOINT_METRICS], rows
    )
