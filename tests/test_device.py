"""Thread settings and torch.compile: the helpers that decide how a step runs on this machine."""

from __future__ import annotations

import os

import pytest
import torch

from sbvae.errors import UserError
from sbvae.training.device import busy_warning, compile_module


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})


def test_busy_warning_only_when_threads_would_share_busy_cores(monkeypatch, two_cores):
    monkeypatch.setattr(os, "getloadavg", lambda: (2.1, 2.0, 2.0))
    assert "train.threads=1" in busy_warning(2)
    assert busy_warning(1) is None  # one thread waits for nobody
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert busy_warning(2) is None  # an idle machine


def test_compile_without_a_working_compiler_is_one_clear_error(monkeypatch):
    def broken(function, *args, **kwargs):  # compiling is lazy: the first call fails
        def call(*inputs):
            raise RuntimeError("InductorError: CppCompileError: C++ compile error\nmore lines")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(UserError, match=r"^train.compile: torch.compile does not work on cpu here \(InductorError"):
        compile_module(torch.nn.Linear(2, 2), torch.device("cpu"))
