"""The embedded default really learns (about 10 minutes on 2 cores, so opt-in).

Run with ``pytest -m slow``. Every model first sits on a "grey plateau": a blob in the
right place and size but without colour, at a validation squared error of about 11.5 per
image (32 px). The default must leave it, and its reconstructions must keep the sprite's
shape, as read by the fidelity probe (:mod:`sbvae.evaluation.fidelity`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import full_probes
from sbvae.config import load_config
from sbvae.training.loop import train
from sbvae.viz.outputs import standard_callbacks

PLATEAU_SSE = 11.5
SHAPE_TARGET = 0.9
"""Issue 26's target. The default's own seed (0) reaches it; not every seed does (docs/learning.md)."""


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("default") / "run"
    with full_probes():
        return train(load_config("default"), out, "cpu", progress=False, callbacks=standard_callbacks())


def final_rows(run: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {split: [r for r in rows if r["split"] == split][-1] for split in ("val", "fidelity")}


@pytest.mark.slow
def test_default_preset_leaves_the_grey_plateau_and_keeps_shape(default_run):
    final = final_rows(default_run)
    assert final["val"]["step"] == final["fidelity"]["step"] == load_config("default").train.steps
    assert final["val"]["sse"] < 0.7 * PLATEAU_SSE, final["val"]["sse"]
    assert final["val"]["active_latents"] >= 5
    assert final["fidelity"]["fidelity_shape"] >= SHAPE_TARGET, final["fidelity"]
    assert final["fidelity"]["fidelity_shape_control"] >= 0.95, final["fidelity"]
