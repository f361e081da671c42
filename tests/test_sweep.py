"""`sbvae sweep` on this machine: the plan, a tiny sweep with a failing run, reuse, a summary
from the files, and bad input (one line, exit 2, nothing written). The same sweep on a Ray
cluster is in test_ray_backend.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TINY, snapshot
from sbvae.config import run_identity
from sbvae.study.sweep import plan_sweep

SETTINGS = [t for t in TINY if not t.startswith("train.steps")] + ["train.steps=6"]


def _without(config: dict, *keys: str) -> dict:
    identity = run_identity(config)
    for key in keys:
        section, name = key.split(".")
        del identity[section][name]
    return identity


def test_a_grid_plans_every_cell_for_every_seed():
    plan, specs = plan_sweep(["objective.beta=1,4", "model.decoder=sbd,deconv"], seeds=2)
    assert [s.name for s in specs[:3]] == [
        "beta=1,decoder=sbd,seed=1",
        "beta=1,decoder=sbd,seed=2",
        "beta=1,decoder=deconv,seed=1",
    ]
    assert len(specs) == 8 and len({s.name for s in specs}) == 8
    assert {(s.variant["objective.beta"], s.decoder, s.seed) for s in specs} == {
        (b, d, k) for b in (1.0, 4.0) for d in ("sbd", "deconv") for k in (1, 2)
    }
    keys = ("objective.beta", "model.decoder", "train.seed")
    for s in specs:  # the grid's keys and the seed tell the runs apart, nothing else
        assert (s.config.objective.beta, s.config.model.decoder, s.config.train.seed) == (
            s.variant["objective.beta"],
            s.variant["model.decoder"],
            s.seed,
        )
        assert _without(s.config.to_dict(), *keys) == _without(specs[0].config.to_dict(), *keys)
    assert plan.command("sweeps/beta") == (
        "sbvae sweep --grid objective.beta=1,4 model.decoder=sbd,deconv --seeds 2 --out sweeps/beta"
    )
    _, specs = plan_sweep(["objective.name=beta_vae,factor_vae"], seeds=1, overrides=["model.decoder=deconv"])
    assert [(s.name, s.config.objective.name, s.decoder) for s in specs] == [
        ("name=beta_vae,seed=1", "beta_vae", "deconv"),
        ("name=factor_vae,seed=1", "factor_vae", "deconv"),
    ]


def test_a_sweep_reports_a_failed_run_goes_on_and_is_summarised_again_from_its_files(tmp_path, run_cli):
    # lr 1e30 diverges at once: that run fails with its last error line, the other finishes
    study = ["--grid", "train.lr=1e-3,1e30", "--seeds", "1", "--num-train", "300", "--set", *SETTINGS]
    code, out, err = run_cli("sweep", "--out", tmp_path, *study)
    assert code == 1 and "1 run(s) failed" in err, err
    lines = out.splitlines()
    assert any(line.startswith("failed: lr=1e30,seed=1: DivergenceError: ") for line in lines)
    assert "runs: 1 finished, 0 running, 0 waiting, 1 failed" in lines
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in results["runs"]] == ["lr=1e-3,seed=1"]
    (failed,) = results["unfinished"]
    assert failed["name"] == "lr=1e30,seed=1" and failed["error"].startswith("DivergenceError: ")
    cells = {c["variant"]["train.lr"]: c for c in results["cells"]}
    assert (cells[0.001]["finished"], cells[1e30]["finished"]) == (1, 0)
    mig = cells[0.001]["scores"]["discrete_mig"]
    assert mig["n"] == 1 and mig["mean"] == results["runs"][0]["values"]["discrete_mig"]
    text = (tmp_path / "results.md").read_text()
    assert "## Not finished" in text and "DivergenceError" in text and "| 0.001 | 1/1 |" in text
    assert (tmp_path / "sweep.json").is_file() and not (tmp_path / "compare").exists()  # one run: nothing to compare
    finished = snapshot(tmp_path / "runs" / "lr=1e-3,seed=1")

    code, out, err = run_cli("sweep", "--out", tmp_path, *study)  # the finished run is reused, the failed one retried
    assert code == 1, err
    assert f"reusing {tmp_path / 'runs' / 'lr=1e-3,seed=1'}" in out.splitlines()
    assert snapshot(tmp_path / "runs" / "lr=1e-3,seed=1") == finished

    (tmp_path / "results.md").unlink()
    code, out, err = run_cli("sweep", "--summarise", tmp_path)
    assert code == 0, err
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["cells"] == results["cells"] and again["runs"] == results["runs"]
    assert again["unfinished"] == [{**failed, "error": None}]  # from the files: not finished, no error known
    assert "not finished yet" in (tmp_path / "results.md").read_text()

    before = snapshot(tmp_path)  # another study in the same folder is refused, nothing written
    for other in (
        ["--grid", "objective.beta=1,4"],
        ["--grid", "train.lr=1e-3", "--set", *SETTINGS, "model.latent_dim=4"],
    ):
        code, _, err = run_cli("sweep", "--out", tmp_path, *other)
        assert code == 2 and err.count("\n") == 1 and "holds a sweep" in err and "--fresh" in err, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args, words",
    [
        (["--grid", "objective.nme=1,2"], "unknown config key 'objective.nme'"),
        (["--grid", "objective.beta="], "--grid objective.beta= has an empty value"),
        (["--grid", "objective.beta=1,,4"], "has an empty value"),
        (["--grid", "objective.beta"], "give section.key=VALUE,VALUE"),
        (["--grid", "objective.name=beta_vae,nonsense"], "objective.name must be one of"),
        (["--grid", "train.threads=1,2"], "every cell would be the same run"),
        (["--grid", "train.steps=100,200"], "every cell would be the same run"),
        (["--grid", "train.seed=1,2"], "--seeds"),
        (["--grid", "objective.beta=1,4", "--set", "objective.beta=2"], "in both --grid and --set"),
        (["--seeds", "0"], "--seeds must be positive"),
        (["--metrics", "mig,nope"], "unknown metric nope"),
        (["--jobs", "0"], "--jobs must be positive"),
        (["--backend", "spark"], "--backend must be local or ray"),
        (["--address", "auto"], "--address is for --backend ray"),
        (["--backend", "ray", "--jobs", "2"], "--jobs is for --backend local"),
        (["--backend", "ray", "--address", "head:node"], "--address must be auto or HOST:PORT"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, words, tmp_path, run_cli):
    code, _, err = run_cli("sweep", "--out", tmp_path / "sweep", *args)
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert not list(tmp_path.iterdir())


def test_summarise_takes_its_settings_from_the_folder(tmp_path, run_cli):
    code, _, err = run_cli("sweep", "--summarise", tmp_path, "--grid", "objective.beta=1,4")
    assert code == 2 and "drop --grid" in err, err
    code, _, err = run_cli("sweep", "--summarise", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "holds no sweep" in err, err
    code, _, err = run_cli("sweep", "--grid", "objective.beta=1,4")
    assert code == 2 and "--out is needed" in err, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_the_ray_backend_without_ray_names_the_extra(command, tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    study = ["held-out"] if command == "reproduce" else ["--grid", "objective.beta=1,4"]
    code, _, err = run_cli(command, *study, "--backend", "ray", "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "pip install 'sbvae[ray]'" in err, err
    assert not list(tmp_path.iterdir())


def test_ray_is_imported_only_for_the_ray_backend():
    probe = "import sys, sbvae.cli, sbvae.study.sweep, sbvae.study.reproduce; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
