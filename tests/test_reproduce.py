"""`sbvae reproduce`: a tiny study end to end, reuse of finished runs, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import TINY, snapshot, study_metrics
from sbvae.config import load_config, run_identity
from sbvae.errors import UserError
from sbvae.study import reproduce as reproduce_module
from sbvae.study.equal_time import logged_at, snapshot_specs
from sbvae.study.experiments import DECODER_KEYS, experiment_names, load_experiment, plan
from sbvae.study.invocations import PENDING_FILE
from sbvae.study.records import RunRecord
from sbvae.study.reproduce import expected_time
from sbvae.study.runner import set_aside
from sbvae.training.device import available_cores

# Every study here logs training time by the step clock (see conftest): which equal-time
# snapshots a study trains then never depends on how fast this machine happened to run.
# Fidelity probes are trained for a few steps: what they read is not what is tested here.
pytestmark = pytest.mark.usefixtures("step_clock")


STUDY = [
    "--seeds",
    "2",
    "--steps",
    "6",
    "--num-train",
    "300",
    "--set",
    *[t for t in TINY if not t.startswith("train.steps")],
]


def test_every_experiment_plans_identical_pairs():
    assert set(experiment_names()) == {
        "colored-sprites",
        "held-out",
        "small-objects",
        "dependent-factors",
        "beta-sweep",
        "no-position",
        "factor-vae",
        "sbd-capacity",
    }
    sbd_only = [key.split(".")[1] for key in DECODER_KEYS["sbd"]]
    for name in experiment_names():
        specs = plan(load_experiment(name))
        sbd = {(s.seed, str(s.variant)): s.config.to_dict() for s in specs if s.decoder == "sbd"}
        for s in (s for s in specs if s.decoder == "deconv"):
            twin = sbd[(s.seed, str(s.variant))]
            config = s.config.to_dict()
            assert config["model"]["decoder"] == "deconv" and twin["model"]["decoder"] == "sbd"
            config["model"] |= {"decoder": "sbd", **{key: twin["model"][key] for key in sbd_only}}
            assert config == twin  # everything else identical (the DeConv reads no SBD key)
    assert len(plan(load_experiment("colored-sprites"))) == 10  # 5 seeds per decoder
    assert len(plan(load_experiment("beta-sweep"))) == 20


def _log(seconds_per_step: float, steps: int = 6) -> list[dict]:
    """metrics.jsonl rows as TINY logs them: loss every 2 steps, validation every 3, MIG at the end."""
    rows = []
    for step in range(1, steps + 1):
        if step % 2 == 0:
            rows.append({"step": step, "split": "train", "elapsed": seconds_per_step * step})
        if step % 3 == 0:
            rows.append({"step": step, "split": "val", "sse": 100.0 - step})
    return [*rows, {"step": steps, "split": "mig", "discrete_mig": 0.5}]


@pytest.mark.parametrize("name", experiment_names())
def test_the_expected_wall_time_is_announced_only_for_the_packaged_study(name):
    experiment = load_experiment(name)
    line = expected_time(experiment, None, None, "cpu")
    assert line is not None and f"about {experiment.wall_time.minutes} min" in line
    assert expected_time(experiment, experiment.seeds, None, "cpu") == line
    for seeds, steps, scale in ((2, None, "cpu"), (None, 6, "cpu"), (None, None, "paper")):
        assert expected_time(experiment, seeds, steps, scale) is None


def test_reproduce_announces_the_expected_wall_time_before_training(tmp_path, monkeypatch):
    def stop_before_training(*args, **kwargs):
        raise UserError("stopped before training")

    monkeypatch.setattr(reproduce_module, "ensure_runs", stop_before_training)
    logged: list[str] = []
    with pytest.raises(UserError, match="stopped before training"):
        reproduce_module.reproduce("held-out", out=tmp_path, log=logged.append)
    assert logged == [expected_time(load_experiment("held-out"), None, None, "cpu")]


def test_equal_time_reads_the_last_rows_logged_within_the_budget():
    at = logged_at(_log(0.7), budget=3.0)  # loss rows at 1.4, 2.8, 4.2 s
    assert (at.step, at.val_sse_step, at.val_sse, at.mig_step) == (4, 3, 97.0, None)
    at = logged_at(_log(0.7), budget=2.0)  # validation at step 3 counts from the loss row at step 4
    assert (at.step, at.val_sse_step, at.mig_step) == (2, None, None)
    at = logged_at(_log(0.5), budget=3.0)  # finished within the budget: everything counts
    assert (at.step, at.val_sse_step, at.mig_step, at.discrete_mig) == (6, 6, 6, 0.5)
    assert logged_at(_log(0.7), budget=1.0).step is None


def test_snapshots_are_planned_for_the_sbd_runs_still_training_when_their_twin_finished(tmp_path):
    specs = plan(load_experiment("held-out"), seeds=2, steps=6)
    seconds = {("sbd", 1): 0.7, ("sbd", 2): 0.5, ("deconv", 1): 0.5, ("deconv", 2): 0.6}
    records = [
        RunRecord(
            s.name,
            s.decoder,
            s.seed,
            s.variant,
            tmp_path / s.name,
            6 * seconds[s.decoder, s.seed],
            None,
            {},
            None,
            s.config,
            _log(seconds[s.decoder, s.seed]),
        )
        for s in specs
    ]
    planned = snapshot_specs(specs, records)  # seed 2's SBD finished before its twin: no snapshot
    assert [(of, s.name, s.config.train.steps, s.decoder, s.seed) for of, s in planned] == [
        ("sbd-seed1", "sbd-seed1-step4", 4, "sbd", 1)
    ]
    assert (
        planned[0][1].config.to_dict()
        == {**specs[0].config.to_dict(), "train": {**specs[0].config.to_dict()["train"], "steps": 4}}
        and specs[0].config.train.steps == 6
    )


def test_tiny_study_writes_results_and_reuses_runs(tmp_path, run_cli):
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    folder = tmp_path / "held-out"
    results = json.loads((folder / "results.json").read_text())
    assert {r["decoder"] for r in results["runs"]} == {"sbd", "deconv"} and len(results["runs"]) == 4
    for entry in results["summary"]:
        assert len(entry["sbd"]) == len(entry["deconv"]) == 2
        assert {"difference", "ci_low", "ci_high", "p_value"} <= set(entry["equal_steps"])
        assert entry["verdict"] in ("reproduced", "not reproduced", "inconclusive")
    assert all(r["values"]["heldout_sse"] > 0 and r["values"]["heldout_position_r2"] <= 1 for r in results["runs"])
    assert "heldout_position_r2" in {e["metric"] for e in results["summary"]}
    text = (folder / "results.md").read_text()
    assert "heldout_sse" in text and "95% CI" in text and "sbd-seed2" in text and "deconv-seed1" in text
    assert all(0 < r["values"]["last_layer_live"] <= 1 for r in results["runs"]) and "last_layer_live" in text
    assert all(0 <= r["values"]["factor_vae_eval_accuracy"] <= 1 for r in results["runs"])
    assert "factor_vae_eval_accuracy" in text
    for scores in (folder / "runs").glob("*/metrics.json"):  # a study's votes: a tenth of --num-train and half that
        evaluated = json.loads(scores.read_text())
        assert evaluated["votes"] == [30, 15]
        # Fidelity and reconstruction on --num-train samples, fewer than their 2,000.
        assert evaluated["fidelity"]["samples"] == evaluated["reconstruction"]["test_images"] == 300
    command = f"sbvae reproduce held-out --out {tmp_path} --seeds 2 --steps 6 --set {' '.join(STUDY[7:])}"
    assert results["command"] == command and f"`{command}`" in text
    assert (folder / "compare" / "compare.html").is_file()
    for config in (folder / "runs").glob("*/config.yaml"):  # as written before these two options existed
        raw = yaml.safe_load(config.read_text())
        del raw["train"]["channels_last"], raw["train"]["compile"]
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
    runs_before, summarised = snapshot(folder / "runs"), snapshot(folder)

    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    lines = out.splitlines()
    assert sum(line.startswith("reusing ") and "/runs/" in line for line in lines) == 4
    assert not (folder / "equal-time").exists()  # twins finish together under the step clock
    assert not any(line.startswith(("training ", "resuming ", "evaluating ")) for line in lines)
    assert snapshot(folder / "runs") == runs_before
    assert snapshot(folder) == summarised  # nothing trained: nothing rewritten, not even the invocation count
    assert "nothing changed" in out and "over the 1 invocation(s)" in out
    invocations = json.loads((folder / "results.json").read_text())["invocations"]
    assert len(invocations) == 1 and all(i["finished"] and i["wall_seconds"] > 0 for i in invocations)
    assert "wall_seconds" not in json.loads((folder / "results.json").read_text())
    assert not (folder / PENDING_FILE).exists()  # a finished invocation leaves no pending entry

    # a clone of committed results has no checkpoints, runs evaluated before factor_vae was among
    # the experiment's metrics, and a results.json written before run configs had some keys and
    # before invocations were listed: re-summarising leaves it as it is
    assert all((run / "heldout.json").is_file() for run in (folder / "runs").iterdir())
    for checkpoint in (folder / "runs").glob("*/checkpoint.pt"):
        checkpoint.unlink()
    for scores in (folder / "runs").glob("*/metrics.json"):
        evaluated = json.loads(scores.read_text())
        evaluated["metrics"].remove("factor_vae")
        scores.write_text(json.dumps(evaluated))
    legacy = {k: v for k, v in json.loads((folder / "results.json").read_text()).items() if k != "invocations"}
    del legacy["equal_time_snapshots"]
    for run in legacy["runs"]:
        del run["config"]["train"]["channels_last"], run["config"]["objective"]["gamma"]
    (folder / "results.json").write_text(json.dumps({**legacy, "wall_seconds": 1.0}))  # before invocations
    legacy_files = snapshot(folder)
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    assert snapshot(folder) == legacy_files and "nothing changed" in out

    # ... and when there is something to write (here results.md is gone), it is summarised from the files
    (folder / "results.md").unlink()
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    assert "not at hand" in out and json.loads((folder / "results.json").read_text())["summary"] == results["summary"]
    assert "over the 1 invocation(s)" in out and "(1 earlier one(s) not recorded)" in out

    # a summary of other runs (one seed of the two) is a change: written, and its invocation counted
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, "--seeds", "1", *STUDY[2:])
    assert code == 0, err
    assert "nothing changed" not in out and "over the 2 invocation(s)" in (folder / "results.md").read_text()
    assert len(json.loads((folder / "results.json").read_text())["summary"][0]["sbd"]) == 1


def test_held_out_scores_at_equal_time_come_from_a_retrained_snapshot(tmp_path, run_cli):
    # Under the step clock both decoders log 0.5 s a step: each SBD finishes with its twin, so
    # no snapshot is needed. (With the real clock this first invocation acted on real timings,
    # and when an SBD seed 1 happened to be at step 4 as its DeConv twin finished, it already
    # trained the step-4 snapshot here, which the invocation below then reused: CI, issue 22.)
    code, _, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    folder = tmp_path / "held-out"
    results = json.loads((folder / "results.json").read_text())
    assert results["equal_time_snapshots"] == [] and not (folder / "equal-time").exists()
    assert {r["training_seconds"] for r in results["runs"]} == {3.0}
    for seed in (1, 2):  # make each SBD slower, 0.7 s a step: at step 4 when its twin finished (3 s)
        log = folder / "runs" / f"sbd-seed{seed}" / "metrics.jsonl"
        rows = [json.loads(line) for line in log.open()]
        for r in rows:
            if "elapsed" in r:
                r["elapsed"] = 0.7 * r["step"]
        log.write_text("".join(json.dumps(r) + "\n" for r in rows))

    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    assert "training " + str(folder / "equal-time" / "sbd-seed1-step4") in out
    results = json.loads((folder / "results.json").read_text())
    snapshots = {s["of"]: s for s in results["equal_time_snapshots"]}
    assert set(snapshots) == {"sbd-seed1", "sbd-seed2"}
    for s in snapshots.values():
        assert s["step"] == 4 and s["val_step"] == 3
        assert s["val_sse"] == pytest.approx(s["full_run_val_sse"], rel=1e-4)  # the same run, stopped sooner
    final = {r["name"]: r["values"] for r in results["runs"]}
    for entry in results["summary"]:
        timed = entry["equal_time"]
        assert timed["sbd"] == [snapshots[f"sbd-seed{k}"]["values"][entry["metric"]] for k in (1, 2)]
        assert timed["deconv"] == [final[f"deconv-seed{k}"][entry["metric"]] for k in (1, 2)]
        assert timed["sbd"] != [final[f"sbd-seed{k}"][entry["metric"]] for k in (1, 2)]
    assert "## Equal-time snapshots" in (folder / "results.md").read_text()

    snapshot_files = snapshot(folder / "equal-time")
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, "--fresh", *STUDY)
    assert code == 0, err
    set_aside = list(folder.glob("equal-time.old-*"))  # --fresh moves the snapshots aside too, keeps them
    assert len(set_aside) == 1 and snapshot(set_aside[0]) == snapshot_files
    assert len(list(folder.glob("runs.old-*"))) == 1


def test_folders_set_aside_in_the_same_second_are_all_kept(tmp_path, monkeypatch):
    monkeypatch.setattr("sbvae.study.runner.time.strftime", lambda _: "20261204-120000")
    runs = tmp_path / "runs"
    for k in range(3):
        runs.mkdir()
        (runs / "mark").write_text(str(k))
        set_aside(runs)
    kept = {p.name: (p / "mark").read_text() for p in tmp_path.iterdir()}
    assert kept == {
        "runs.old-20261204-120000": "0",
        "runs.old-20261204-120000-2": "1",
        "runs.old-20261204-120000-3": "2",
    }


def test_paper_scale_is_the_papers_setting_with_each_experiments_data():
    for name in experiment_names():
        experiment = load_experiment(name)
        cpu, paper = plan(experiment)[0].config, plan(experiment, scale="paper")[0].config
        assert (paper.data.image_size, paper.train.batch_size, paper.train.lr, paper.train.steps) == (
            64,
            16,
            3e-4,
            1_500_000,
        )
        assert (paper.model.sbd_layers, paper.model.broadcast) == (4, "valid")
        assert paper.data.preset == cpu.data.preset and paper.objective.beta == cpu.objective.beta


def test_cpu_scale_is_protocol_4():
    """The default preset's recipe at its budget (issue 26), MIG and fidelity logged along the way."""
    cpu, default = load_config("cpu"), load_config("default")
    assert run_identity(cpu.to_dict()) == run_identity(default.to_dict()) and cpu.train.steps == default.train.steps
    assert (cpu.train.mig_every, cpu.train.fidelity_every) == (1000, 2000)
    for name in experiment_names():
        config = plan(load_experiment(name))[0].config
        assert (config.objective.sigma, config.objective.kl_warmup, config.train.batch_size, config.train.steps) == (
            0.05,
            10_000,
            32,
            14_000,
        )
        layers = 4 if name == "no-position" else 2  # the 3D scenes take the paper's depth (the file says why)
        assert (config.data.image_size, config.model.sbd_layers, config.model.sbd_channels) == (32, layers, 32)
        assert (config.train.lr, config.train.lr_warmup, config.train.lr_decay_steps) == (2e-3, 300, 14_000)


def test_paper_scale_runs_a_few_steps_here(tmp_path, run_cli):
    code, _out, err = run_cli(
        "reproduce",
        "colored-sprites",
        "--scale",
        "paper",
        "--seeds",
        "1",
        "--steps",
        "2",
        "--num-train",
        "64",
        "--out",
        tmp_path,
        "--set",
        "data.val_size=16",
        "train.mig_samples=200",
        "train.fidelity_samples=64",
    )  # evaluation sizes only
    assert code == 0, err
    results = json.loads((tmp_path / "colored-sprites" / "results.json").read_text())
    assert results["scale"] == "paper" and len(results["runs"]) == 2
    for run in results["runs"]:
        assert run["config"]["data"]["image_size"] == 64 and run["values"]["test_sse"] > 0


@pytest.mark.parametrize(
    "args, words",
    [
        (["reproduce", "nonsense"], "unknown experiment 'nonsense'"),
        (["reproduce", "held-out", "--seeds", "0"], "--seeds must be positive"),
        (["reproduce", "held-out", "--scale", "huge"], "--scale must be cpu or paper"),
        (["reproduce", "held-out", "--set", "model.latent_dim=0"], "model.latent_dim"),
        (["reproduce", "held-out", "--jobs", "0"], "--jobs must be positive"),
    ],
)
def test_bad_input_is_one_line(args, words, tmp_path, run_cli):
    code, _, err = run_cli(*args, "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and words in err, err


def test_a_results_folder_with_other_runs_is_refused(tmp_path, run_cli, trained_run):
    import shutil

    taken = tmp_path / "held-out" / "runs" / "sbd-seed1"
    shutil.copytree(trained_run, taken)  # a run with another config where the study wants its own
    before = snapshot(tmp_path)
    code, _, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 2 and "different config" in err and "--fresh" in err
    assert snapshot(tmp_path) == before


def test_more_steps_extend_finished_runs_and_threads_and_logging_do_not_matter(tmp_path, run_cli):
    one_seed = ["--seeds", "1", *STUDY[2:]]
    code, _, err = run_cli("reproduce", "held-out", "--out", tmp_path, *one_seed)
    assert code == 0, err
    runs = tmp_path / "held-out" / "runs"
    before = {run.name: json.loads((run / "heldout.json").read_text()) for run in runs.iterdir()}
    assert {stats["step"] for stats in before.values()} == {6}

    longer = [*one_seed[:2], "--steps", "9", *one_seed[4:], "train.threads=1", "train.mig_every=2"]
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *longer)
    assert code == 0, err
    assert sum(line.startswith("extending ") and "from step 6 to 9" in line for line in out.splitlines()) == 2
    for run in runs.iterdir():
        assert json.loads((run / "metrics.json").read_text())["step"] == 9
        saved = yaml.safe_load((run / "config.yaml").read_text())["train"]
        assert saved["steps"] == 9 and saved["mig_every"] == 2  # the extension logs as asked now
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows if r["split"] == "mig"] == [6, 8, 9]  # ends of both, and every 2
        heldout = json.loads((run / "heldout.json").read_text())
        assert heldout["step"] == 9 and heldout["sse"] != before[run.name]["sse"]  # measured again
    results = json.loads((tmp_path / "held-out" / "results.json").read_text())
    assert all(r["late_val_drop"] is not None for r in results["runs"])
    assert "late drop" in (tmp_path / "held-out" / "results.md").read_text()

    before = snapshot(tmp_path)  # asking for fewer steps than the runs have is refused
    code, _, err = run_cli("reproduce", "held-out", "--out", tmp_path, *one_seed)
    assert code == 2 and err.count("\n") == 1 and "trained for 9 steps" in err and "--steps 9" in err, err
    assert snapshot(tmp_path) == before


def test_a_run_of_another_experiment_with_the_same_config_is_used_in_place(tmp_path, run_cli):
    one_seed = ["--seeds", "1", *STUDY[2:]]
    code, _, err = run_cli("reproduce", "colored-sprites", "--out", tmp_path, *one_seed)
    assert code == 0, err
    code, out, err = run_cli("reproduce", "beta-sweep", "--out", tmp_path, *one_seed)
    assert code == 0, err
    lines = out.splitlines()
    shared = [line for line in lines if line.startswith("reusing ")]
    assert len(shared) == 2 and all("colored-sprites" in line and "beta" not in line for line in shared)
    assert sum(line.startswith("training ") and "beta4.0" in line for line in lines) == 2
    results = json.loads((tmp_path / "beta-sweep" / "results.json").read_text())
    assert sorted(r["run"].split("/")[-3] for r in results["runs"]) == ["beta-sweep"] * 2 + ["colored-sprites"] * 2
    assert not list((tmp_path / "beta-sweep" / "runs").glob("*beta1.0*"))


def test_runs_trained_side_by_side_match_runs_trained_in_turn(tmp_path, run_cli, monkeypatch):
    study_metrics(monkeypatch, ["mig"])  # no fidelity: the workers would train full-length probes
    quiet = [*(t for t in STUDY if t != "train.threads=1"), "train.fidelity_every=0"]
    code, _, err = run_cli("reproduce", "held-out", "--out", tmp_path / "turns", *quiet, "train.threads=1")
    assert code == 0, err
    code, _out, err = run_cli("reproduce", "held-out", "--out", tmp_path / "jobs", *quiet, "--jobs", "2")
    assert code == 0, err
    turns, jobs = (json.loads((tmp_path / f / "held-out" / "results.json").read_text()) for f in ("turns", "jobs"))
    assert [r["name"] for r in jobs["runs"]] == [r["name"] for r in turns["runs"]]
    for a, b in zip(turns["runs"], jobs["runs"]):
        assert b["config"]["train"]["threads"] == max(1, available_cores() // 2)  # each its share
        assert b["values"]["test_sse"] == pytest.approx(a["values"]["test_sse"], rel=1e-4)
    assert jobs["summary"][0]["equal_steps"]["difference"] == pytest.approx(
        turns["summary"][0]["equal_steps"]["difference"], rel=1e-3
    )

    # summarised again in turn (the runs' threads are 0 now, each its share then): the same study, nothing written
    before = snapshot(tmp_path / "jobs")
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path / "jobs", *quiet)
    assert code == 0, err
    assert "nothing changed" in out and snapshot(tmp_path / "jobs") == before


def _children(pid: int) -> list[int]:
    """Pool workers of process ``pid`` (Linux /proc; the resource tracker is left out)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads Linux /proc")
@pytest.mark.parametrize("stop", ["kill", "terminate"])
def test_killing_reproduce_stops_its_workers(stop, tmp_path):
    """Killed (the workers see their parent gone) or terminated (SIGTERM, as a scheduler stops
    a job: the study ends its workers instead of waiting for their runs)."""
    settings = [t for t in TINY if not t.startswith("train.steps")]
    command = [
        sys.executable,
        "-m",
        "sbvae",
        "reproduce",
        "held-out",
        "--out",
        str(tmp_path),
        "--seeds",
        "1",
        "--steps",
        "1000000",
        "--num-train",
        "300",
        "--jobs",
        "2",
        "--set",
        *settings,
    ]
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (
            len(workers) == 2 and len(list(tmp_path.glob("held-out/runs/*/metrics.jsonl"))) == 2
        ):
            workers = _children(parent.pid)
            time.sleep(0.5)
        assert len(workers) == 2, "the two workers never started training"
        getattr(parent, stop)()
        assert parent.wait(timeout=60) == (-signal.SIGKILL if stop == "kill" else 128 + signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.5)
        assert not any(_alive(w) for w in workers)
        pending = json.loads((tmp_path / "held-out" / PENDING_FILE).read_text())
        assert [entry["interrupted"] for entry in pending] == [True]  # the next invocation counts it
    finally:
        parent.kill()
        for w in filter(_alive, workers):
            os.kill(w, signal.SIGKILL)
