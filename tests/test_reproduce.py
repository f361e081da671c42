"""`sbvae reproduce`: a tiny study end to end, reuse of finished runs, and bad input."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import TINY, snapshot
from sbvae.reproduce import experiment_names, load_experiment, plan

STUDY = ["--seeds", "2", "--steps", "6", "--num-train", "300", "--set",
         *[t for t in TINY if not t.startswith("train.steps")]]


def test_every_experiment_plans_identical_pairs():
    assert set(experiment_names()) == {"colored-sprites", "held-out", "small-objects", "dependent-factors",
                                       "beta-sweep"}
    for name in experiment_names():
        specs = plan(load_experiment(name))
        sbd = {(s.seed, str(s.variant)): s.config.to_dict() for s in specs if s.decoder == "sbd"}
        for s in (s for s in specs if s.decoder == "deconv"):
            twin = sbd[(s.seed, str(s.variant))]
            config = s.config.to_dict()
            assert config["model"]["decoder"] == "deconv" and twin["model"]["decoder"] == "sbd"
            config["model"]["decoder"] = "sbd"
            assert config == twin  # everything else identical
    assert len(plan(load_experiment("colored-sprites"))) == 10  # 5 seeds per decoder
    assert len(plan(load_experiment("beta-sweep"))) == 12


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
    assert all(r["values"]["heldout_sse"] > 0 for r in results["runs"])
    text = (folder / "results.md").read_text()
    assert "heldout_sse" in text and "95% CI" in text and "sbd-seed2" in text and "deconv-seed1" in text
    assert (folder / "compare" / "compare.html").is_file()
    for config in (folder / "runs").glob("*/config.yaml"):  # as written before these two options existed
        raw = yaml.safe_load(config.read_text())
        del raw["train"]["channels_last"], raw["train"]["compile"]
        config.write_text(yaml.safe_dump(raw, sort_keys=False))
    runs_before = snapshot(folder / "runs")

    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    lines = out.splitlines()
    assert sum(line.startswith("reusing ") for line in lines) == 4
    assert not any(line.startswith(("training ", "resuming ", "evaluating ")) for line in lines)
    assert snapshot(folder / "runs") == runs_before

    # a clone of committed results has no checkpoints: it is still summarised from the files
    assert all((run / "heldout.json").is_file() for run in (folder / "runs").iterdir())
    for checkpoint in (folder / "runs").glob("*/checkpoint.pt"):
        checkpoint.unlink()
    code, out, err = run_cli("reproduce", "held-out", "--out", tmp_path, *STUDY)
    assert code == 0, err
    assert "not at hand" in out and json.loads((folder / "results.json").read_text())["summary"] == results["summary"]


@pytest.mark.parametrize("args, words", [
    (["reproduce", "nonsense"], "unknown experiment 'nonsense'"),
    (["reproduce", "held-out", "--seeds", "0"], "--seeds must be positive"),
    (["reproduce", "held-out", "--scale", "huge"], "--scale must be cpu or paper"),
    (["reproduce", "held-out", "--set", "model.latent_dim=0"], "model.latent_dim"),
])
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
