"""The study's summaries on small synthetic records (no training): pairing each SBD run with its
twin at equal time, the verdicts, the late drop, and the keys results.json keeps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sbvae.config import Config
from sbvae.study.equal_time import snapshot_check
from sbvae.study.experiments import Claim, Experiment
from sbvae.study.records import RunRecord, Snapshot, late_drop
from sbvae.study.summary import equal_time_pairs, summarize
from test_reproduce import _log

HIGHER = Claim(1, "SBD scores higher", "score", higher_is_better=True)
LOWER = Claim(2, "SBD scores lower", "score", higher_is_better=False)


def _run(
    decoder: str,
    seed: int,
    values: dict[str, float] | None = None,
    seconds_per_step: float = 0.5,
    variant: dict | None = None,
    sse_offset: float = 0.0,
) -> RunRecord:
    """A run of 6 steps logged as ``_log`` logs it (validation error 100 - step, plus ``sse_offset``)."""
    rows = [{**r, "sse": r["sse"] + sse_offset} if "sse" in r else r for r in _log(seconds_per_step)]
    tag = "".join(f"-{k.split('.')[-1]}{v}" for k, v in (variant or {}).items())
    name = f"{decoder}{tag}-seed{seed}"
    return RunRecord(
        name, decoder, seed, variant or {}, Path(name), 6 * seconds_per_step, None, values or {}, None, Config(), rows
    )


def _experiment(*claims: Claim) -> Experiment:
    return Experiment("synthetic", "", "cpu", [], 3, {}, ["mig"], list(claims))


# Seed 1's SBD is slower than its twin (0.7 against 0.5 s a step: at step 4 when the twin finished
# at 3 s); seed 2's SBD finished (3 s) before its twin (3.6 s).
SPEEDS = {("sbd", 1): 0.7, ("deconv", 1): 0.5, ("sbd", 2): 0.5, ("deconv", 2): 0.6}


def _timed_runs(values: dict[tuple[str, int], dict[str, float]] | None = None) -> list[RunRecord]:
    return [
        _run(d, seed, (values or {}).get((d, seed)), speed, sse_offset=10 * seed) for (d, seed), speed in SPEEDS.items()
    ]


def test_a_logged_metric_is_read_where_the_sbd_stood_when_its_twin_finished():
    label, sbd, deconv = equal_time_pairs("test_sse", _timed_runs(), ())
    # seed 1: the SBD's validation at step 3 (logged by 2.8 s) against the twin's last (step 6);
    # seed 2: the SBD had finished, its last validation counts.
    assert (label, sbd, deconv) == ("val_sse", [97.0 + 10, 94.0 + 20], [94.0 + 10, 94.0 + 20])


def test_a_logged_metric_the_sbd_had_not_logged_yet_leaves_its_seed_out():
    # MIG is logged at the end only: seed 1's SBD had none when its twin finished.
    assert equal_time_pairs("discrete_mig", _timed_runs(), ()) == ("discrete_mig", [0.5], [0.5])


def test_a_snapshot_stands_in_for_a_checkpoint_metric_of_an_sbd_still_training():
    values = {
        ("sbd", 1): {"heldout_sse": 9.0},
        ("deconv", 1): {"heldout_sse": 7.0},
        ("sbd", 2): {"heldout_sse": 5.0},
        ("deconv", 2): {"heldout_sse": 6.0},
    }
    snapshots = [
        Snapshot("sbd-seed1-step4", "sbd-seed1", 4, 3, 107.0, 107.0, {"heldout_sse": 12.0}),
        Snapshot("sbd-seed9-step4", "sbd-seed9", 4, 3, 1.0, 1.0, {"heldout_sse": 99.0}),
    ]
    # seed 1: the snapshot's value, not the final one; seed 2 had finished: its final value.
    assert equal_time_pairs("heldout_sse", _timed_runs(values), snapshots) == ("heldout_sse", [12.0, 5.0], [7.0, 6.0])
    # without its snapshot, seed 1 is left out rather than read from the finished run
    assert equal_time_pairs("heldout_sse", _timed_runs(values), snapshots[1:]) == ("heldout_sse", [5.0], [6.0])


def test_a_metric_known_neither_from_the_logs_nor_from_a_snapshot_has_no_equal_time():
    assert equal_time_pairs("mig", _timed_runs(), ()) is None
    entry = summarize(_experiment(Claim(1, "", "mig", True)), _timed_runs())[0]
    assert entry.equal_time is None and "equal_time" not in entry.to_json()


def test_an_sbd_run_without_a_twin_is_left_out():
    runs = [r for r in _timed_runs() if r.name != "deconv-seed2"]
    assert equal_time_pairs("test_sse", runs, ()) == ("val_sse", [107.0], [104.0])


def test_each_variant_is_summarised_with_its_own_twins():
    # beta 1: both decoders 0.5 s a step; beta 4: the SBD 0.7 s a step, at step 4 when its twin finished
    speeds = {("sbd", 1.0): 0.5, ("deconv", 1.0): 0.5, ("sbd", 4.0): 0.7, ("deconv", 4.0): 0.5}
    runs = [
        _run(d, seed, {"score": beta + (d == "sbd") + seed / 100}, speed, {"objective.beta": beta}, sse_offset=beta)
        for (d, beta), speed in speeds.items()
        for seed in (1, 2, 3)
    ]
    summary = summarize(_experiment(Claim(1, "", "test_sse", False), HIGHER), runs)
    assert [(e.variant, e.metric) for e in summary] == [
        ({"objective.beta": 1.0}, "test_sse"),
        ({"objective.beta": 1.0}, "score"),
        ({"objective.beta": 4.0}, "test_sse"),
        ({"objective.beta": 4.0}, "score"),
    ]
    beta1, beta4 = summary[0].equal_time, summary[2].equal_time
    assert beta1 is not None and beta4 is not None
    assert beta1.sbd == beta1.deconv == [95.0] * 3  # both finished at 3 s: each at its last validation
    assert beta4.sbd == [101.0] * 3 and beta4.deconv == [98.0] * 3  # the SBD at step 3 when its twin finished
    assert summary[1].sbd == [2.01, 2.02, 2.03] and summary[1].deconv == [1.01, 1.02, 1.03]
    assert summary[3].sbd == [5.01, 5.02, 5.03] and summary[3].deconv == [4.01, 4.02, 4.03]


CLEAR_HIGH, CLEAR_LOW, SPREAD = [0.90, 0.91, 0.92], [0.50, 0.52, 0.51], [0.50, 0.90, 0.70]


@pytest.mark.parametrize(
    "sbd, deconv, if_higher_is_better, if_lower_is_better",
    [
        (CLEAR_HIGH, CLEAR_LOW, "reproduced", "not reproduced"),  # SBD clearly higher
        (CLEAR_LOW, CLEAR_HIGH, "not reproduced", "reproduced"),  # SBD clearly lower
        (SPREAD, [0.68, 0.72, 0.70], "inconclusive", "inconclusive"),  # a tie
    ],
)
def test_verdicts_at_equal_steps(sbd, deconv, if_higher_is_better, if_lower_is_better):
    # listed out of seed order: the values come back by seed
    runs = [_run("deconv", seed, {"score": v}) for seed, v in zip((3, 1, 2), deconv[2:] + deconv[:2])]
    runs += [_run("sbd", seed, {"score": v}) for seed, v in zip((2, 3, 1), sbd[1:] + sbd[:1])]
    higher, lower = summarize(_experiment(HIGHER, LOWER), runs)
    for entry, expected in ((higher, if_higher_is_better), (lower, if_lower_is_better)):
        assert entry.sbd == pytest.approx(sbd) and entry.deconv == pytest.approx(deconv)
        result = entry.equal_steps
        assert result.difference == pytest.approx(sum(sbd) / 3 - sum(deconv) / 3)
        assert result.ci_low < result.difference < result.ci_high
        assert entry.verdict == expected and entry.equal_time is None


def test_a_run_without_the_metric_is_left_out_and_one_seed_concludes_nothing():
    runs = [
        _run("sbd", 1, {"score": 0.9}),
        _run("sbd", 2, {}),
        _run("deconv", 1, {"score": 0.1}),
        _run("deconv", 2, {"score": 0.2}),
    ]
    entry = summarize(_experiment(HIGHER), runs)[0]
    assert entry.sbd == [0.9] and entry.deconv == [0.1, 0.2]
    assert math.isnan(entry.equal_steps.ci_low) and entry.verdict == "inconclusive"


def test_a_claim_result_writes_the_keys_results_json_holds():
    runs = _timed_runs({key: {"test_sse": 3.0 + key[1] + (key[0] == "sbd")} for key in SPEEDS})
    entry = summarize(_experiment(Claim(4, "text", "test_sse", False)), runs)[0].to_json()
    comparison = ["mean_a", "std_a", "mean_b", "std_b", "difference", "ci_low", "ci_high", "p_value", "n_a", "n_b"]
    assert list(entry) == [
        "variant",
        "claim",
        "text",
        "metric",
        "higher_is_better",
        "sbd",
        "deconv",
        "equal_steps",
        "verdict",
        "equal_time",
    ]
    assert (entry["variant"], entry["claim"], entry["text"], entry["metric"], entry["higher_is_better"]) == (
        {},
        4,
        "text",
        "test_sse",
        False,
    )
    assert list(entry["equal_steps"]) == comparison and entry["sbd"] == [5.0, 6.0] and entry["deconv"] == [4.0, 5.0]
    assert list(entry["equal_time"]) == ["metric", "sbd", "deconv", *comparison, "verdict"]
    assert entry["equal_time"]["sbd"] == [107.0, 114.0] and entry["equal_time"]["metric"] == "val_sse"


def test_a_run_record_and_a_snapshot_write_the_keys_results_json_holds():
    run = _run("sbd", 1, {"score": 0.5})
    saved = run.to_json()
    assert list(saved) == [
        "name",
        "decoder",
        "seed",
        "variant",
        "run",
        "training_seconds",
        "late_val_drop",
        "values",
        "heldout",
        "config",
    ]  # the logged rows are not kept
    assert saved["run"] == "sbd-seed1" and saved["config"] == Config().to_dict()
    snapshot = Snapshot("sbd-seed1-step4", "sbd-seed1", 4, 3, 97.0, 97.0, {"heldout_sse": 1.0}).to_json()
    assert snapshot == {
        "name": "sbd-seed1-step4",
        "of": "sbd-seed1",
        "step": 4,
        "val_step": 3,
        "val_sse": 97.0,
        "full_run_val_sse": 97.0,
        "values": {"heldout_sse": 1.0},
    }


def test_a_snapshot_is_checked_at_the_last_validation_both_logged():
    full = _run("sbd", 1, {"heldout_sse": 3.0}, 0.7)
    config = Config()
    config.train.steps = 4
    again = RunRecord(
        "sbd-seed1-step4",
        "sbd",
        1,
        {},
        Path("again"),
        2.8,
        None,
        {"heldout_sse": 5.0},
        None,
        config,
        [r for r in _log(0.7, steps=4) if r["split"] != "mig"],
    )
    checked = snapshot_check(again, full)
    assert checked == Snapshot("sbd-seed1-step4", "sbd-seed1", 4, 3, 97.0, 97.0, {"heldout_sse": 5.0})


def _val(*points: tuple[int, float]) -> list[dict]:
    return [
        {"step": 1, "split": "train", "loss": 1.0},
        *({"step": s, "split": "val", "sse": v} for s, v in points),
        {"step": 8, "split": "val"},
        {"step": 8, "split": "mig", "sse": 0.0},
    ]  # rows without a validation error


def test_late_drop_is_the_fall_over_the_last_quarter_as_a_fraction():
    assert late_drop(_val((3, 100.0), (6, 90.0), (8, 81.0)), steps=8) == pytest.approx(0.1)
    assert late_drop(_val((6, 90.0), (7, 99.0)), steps=8) == pytest.approx(-0.1)  # a rise is a negative drop


def test_late_drop_is_none_for_a_run_that_never_passed_three_quarters():
    assert late_drop(_val((3, 100.0), (6, 90.0)), steps=8) is None  # three quarters of 8 is step 6
    assert late_drop(_val((7, 90.0), (8, 81.0)), steps=8) is None  # nothing logged by three quarters
    assert late_drop([], steps=8) is None
