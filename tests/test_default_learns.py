"""The embedded default really learns (about 10 minutes on 2 cores, so opt-in).

Run with ``pytest -m slow``. Every model first sits on a "grey plateau": a blob in the
right place and size but without colour, at a validation squared error of about 11.5 per
image (32 px). The default must leave it: colour learned, squared error well below it.
"""

from __future__ import annotations

import json

import pytest

from sbvae.config import load_config
from sbvae.training.loop import train
from sbvae.viz.outputs import standard_callbacks

PLATEAU_SSE = 11.5


@pytest.mark.slow
def test_default_preset_leaves_the_grey_plateau(tmp_path):
    run = train(load_config("default"), tmp_path / "run", "cpu", progress=False, callbacks=standard_callbacks())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in rows if r["split"] == "val"][-1]
    assert final["step"] == load_config("default").train.steps
    assert final["sse"] < 0.7 * PLATEAU_SSE, final["sse"]
    assert final["active_latents"] >= 5
