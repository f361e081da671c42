"""Configs that cannot fit are refused in one line before anything large is allocated."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

from sbvae.config import load_config
from sbvae.errors import ConfigError
from sbvae.training.resources import check_fits, estimate

EXTREME = [
    "data.image_size=1048576",
    "train.batch_size=100000000",
    "model.latent_dim=100000",
    "data.supersample=100000",
    "data.val_size=100000000",
    "train.mig_samples=1000000000",
    "model.sbd_kernel=1001",
    "model.encoder_channels=1000000",
    "model.deconv_channels=10000000",
    "model.sbd_channels=100000000000",
    "model.sbd_layers=100000",
    "train.seed=100000000000000000000000",
    "train.threads=100000",
    "train.steps=1000000000000000000000000",
    "train.lr=.inf",
    "train.lr=.nan",
    "objective.sigma=.nan",
    "objective.beta=.inf",
]

# Each value through the real CLI, in one process whose address space is capped at 4 GB: an
# allocation on the way to the refusal would end it with MemoryError or a kill, not exit 2.
SCRIPT = """
import contextlib, io, json, sys
from sbvae.cli import main
results = []
for value in sys.argv[2:]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", "--out", sys.argv[1], "--set", value, "--quiet"])
    results.append([value, code, err.getvalue()])
print(json.dumps(results))
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))


def test_extreme_values_are_refused_in_one_line_under_a_memory_cap(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), *EXTREME],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_cap_memory,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for value, code, err in json.loads(done.stdout.splitlines()[-1]):
        assert code == 2 and err.startswith("sbvae: error: ") and err.count("\n") == 1, (value, err)
    assert not out.exists()


def test_the_estimate_names_the_largest_part():
    default = load_config("default")
    parts = estimate(default)
    assert sum(parts.values()) < 2**30  # the default run fits in a gigabyte by this count
    doubled = estimate(load_config("default", ["train.batch_size=64", "train.micro_batch=0"]))
    single = estimate(load_config("default", ["train.batch_size=32", "train.micro_batch=0"]))
    assert doubled["train.batch_size"] == 2 * single["train.batch_size"]  # linear in the batch
    assert doubled["model"] == single["model"]
    with pytest.raises(ConfigError, match=r"mostly for train\.batch_size"):
        check_fits(default, available=sum(parts.values()) - 1)
