"""Freed memory stays in the process: a training step reuses it instead of faulting pages in."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

STEP_FAULTS = """
import resource
import sbvae
from sbvae.bench import TrainCase
from sbvae.config import load_config

case = TrainCase("default", load_config("default", ["train.threads=1"]))
for _ in range(3):
    case.step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(6):
    case.step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 6)
"""


def page_faults_per_step(keep: str, tmp_path) -> float:
    env = dict(os.environ, SBVAE_KEEP_FREED_MEMORY=keep)
    out = subprocess.run(
        [sys.executable, "-c", STEP_FAULTS], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and getrusage's page faults")
def test_a_training_step_reuses_freed_memory_instead_of_faulting_it_in(tmp_path):
    kept, returned = page_faults_per_step("1", tmp_path), page_faults_per_step("0", tmp_path)
    assert returned > 500  # glibc's defaults hand each step's activations back to the kernel
    assert kept < returned / 20


def test_the_setting_can_be_left_to_glibc(monkeypatch):
    from sbvae.allocator import keep_freed_memory

    monkeypatch.setenv("SBVAE_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
