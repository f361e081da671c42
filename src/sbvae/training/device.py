"""Where computation runs: the device and the CPU thread count."""

from __future__ import annotations

import os
from typing import cast

import torch

from sbvae.errors import UserError, first_line


def select_device(name: str | None = None) -> torch.device:
    """CUDA when present, else CPU; ``name`` (``cpu``, ``cuda``, ``cuda:1``) overrides."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}' (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' requested but CUDA is not available here")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"device '{name}' is not supported (use cpu, cuda or cuda:N)")
    return device


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def set_threads(threads: int, processes: int = 1) -> int:
    """Use ``threads`` CPU threads (0: this process's share of the cores it may run on, when
    ``processes`` training processes share the machine)."""
    if threads == 0:
        cores = available_cores()
        threads = max(1, cores // max(1, processes))
    torch.set_num_threads(threads)
    return threads


def busy_warning(threads: int) -> str | None:
    """A warning when other processes already keep the cores busy and ``threads`` > 1: threads
    that share busy cores wait for each other at every operation, so fewer can be faster (see
    docs/performance.md)."""
    cores = available_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if threads <= 1 or load + threads <= cores + 0.5:
        return None
    return (
        f"warning: the machine is busy (load {load:.1f} on {cores} cores) and training uses {threads} "
        "threads, which wait for each other on shared cores; fewer (--set train.threads=1) may be "
        "several times faster"
    )


def compile_module(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``torch.compile(module)``, after checking on a tiny function that compiling works here
    (a C++ compiler on CPU, Triton on CUDA), so a missing toolchain is one clear error."""
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.zeros(4, device=device))
    except Exception as exc:
        raise UserError(
            f"train.compile: torch.compile does not work on {device} here ({first_line(exc)}); set train.compile=false"
        ) from None
    return cast(torch.nn.Module, torch.compile(module))
