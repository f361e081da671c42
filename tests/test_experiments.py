"""The packaged experiments of `sbvae reproduce` (protocol 4): what each plans, which runs they
share, the ablation's verdicts, the shape-fidelity and traversal tables, extending a study by
seeds, and bad input."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import snapshot
from sbvae.config import run_identity, save_config
from sbvae.study.experiments import Experiment, RunSpec, experiment_names, load_experiment, plan
from sbvae.study.markdown import results_markdown
from sbvae.study.records import RunRecord
from sbvae.study.results_folder import compare_folders
from sbvae.study.stats import compare
from sbvae.study.summary import ablation_results, ablation_verdict, summarize, traversal_runs
from sbvae.training.run_folder import RunPaths, atomic_write_json
from test_reproduce import STUDY as TINY_STUDY  # two seeds, a few steps

NEW = ("no-position", "factor-vae", "sbd-capacity")


def _identity(spec: RunSpec) -> str:
    return json.dumps(run_identity(spec.config.to_dict()))


def _identities(name: str) -> dict[tuple[str, int], str]:
    """The run identity of each (decoder, seed) of an experiment without a sweep."""
    return {(s.decoder, s.seed): _identity(s) for s in plan(load_experiment(name))}


def test_every_experiment_has_five_seeds_the_fidelity_metric_and_an_expected_wall_time():
    assert set(NEW) <= set(experiment_names())
    for name in experiment_names():
        experiment = load_experiment(name)
        assert experiment.seeds == 5 and "fidelity" in experiment.metrics, name
        assert experiment.wall_time is not None and experiment.wall_time.minutes > 0 and experiment.wall_time.why


def test_no_position_trains_both_decoders_on_both_scenes():
    specs = plan(load_experiment("no-position"))
    assert len(specs) == len({s.name for s in specs}) == 2 * 2 * 5
    cells = {(s.decoder, s.config.data.preset) for s in specs}
    assert cells == {(d, p) for d in ("sbd", "deconv") for p in ("objects_room", "chairs")}
    assert sorted(s.seed for s in specs if (s.decoder, s.config.data.preset) == ("sbd", "chairs")) == [1, 2, 3, 4, 5]
    assert {s.config.model.sbd_layers for s in specs} == {4}  # the paper's depth: two do not learn a scene
    assert {s.name for s in specs if s.seed == 1} == {
        "sbd-objects_room-seed1",
        "deconv-objects_room-seed1",
        "sbd-chairs-seed1",
        "deconv-chairs-seed1",
    }


def test_factor_vae_runs_gamma_10_beside_the_colored_sprites_runs():
    specs = plan(load_experiment("factor-vae"))
    assert len(specs) == 2 * 2 * 5
    factor = [s for s in specs if s.variant == {"objective.name": "factor_vae"}]
    assert len(factor) == 10 and {(s.config.objective.name, s.config.objective.gamma) for s in factor} == {
        ("factor_vae", 10.0)
    }
    reference = {(s.decoder, s.seed): _identity(s) for s in specs if s.variant == {"objective.name": "beta_vae"}}
    assert reference == _identities("colored-sprites")  # the same runs: used where they lie


def test_sbd_capacity_widens_the_sbd_against_the_colored_sprites_deconv_runs():
    specs = plan(load_experiment("sbd-capacity"))
    assert len(specs) == 2 * 2 * 5 and len({s.name for s in specs}) == 15  # one DeConv run per seed, shared
    colored = _identities("colored-sprites")
    for spec in specs:
        width = spec.variant["model.sbd_channels"]
        if spec.decoder == "sbd":
            assert spec.config.model.sbd_channels == width and spec.name == f"sbd-sbd_channels{width}-seed{spec.seed}"
            assert (_identity(spec) == colored["sbd", spec.seed]) == (width == 32)
        else:
            assert spec.name == f"deconv-seed{spec.seed}" and _identity(spec) == colored["deconv", spec.seed]
    ablation = load_experiment("sbd-capacity").ablation
    assert ablation is not None and (ablation.key, ablation.baseline, ablation.metric) == (
        "model.sbd_channels",
        32,
        "test_sse",
    )


# -- the ablation's verdict ------------------------------------------------------------------

WORSE = [3.0, 3.1, 3.2, 3.3, 3.4]  # test error of an SBD clearly worse than
DECONV = [2.0, 2.1, 2.2, 2.3, 2.4]  # this DeConv's


@pytest.mark.parametrize(
    "wider, verdict",
    [
        ([2.0, 2.15, 2.2, 2.25, 2.4], "closes"),  # better than the narrow SBD, no longer worse than the DeConv
        ([2.5, 2.6, 2.7, 2.8, 2.9], "narrows"),  # better than the narrow SBD, still worse than the DeConv
        ([3.0, 3.2, 3.1, 3.4, 3.3], "stays"),
        ([4.0, 4.1, 4.2, 4.3, 4.4], "widens"),
    ],
)
def test_the_ablation_verdict_follows_its_rule(wider, verdict):
    baseline, here, change = compare(WORSE, DECONV), compare(wider, DECONV), compare(wider, WORSE)
    assert ablation_verdict(baseline, here, change, higher_is_better=False) == verdict


def test_without_a_gap_at_the_baseline_there_is_nothing_to_close():
    baseline = compare(DECONV, DECONV[::-1])
    assert ablation_verdict(baseline, baseline, compare(DECONV, DECONV), False) == "no gap at the baseline"


# -- results.md from synthetic records -------------------------------------------------------


def _records(experiment: Experiment, values) -> list[RunRecord]:
    """A record per planned spec (two seeds), its values ``values(spec)``."""
    return [
        RunRecord(s.name, s.decoder, s.seed, s.variant, Path(s.name), 60.0, 0.1, values(s), None, s.config, [])
        for s in plan(experiment, seeds=2, steps=6)
    ]


def test_the_capacity_study_shows_each_decoder_shape_fidelity_traversals_and_the_gap():
    experiment = load_experiment("sbd-capacity")

    def values(spec: RunSpec) -> dict[str, float]:
        wide = spec.variant["model.sbd_channels"] == 64
        error = {"deconv": 2.0, "sbd": 2.5 if wide else 3.0}[spec.decoder] + 0.1 * spec.seed
        return {"test_sse": error, "discrete_mig": 0.1 * spec.seed, "fidelity_shape": 0.9 + 0.01 * spec.seed}

    records = _records(experiment, values)
    ablations = ablation_results(experiment, records)
    assert [(a.variant, a.verdict) for a in ablations] == [({"model.sbd_channels": 64}, "narrows")]
    assert [r.name for r in traversal_runs(records)] == [
        "sbd-sbd_channels32-seed1",
        "deconv-seed1",
        "sbd-sbd_channels64-seed1",
        "deconv-seed1",
    ]
    text = results_markdown(experiment, summarize(experiment, records), records, [], "cmd", ablations=ablations)
    assert "Runs: 6 (" in text  # the DeConv runs once, though both widths compare with them
    assert "Expected wall time as packaged (5 seeds per decoder, `--scale cpu`) with `--jobs 2`" in text
    per_decoder = text.split("## Per decoder")[1].split("##")[0]
    assert "| variant | decoder | runs | discrete_mig | test_sse | fidelity_shape |" in per_decoder
    assert "| model.sbd_channels=64 | sbd | 2 | 0.15 ± 0.07071 | 2.65 ± 0.07071 | 0.915 ± 0.007071 |" in per_decoder
    assert "| model.sbd_channels=64 | test_sse |" in text and "| narrows |" in text
    assert "[deconv-seed1](traversals/deconv-seed1.png)" in text
    per_run = text.split("## Per run")[1]
    assert per_run.count("| deconv-seed1 |") == 1 and "fidelity_shape" in per_run


def test_the_scenes_show_shape_or_the_chairs_parts_and_a_comparison_page_each():
    experiment = load_experiment("no-position")

    def values(spec: RunSpec) -> dict[str, float]:
        shape = {"fidelity_shape": 0.5} if spec.config.data.preset == "objects_room" else {"fidelity_armrests": 0.8}
        return {"test_sse": 5.0, "discrete_mig": 0.1, **shape}

    records = _records(experiment, values)
    text = results_markdown(experiment, summarize(experiment, records), records, [], "cmd")
    assert "| data.preset=objects_room | sbd | 2 | 0.1 ± 0 | 5 ± 0 | 0.5 ± 0 | n/a |" in text
    assert "| data.preset=chairs | deconv | 2 | 0.1 ± 0 | 5 ± 0 | n/a | 0.8 ± 0 |" in text
    pages = compare_folders(records, Path("out"))
    scenes = {p: [r.name for r in records if r.variant["data.preset"] == p] for p in ("objects_room", "chairs")}
    assert {page: [run.name for run in runs] for page, runs in pages.items()} == {
        Path("out/compare") / scene: names for scene, names in scenes.items()
    }


# -- extending a study -----------------------------------------------------------------------


@pytest.fixture
def counted_training(monkeypatch) -> list[str]:
    """The runs a study trains, by name; training and evaluation replaced by writing what a
    finished run's folder holds for the study (config, scores, cached geometry)."""
    trained: list[str] = []

    def train(config, run, device, **_):
        trained.append(run.name)
        run.mkdir(parents=True)
        save_config(config, RunPaths(run).config)
        RunPaths(run).metrics.write_text("")
        RunPaths(run).figure("traversals").write_text(run.name)

    def evaluate_run(run, metrics, **_):
        steps = yaml.safe_load(RunPaths(run).config.read_text())["train"]["steps"]
        scores = {"discrete_mig": 0.1, "fidelity_shape": 0.9}
        result = {"step": steps, "metrics": metrics, "scores": scores, "reconstruction": {"sse": 2.0}}
        atomic_write_json(RunPaths(run).scores, result)
        atomic_write_json(run / "position.json", {"step": steps, "images": 0, "position_r2": 0.5})

    monkeypatch.setattr("sbvae.study.runner.train", train)
    monkeypatch.setattr("sbvae.study.runner.evaluate_run", evaluate_run)
    return trained


def test_extending_a_study_from_3_to_5_seeds_trains_only_the_new_seeds(tmp_path, run_cli, counted_training):
    code, _, err = run_cli("reproduce", "colored-sprites", "--out", tmp_path, "--seeds", "3")
    assert code == 0, err
    assert sorted(counted_training) == sorted(f"{d}-seed{k}" for d in ("sbd", "deconv") for k in (1, 2, 3))
    runs = tmp_path / "colored-sprites" / "runs"
    before = snapshot(runs)

    counted_training.clear()
    code, out, err = run_cli("reproduce", "colored-sprites", "--out", tmp_path, "--seeds", "5")
    assert code == 0, err
    assert sorted(counted_training) == ["deconv-seed4", "deconv-seed5", "sbd-seed4", "sbd-seed5"]
    assert sum(line.startswith(f"reusing {runs}") for line in out.splitlines()) == 6
    assert {k: v for k, v in snapshot(runs).items() if k in before} == before  # seeds 1-3 untouched
    results = json.loads((tmp_path / "colored-sprites" / "results.json").read_text())
    assert len(results["runs"]) == 10 and all(len(e["sbd"]) == 5 for e in results["summary"])
    # every run has the same test error: the median run is the middle seed (seed 2 of 3, then
    # seed 3 of 5), its traversals copied and linked
    traversals = tmp_path / "colored-sprites" / "traversals"
    assert {p.name: p.read_text() for p in traversals.iterdir()} == {
        "sbd-seed3.png": "sbd-seed3",
        "deconv-seed3.png": "deconv-seed3",
    }
    assert "[sbd-seed3](traversals/sbd-seed3.png)" in (tmp_path / "colored-sprites" / "results.md").read_text()


def test_factor_vae_and_sbd_capacity_use_the_colored_sprites_runs_where_they_lie(tmp_path, run_cli, counted_training):
    one_seed = ["--out", tmp_path, "--seeds", "1"]
    assert run_cli("reproduce", "colored-sprites", *one_seed)[0] == 0
    for name, new_runs in [
        ("factor-vae", ["deconv-factor_vae-seed1", "sbd-factor_vae-seed1"]),
        ("sbd-capacity", ["sbd-sbd_channels64-seed1"]),
    ]:
        counted_training.clear()
        code, out, err = run_cli("reproduce", name, *one_seed)
        assert code == 0, err
        assert sorted(counted_training) == new_runs
        assert sum(line.startswith(f"reusing {tmp_path / 'colored-sprites'}") for line in out.splitlines()) == 2
        results = json.loads((tmp_path / name / "results.json").read_text())
        assert len(results["runs"]) == 4 and {e["verdict"] for e in results["summary"]} == {"inconclusive"}


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["no-position", "--set", "data.preset=colored_sprites"], "sweeps data.preset"),
        (["sbd-capacity", "--set", "model.sbd_channels=16"], "sweeps model.sbd_channels"),
        (["factor-vae", "--set", "objective.name=beta_tcvae"], "sweeps objective.name"),
        (["no-position", "--seeds", "0"], "--seeds must be positive"),
        (["factor-vae", "--steps", "0"], "train.steps must be positive"),
        (["sbd-capacity", "--steps", "10000000000000"], "train.steps must be at most"),
    ],
)
def test_bad_input_to_a_new_experiment_is_one_line_and_writes_nothing(args, words, tmp_path, run_cli):
    code, _, err = run_cli("reproduce", *args, "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert not list(tmp_path.iterdir())


def test_a_new_experiments_folder_holding_another_run_is_refused(tmp_path, run_cli, trained_run):
    taken = tmp_path / "no-position" / "runs" / "sbd-chairs-seed1"
    shutil.copytree(trained_run, taken)
    before = snapshot(tmp_path)
    code, _, err = run_cli("reproduce", "no-position", "--out", tmp_path, *TINY_STUDY)
    assert code == 2 and err.count("\n") == 1 and "different config" in err, err
    assert snapshot(tmp_path) == before


def test_protocol_3_results_beside_the_new_ones_are_left_alone(tmp_path, run_cli, counted_training):
    moved = tmp_path / "protocol-3" / "colored-sprites" / "runs" / "sbd-seed1"
    moved.mkdir(parents=True)
    (moved / "config.yaml").write_text("as committed\n")
    before = snapshot(tmp_path / "protocol-3")
    code, _, err = run_cli("reproduce", "colored-sprites", "--out", tmp_path, "--seeds", "1")
    assert code == 0, err
    assert (tmp_path / "colored-sprites" / "results.md").is_file() and snapshot(tmp_path / "protocol-3") == before


# -- tiny studies ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_a_tiny_version_of_each_new_experiment_writes_its_results(name, tmp_path, run_cli):
    study = [t for t in TINY_STUDY if not t.startswith("model.sbd_channels")]  # a key sbd-capacity sweeps
    code, out, err = run_cli("reproduce", name, "--out", tmp_path, *study)
    assert code == 0, err
    folder = tmp_path / name
    trained = [line.split("/")[-1] for line in out.splitlines() if line.startswith(f"training {folder}")]
    assert sorted(trained) == sorted({s.name for s in plan(load_experiment(name), seeds=2)})  # each run once
    results = json.loads((folder / "results.json").read_text())
    assert all(len(e["sbd"]) == len(e["deconv"]) == 2 for e in results["summary"])
    assert len(results["ablation"]) == (name == "sbd-capacity")
    text = (folder / "results.md").read_text()
    assert "## Per decoder" in text and "Expected wall time" in text
    assert "| fidelity_shape |" in text or "| fidelity_armrests |" in text
    links = re.findall(r"\]\(traversals/([^)]+)\.png\)", text)  # a run per decoder and variant
    assert len(links) == 2 * len({json.dumps(r["variant"]) for r in results["runs"]})
    assert all((folder / "traversals" / f"{link}.png").is_file() for link in links)
    pages = (
        [folder / "compare" / p for p in ("objects_room", "chairs")] if name == "no-position" else [folder / "compare"]
    )
    assert all((page / "compare.html").is_file() for page in pages)

    summarised = snapshot(folder)
    code, out, err = run_cli("reproduce", name, "--out", tmp_path, *study)
    assert code == 0, err
    assert "nothing changed" in out and snapshot(folder) == summarised
