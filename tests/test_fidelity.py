"""Fidelity of reconstructions: the probe, its scores, and where they show up (issue 26)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, full_probes, invoke, snapshot
from sbvae.config import load_config
from sbvae.data import make_dataset, make_generator
from sbvae.evaluation import probe as probe_module
from sbvae.evaluation.fidelity import fidelity_probe, fidelity_scores, model_fidelity
from sbvae.evaluation.probe import factor_readings, load_or_train_probe, train_probe
from sbvae.models import build_vae
from sbvae.viz.curves import FIDELITY_PANEL, curves_figure, panels

DATA = make_dataset("colored_sprites", 32)


@pytest.fixture(scope="module")
def probe():
    """The probe of the default data (32 px coloured sprites) at its full budget: trained once
    into this session's cache folder (see conftest)."""
    with full_probes():
        return fidelity_probe(load_config("default"))[1]


@pytest.fixture(scope="module")
def held_out():
    values = DATA.draw(1_000, make_generator(7, "held out"))
    return values, DATA.render(values)


def test_each_factor_is_read_by_its_kind():
    sprites = {r.name: (r.kind, r.turn) for r in factor_readings(DATA)}
    assert sprites["shape"][0] == "class" and sprites["orientation"] == ("angle", 2 * math.pi)
    assert sprites["hue"] == ("angle", 1.0)
    assert {sprites[n][0] for n in ("x", "y", "scale", "saturation", "value")} == {"value"}
    room = {r.name: (r.kind, r.turn) for r in factor_readings(make_dataset("objects_room", 16))}
    assert room["floor_hue"] == ("angle", 1.0) and room["shape"][0] == "class"
    assert room["orientation"][0] == "value"  # 60 degrees, not a whole turn
    chairs = {r.name: (r.kind, r.turn) for r in factor_readings(make_dataset("chairs", 16))}
    assert chairs["azimuth"] == ("angle", 360.0) and chairs["armrests"][0] == "class"
    assert chairs["seat_width"][0] == "value"


def test_the_probe_reads_ground_truth(probe, held_out):
    values, images = held_out
    scores = fidelity_scores(probe, values, images, images)
    assert scores["fidelity_shape_control"] >= 0.97
    for name in ("x", "y", "scale", "hue", "saturation"):
        assert scores[f"fidelity_{name}_control"] >= 0.9, name
    assert scores["fidelity_shape_chance"] == pytest.approx(1 / 3, abs=0.05)
    assert scores["fidelity_x_chance"] == 0.0


def test_ground_truth_as_reconstructions_scores_the_control(probe, held_out):
    values, images = held_out
    scores = fidelity_scores(probe, values, images.clone(), images)
    for name in DATA.factor_names:
        assert scores[f"fidelity_{name}"] == scores[f"fidelity_{name}_control"], name


class MeanImage(torch.nn.Module):
    """A decoder that draws the data's mean image whatever the code."""

    def __init__(self, mean: torch.Tensor) -> None:
        super().__init__()
        self.mean = mean

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.mean.expand(len(z), *self.mean.shape[1:])


def test_a_decoder_of_the_mean_image_scores_chance(probe):
    model = build_vae(load_config("default").model, 32, 3)
    model.decoder = MeanImage(DATA.render(DATA.draw(2_000, make_generator(1, "mean"))).mean(0, keepdim=True))
    scores = model_fidelity(model, DATA, probe, "gaussian", samples=600, seed=5)
    assert scores["fidelity_shape"] == pytest.approx(1 / 3, abs=0.1)
    assert scores["fidelity_x"] <= 0.02 and scores["fidelity_y"] <= 0.02
    assert scores["fidelity_shape_control"] >= 0.95  # the same samples, read from the ground truth


def test_the_same_seed_gives_the_same_probe_and_scores():
    data = make_dataset("colored_sprites", 16)
    rng_state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    first, again, other = (train_probe(data, seed, steps=8) for seed in (3, 3, 4))
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the global stream is untouched
    assert torch.get_num_threads() == threads
    weights = [p.net.state_dict() for p in (first, again, other)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert any(not torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    values = data.draw(64, make_generator(0, "fidelity"))
    images = data.render(values)
    blurred = torch.nn.functional.avg_pool2d(images, 3, 1, 1)
    assert fidelity_scores(first, values, blurred, images) == fidelity_scores(again, values, blurred, images)


def _refuse_to_train(*args, **kwargs):
    raise RuntimeError("trained again")


def test_the_probe_is_kept_in_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = make_dataset("dsprites", 16)
    trained = load_or_train_probe(data, "dsprites for a test", steps=4)
    files = list((tmp_path / "sbvae" / "probes").iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"  # no temporary file left
    monkeypatch.setattr(probe_module, "_LOADED", {})  # as in a new process
    monkeypatch.setattr(probe_module, "train_probe", _refuse_to_train)
    loaded = load_or_train_probe(data, "dsprites for a test", steps=4)
    assert all(torch.equal(v, loaded.net.state_dict()[k]) for k, v in trained.net.state_dict().items())
    images = data.render(data.draw(64, make_generator(0, "reading")))  # and reads the same numbers, bit for bit
    assert torch.equal(trained.read(images), loaded.read(images))
    with pytest.raises(RuntimeError, match="trained again"):  # another seed is another probe
        load_or_train_probe(data, "dsprites for a test", seed=1, steps=4)


def test_the_curves_get_a_fidelity_panel(tmp_path):
    rows = [{"step": s, "split": "train", "loss": 1.0 / s} for s in (1, 2, 3)]
    fidelity = [{"step": s, "split": "fidelity", **_keys("shape", 0.5, 1.0, 1 / 3)} for s in (2, 3)]
    assert FIDELITY_PANEL not in panels({"run": rows})
    assert panels({"run": rows + fidelity})[-1] == FIDELITY_PANEL
    curves_figure({"a": rows + fidelity, "b": rows}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000


def _keys(name: str, score: float, control: float, chance: float) -> dict[str, float]:
    """The keys of one factor in a fidelity row."""
    return {f"fidelity_{name}": score, f"fidelity_{name}_control": control, f"fidelity_{name}_chance": chance}


# -- in the run folder --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fidelity_run(tmp_path_factory):
    """The tiny run of conftest with fidelity every 2 steps, its probe trained during the run
    (a few steps, a fresh cache folder)."""
    out = tmp_path_factory.mktemp("fidelity") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("fresh-cache")))
        settings = [*TINY, "train.fidelity_every=2", "train.fidelity_samples=300"]
        code = invoke(["train", "--set", *settings, "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, trained_run, probe):
    """A copy of conftest's tiny run whose metrics.json is `sbvae evaluate --metrics fidelity`'s."""
    run = tmp_path_factory.mktemp("evaluated") / "run"
    shutil.copytree(trained_run, run)
    assert invoke(["evaluate", str(run), "--metrics", "fidelity", "--fidelity-samples", "300"]) == 0
    return run


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_logs_fidelity_rows_and_ends_with_them_in_metrics_json(fidelity_run):
    rows = _rows(fidelity_run)
    logged = [r for r in rows if r["split"] == "fidelity"]
    assert [r["step"] for r in logged] == [2, 4, 6]
    for row in logged:
        for name in DATA.factor_names:
            assert {f"fidelity_{name}", f"fidelity_{name}_control", f"fidelity_{name}_chance"} <= set(row)
        assert 0 <= row["fidelity_shape"] <= 1 and row["fidelity_x_chance"] == 0
    assert not any(k.startswith("fidelity") for r in rows if r["split"] == "mig" for k in r)
    result = json.loads((fidelity_run / "metrics.json").read_text())
    assert result["metrics"] == ["mig", "fidelity"] and "discrete_mig" in result["scores"]
    assert {k: v for k, v in logged[-1].items() if k not in ("step", "split")} == {
        k: v for k, v in result["scores"].items() if k.startswith("fidelity_")
    }
    assert result["fidelity"]["measures"]["shape"] == "accuracy" and result["fidelity"]["samples"] == 300
    assert "Fidelity of reconstructions" in (fidelity_run / "report.html").read_text()


def test_fidelity_during_training_leaves_the_weights_as_they_were(fidelity_run, trained_run):
    with_fidelity = torch.load(fidelity_run / "checkpoint.pt", weights_only=True)["model"]
    without = torch.load(trained_run / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(tensor, without[key]) for key, tensor in with_fidelity.items())


def _key_names(factors: tuple[str, ...]) -> set[str]:
    return {f"fidelity_{name}{end}" for name in factors for end in ("", "_control", "_chance")}


def test_evaluate_writes_the_fidelity_of_the_factors_asked_for(tmp_path, evaluated_run, run_cli):
    assert set(json.loads((evaluated_run / "metrics.json").read_text())["scores"]) == _key_names(DATA.factor_names)
    run = tmp_path / "run"
    shutil.copytree(evaluated_run, run)
    code, out, err = run_cli("evaluate", run, "--metrics", "fidelity", "--fidelity-factors", "shape,x")
    assert code == 0, err
    result = json.loads((run / "metrics.json").read_text())
    assert set(result["scores"]) == _key_names(("shape", "x")) and "fidelity_shape_control" in out
    assert result["fidelity"]["samples"] == 2_000 and set(result["fidelity"]["measures"]) == {"shape", "x"}


def test_report_and_compare_show_a_fidelity_table(tmp_path, evaluated_run, fidelity_run, run_cli):
    scores = {run: json.loads((run / "metrics.json").read_text())["scores"] for run in (evaluated_run, fidelity_run)}
    code, _, err = run_cli("report", evaluated_run, "--no-figures")
    assert code == 0, err
    page = (evaluated_run / "report.html").read_text()
    assert "Fidelity of reconstructions" in page
    assert f"<td>shape</td><td>accuracy</td><td>{scores[evaluated_run]['fidelity_shape']:.4f}</td>" in page
    code, _, err = run_cli("compare", evaluated_run, fidelity_run, "--out", tmp_path / "cmp")
    assert code == 0, err
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "Fidelity of reconstructions" in page
    for run in (evaluated_run, fidelity_run):
        assert f"<td>{scores[run]['fidelity_hue']:.4f}</td>" in page


# -- bad input ----------------------------------------------------------------------------------


def _one_line(code: int, err: str, *words: str) -> None:
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("sbvae: error:"), err
    assert all(word in err for word in words), err


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), "RGB").save(folder / f"img{i}.png")
    return folder


def test_training_refuses_fidelity_on_data_without_factors_or_a_negative_interval(tmp_path, photos, run_cli):
    for extra, words in (
        ([f"data.path={photos}", "train.fidelity_every=2"], ["ground-truth", "train.fidelity_every"]),
        (["train.fidelity_every=-1"], ["train.fidelity_every", ">= 0"]),
    ):
        code, _, err = run_cli("train", "--set", *TINY, *extra, "--out", tmp_path / "run", "--quiet")
        _one_line(code, err, *words)
        assert not (tmp_path / "run").exists()


def test_evaluate_refuses_unknown_factors_and_data_without_factors(tmp_path, trained_run, photos, run_cli):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = snapshot(run)
    for args, words in (
        (["--fidelity-factors", "shape,colour"], ["colour", "shape, scale"]),
        (["--metrics", "mig", "--fidelity-factors", "shape"], ["--fidelity-factors"]),
        (["--fidelity-samples", "1"], ["--fidelity-samples"]),
    ):
        code, _, err = run_cli("evaluate", run, *(["--metrics", "fidelity"] if "--metrics" not in args else []), *args)
        _one_line(code, err, *words)
    assert snapshot(run) == before
    images = tmp_path / "images"
    assert invoke(["train", "--set", *TINY, f"data.path={photos}", "--out", str(images), "--quiet"]) == 0
    before = snapshot(images)
    code, _, err = run_cli("evaluate", images, "--metrics", "fidelity")
    _one_line(code, err, "fidelity", "ground-truth")
    assert snapshot(images) == before
