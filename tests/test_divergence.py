"""A diverging run stops at once, in one line, and leaves the last checkpoint as it was."""

from __future__ import annotations

import torch

from conftest import TINY
from sbvae.training.run_folder import load_checkpoint

HUGE_LR = [*TINY, "train.lr=1e6", "train.checkpoint_every=1"]  # Adam's first update at 1e6 blows up


def test_a_diverging_run_stops_within_a_step_and_keeps_its_checkpoint(tmp_path, run_cli):
    code, _, err = run_cli("train", "--set", *HUGE_LR, "--out", tmp_path / "run", "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert "training diverged at step 2" in err and "train.lr (now 1e+06)" in err
    kept = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert kept["step"] == 1 and all(torch.isfinite(v).all() for v in kept["model"].values())

    # one step alone: its weights are finite but huge (its end-of-run scores and figures may not be)
    run_cli("train", "--set", *HUGE_LR, "train.steps=1", "--out", tmp_path / "one", "--quiet")
    one = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    for key, value in one["model"].items():  # the step-1 checkpoint, untouched by the failed step 2
        assert torch.equal(kept["model"][key], value), key
    assert not list((tmp_path / "run").glob("*.tmp"))
