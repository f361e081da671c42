"""The held-out evaluation: the geometry score on synthetic codes, and on a trained run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import TINY
from sbvae.evaluation.heldout import heldout_statistics
from sbvae.evaluation.position import affine_readout_r2, position_statistics


def _positions(rng: np.random.Generator, n: int, held_out: bool) -> np.ndarray:
    xy = rng.uniform(0, 1, (4 * n, 2))
    inside = (xy >= 0.6).all(axis=1)
    return (xy[inside] if held_out else xy[~inside])[:n]


def test_a_linear_layout_extends_to_the_held_out_block_and_a_folded_one_does_not():
    rng = np.random.default_rng(0)
    fit, held = _positions(rng, 2000, False), _positions(rng, 500, True)
    mixing = rng.normal(size=(2, 6))

    def linear(xy):
        return xy @ mixing + 0.01 * rng.normal(size=(len(xy), 6))

    def folded(xy):  # position kept only up to a reflection at 0.6: the block lands on seen codes
        return np.abs(xy - 0.6) @ mixing + 0.01 * rng.normal(size=(len(xy), 6))

    assert affine_readout_r2(linear(fit), fit, linear(held), held) > 0.99
    assert affine_readout_r2(folded(fit), fit, folded(held), held) < 0.0
    noise = rng.normal(size=(len(held), 6))
    assert affine_readout_r2(linear(fit), fit, noise, held) < 0.0


def test_held_out_statistics_of_a_trained_run_are_cached(tmp_path, trained_run, run_cli):
    import torch

    assert heldout_statistics(trained_run, torch.device("cpu")) is None  # colored_sprites holds nothing out
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--out", run, "--quiet", "--set", *TINY, "data.preset=colored_sprites_heldout")
    assert code == 0, err
    stats = heldout_statistics(run, torch.device("cpu"))
    assert stats["sse"] > 0 and stats["images"] == 2000
    assert -np.inf < stats["heldout_position_r2"] <= 1 and -np.inf < stats["position_r2"] <= 1
    assert json.loads((run / "heldout.json").read_text()) == json.loads(json.dumps(stats))
    (run / "checkpoint.pt").unlink()  # committed results carry no checkpoint: the cache answers
    assert heldout_statistics(run, torch.device("cpu")) == json.loads(json.dumps(stats))


def test_position_statistics_of_any_run_are_cached_and_match_the_held_out_ones(tmp_path, trained_run, run_cli):
    import torch

    trained = tmp_path / "trained"
    shutil.copytree(trained_run, trained)  # the shared fixture stays as training left it
    stats = position_statistics(trained, torch.device("cpu"))
    assert -np.inf < stats["position_r2"] <= 1 and stats["images"] == 2000
    assert json.loads((trained / "position.json").read_text()) == stats
    run = tmp_path / "run"
    code, _, err = run_cli("train", "--out", run, "--quiet", "--set", *TINY, "data.preset=colored_sprites_heldout")
    assert code == 0, err  # the same map and images as the held-out evaluation's in-distribution score
    stats = position_statistics(run, torch.device("cpu"))
    assert stats["position_r2"] == pytest.approx(heldout_statistics(run, torch.device("cpu"))["position_r2"])
    (run / "checkpoint.pt").unlink()  # committed results carry no checkpoint: the cache answers
    assert position_statistics(run, torch.device("cpu")) == stats
