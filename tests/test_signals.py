"""SIGTERM, what schedulers send, ends training like Ctrl-C: one line, a valid checkpoint, exact resume."""

from __future__ import annotations

import signal
import subprocess
import sys

import torch

from conftest import TINY, wait_for
from sbvae.training.run_folder import load_checkpoint

LONG = [t for t in TINY if not t.startswith("train.steps")] + ["train.steps=1000000"]


def test_sigterm_leaves_a_valid_checkpoint_and_the_resume_is_exact(tmp_path, run_cli):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "sbvae", "train", "--set", *LONG, "--out", str(run), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (run / "checkpoint.pt").is_file())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "sbvae: terminated (SIGTERM)", err
    assert not list(run.glob("*.tmp"))
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert step > 0 and step % 3 == 0  # checkpoint_every=3

    code, _, err = run_cli("train", "--resume", run, "--set", f"train.steps={step + 3}", "--quiet")
    assert code == 0, err
    code, _, err = run_cli("train", "--set", *TINY, f"train.steps={step + 3}", "--out", tmp_path / "fresh", "--quiet")
    assert code == 0, err
    resumed = load_checkpoint(run / "checkpoint.pt")
    fresh = load_checkpoint(tmp_path / "fresh" / "checkpoint.pt")
    assert resumed["step"] == fresh["step"] == step + 3
    for key, value in fresh["model"].items():
        assert torch.equal(resumed["model"][key], value), key
