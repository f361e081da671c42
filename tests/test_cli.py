"""The `sbvae` command end to end: training runs, resume, and one-line errors on bad input."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from conftest import snapshot
from sbvae.errors import CheckpointError
from sbvae.training.run_folder import FIGURE_FILES, load_checkpoint


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        assert width > 50 and height > 50
        low, high = image.convert("L").getextrema()
        assert high - low > 50  # not a blank picture


def check_run_folder(run: Path, steps: int, decoder: str) -> None:
    for name in ("config.yaml", "checkpoint.pt", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    for file in FIGURE_FILES.values():
        if file.endswith(".png"):
            assert_png(run / file)
    assert (run / "traversals.gif").read_bytes()[:6] == b"GIF89a"
    assert "<h2>Scores</h2>" in (run / "report.html").read_text()
    assert not list(run.glob("*.tmp*"))  # no temporary files left behind

    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["steps"] == steps
    assert saved["model"]["decoder"] == decoder
    assert saved["data"]["image_size"] == 32

    rows = read_rows(run / "metrics.jsonl")
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert [r["step"] for r in train] == list(range(2, steps + 1, 2))  # log_every=2
    assert [r["step"] for r in val] == list(range(3, steps + 1, 3))  # eval_every=3
    for r in train:
        assert {"loss", "recon", "kl", "kl_per_dim", "images_per_sec"} <= set(r)
        assert r["loss"] == pytest.approx(r["recon"] + r["kl"], rel=1e-4, abs=1e-3)
        assert len(r["kl_per_dim"]) == 10
    for r in val:
        assert {"loss", "recon", "kl", "sse", "kl_per_dim", "active_latents"} <= set(r)
        assert r["sse"] > 0

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == steps
    assert state["config"]["model"]["decoder"] == decoder


def test_train_sbd_writes_the_run_folder(trained_run):
    check_run_folder(trained_run, 6, "sbd")
    state = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    assert any(key.startswith("decoder.convs.") for key in state["model"])


def test_train_deconv_writes_the_run_folder(tmp_path, run_cli, tiny_overrides):
    run = tmp_path / "deconv"
    code, out, err = run_cli("train", "--set", *tiny_overrides, "model.decoder=deconv", "--out", run, "--quiet")
    assert code == 0, err
    assert "parameters:" in out and "done: step 6" in out
    check_run_folder(run, 6, "deconv")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert any(key.startswith("decoder.deconvs.") for key in state["model"])


def test_resume_gives_the_same_parameters(tmp_path, trained_run, run_cli, tiny_overrides):
    run = tmp_path / "half"
    code, _, err = run_cli("train", "--set", *tiny_overrides, "train.steps=3", "--out", run, "--quiet")
    assert code == 0, err
    half = torch.load(run / "checkpoint.pt", weights_only=True)
    assert half["step"] == 3

    code, _out, err = run_cli("train", "--resume", run, "--set", "train.steps=6", "--quiet")
    assert code == 0, err
    resumed = torch.load(run / "checkpoint.pt", weights_only=True)
    straight = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == straight["step"] == 6
    assert resumed["model"].keys() == straight["model"].keys()
    for key, tensor in straight["model"].items():
        assert torch.equal(resumed["model"][key], tensor), key
    # Training really moved on after the resume.
    assert any(not torch.equal(half["model"][k], straight["model"][k]) for k in straight["model"])
    # The resumed run's metrics: no duplicated steps, and the final validation is the same.
    rows = read_rows(run / "metrics.jsonl")
    val = {r["step"]: r for r in rows if r["split"] == "val"}
    straight_val = {r["step"]: r for r in read_rows(trained_run / "metrics.jsonl") if r["split"] == "val"}
    assert sorted(val) == [3, 6]
    assert val[6]["loss"] == straight_val[6]["loss"]
    assert val[6]["sse"] == straight_val[6]["sse"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 6


# -- bad input ----------------------------------------------------------------------------


def assert_one_line_error(code: int, err: str, *words: str, prefix: str = "sbvae: error:") -> None:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, err)


NEW_RUN_ERRORS = {
    "unknown-key": (["--set", "train.stepz=5"], ["train.stepz"]),
    "wrong-type": (["--set", "train.steps=abc"], ["train.steps", "int"]),
    "image-size": (["--set", "data.image_size=40"], ["divisible by 16"]),
    "zero-steps": (["--set", "train.steps=0"], ["train.steps", "positive"]),
    "zero-sigma": (["--set", "objective.sigma=0"], ["objective.sigma", "positive"]),
    "missing-config": (["--config", "MISSING/none.yaml"], ["config file not found"]),
    "no-equals": (["--set", "foo"], ["foo", "section.key=value"]),
    "cuda": (["--device", "cuda"], ["cuda", "not available"]),
    "bad-device": (["--device", "tpu"], ["tpu"]),
    "unknown-option": (["--bogus"], ["--bogus"]),
}


@pytest.mark.parametrize("case", NEW_RUN_ERRORS)
def test_bad_new_run_input(case, tmp_path, trained_run, run_cli):
    if case == "cuda":
        assert not torch.cuda.is_available()  # this test assumes a machine without CUDA
    args, words = NEW_RUN_ERRORS[case]
    args = [a.replace("MISSING", str(tmp_path / "missing")) for a in args]
    before = snapshot(trained_run)
    out = tmp_path / "new-run"
    code, _, err = run_cli("train", *args, "--out", out, "--quiet")
    assert_one_line_error(code, err, *words)
    assert not out.exists()  # nothing created
    assert snapshot(trained_run) == before


def test_out_pointing_to_a_non_empty_folder(trained_run, run_cli):
    before = snapshot(trained_run)
    code, _, err = run_cli("train", "--set", "train.steps=2", "--out", trained_run, "--quiet")
    assert_one_line_error(code, err, "not empty", str(trained_run))
    assert snapshot(trained_run) == before


def _copy_run(trained_run: Path, where: Path) -> Path:
    run = where / "run"
    shutil.copytree(trained_run, run)
    return run


def _corrupt_random(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size // 10 + 1000))


def _corrupt_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def _corrupt_not_a_checkpoint(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


def _corrupt_wrong_shapes(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    key = next(k for k in state["model"] if k.endswith("weight"))
    state["model"][key] = torch.zeros(1)
    torch.save(state, path)


@pytest.mark.parametrize(
    "corrupt, words",
    [
        (_corrupt_random, ["corrupt or unreadable"]),
        (_corrupt_truncate, ["corrupt or unreadable"]),
        (_corrupt_empty, ["corrupt or unreadable"]),
        (_corrupt_not_a_checkpoint, ["not an sbvae checkpoint"]),
        (_corrupt_wrong_shapes, ["cannot be restored"]),
    ],
    ids=["random-bytes", "truncated", "empty", "not-a-checkpoint", "wrong-shapes"],
)
def test_resume_from_a_bad_checkpoint(corrupt, words, tmp_path, trained_run, run_cli):
    run = _copy_run(trained_run, tmp_path)
    corrupt(run / "checkpoint.pt")
    before = snapshot(run)
    code, _, err = run_cli("train", "--resume", run, "--set", "train.steps=8", "--quiet")
    assert_one_line_error(code, err, "checkpoint", *words)
    assert snapshot(run) == before


def test_any_garbage_in_a_checkpoint_is_a_checkpoint_error(tmp_path):
    """Random bytes can make the unpickler raise almost anything (CI once saw an IndexError)."""
    path = tmp_path / "checkpoint.pt"
    rng = random.Random(0)
    # Plain noise, and noise behind a pickle header so the legacy unpickler reads far into it.
    for trial in range(400):
        noise = rng.randbytes(rng.randrange(1, 400))
        path.write_bytes(noise if trial % 2 else b"\x80\x02" + noise)
        with pytest.raises(CheckpointError, match="corrupt or unreadable"):
            load_checkpoint(path)


def test_resume_without_checkpoint(tmp_path, run_cli):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep me")
    before = snapshot(run)
    code, _, err = run_cli("train", "--resume", run, "--quiet")
    assert_one_line_error(code, err, "no checkpoint")
    assert snapshot(run) == before


def test_resume_missing_folder(tmp_path, run_cli):
    code, _, err = run_cli("train", "--resume", tmp_path / "nowhere", "--quiet")
    assert_one_line_error(code, err, "not found")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--set", "train.lr=1"], ["only train.steps"]),
        (["--set", "train.steps=0"], ["train.steps"]),
        (["--set", "train.steps=x"], ["train.steps"]),
        (["--seed", "3"], ["--resume"]),
        (["--config", "paper"], ["--resume"]),
    ],
)
def test_resume_refuses_config_changes(extra, words, tmp_path, trained_run, run_cli):
    run = _copy_run(trained_run, tmp_path)
    before = snapshot(run)
    code, _, err = run_cli("train", "--resume", run, *extra, "--quiet")
    assert_one_line_error(code, err, *words)
    assert snapshot(run) == before


class _Exploit:
    """Unpickling this runs a shell command (what a malicious checkpoint could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_is_loaded_with_weights_only(tmp_path, run_cli):
    run = tmp_path / "evil"
    run.mkdir()
    marker = tmp_path / "MARKER"
    torch.save({"format": 1, "step": 0, "config": {}, "model": _Exploit(marker)}, run / "checkpoint.pt")
    code, _, err = run_cli("train", "--resume", run, "--set", "train.steps=2", "--quiet")
    assert_one_line_error(code, err, "checkpoint")
    assert not marker.exists()
    # The crafted file really is dangerous when loaded without weights_only.
    torch.load(run / "checkpoint.pt", weights_only=False)
    assert marker.exists()


# -- data previews ------------------------------------------------------------------------


def test_data_preview_png(tmp_path, run_cli):
    out = tmp_path / "x.png"
    code, stdout, err = run_cli("data", "colored_sprites", "--out", out, "--image-size", "32", "--count", "4")
    assert code == 0, err
    assert "colored_sprites" in stdout
    assert_png(out)


@pytest.mark.parametrize(
    "args, words",
    [
        (["nonsense", "--out", "OUT/x.png"], ["nonsense", "colored_sprites"]),
        (["dsprites", "--out", "OUT/x.jpg"], [".png"]),
        (["dsprites", "--out", "OUT/missing/x.png"], ["does not exist"]),
        (["dsprites", "--out", "OUT/x.png", "--image-size", "40"], ["--image-size"]),
        (["dsprites", "--out", "OUT/x.png", "--count", "0"], ["--count"]),
    ],
)
def test_data_bad_input(args, words, tmp_path, run_cli):
    args = [a.replace("OUT", str(tmp_path)) for a in args]
    code, _, err = run_cli("data", *args)
    assert_one_line_error(code, err, *words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "recipe, words",
    [("", ["--recipe is empty"]), ("nonsense", ["nonsense"]), ("default train.lr=0", ["train.lr", "positive"])],
)
def test_bench_bad_recipe_is_one_line(recipe, words, tmp_path, run_cli):
    code, _, err = run_cli("bench", "--recipe", recipe, "--json", tmp_path / "out.json")
    assert_one_line_error(code, err, *words)
    assert list(tmp_path.iterdir()) == []


def test_subcommand_usage_error_is_one_line(run_cli):
    # argparse names the subcommand in its own errors ("sbvae data: error: ...").
    code, _, err = run_cli("data", "dsprites")
    assert_one_line_error(code, err, "--out", prefix="sbvae data: error:")


def test_module_entry_point_exit_code(tmp_path):
    """`python -m sbvae` exits with the CLI's code (one subprocess; the rest run in-process)."""
    result = subprocess.run(
        [sys.executable, "-m", "sbvae", "data", "nonsense", "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("sbvae: error:") and len(result.stderr.splitlines()) == 1
