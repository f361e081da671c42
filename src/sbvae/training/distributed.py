"""Training on several processes (GPUs, machines) with PyTorch's DistributedDataParallel.

Launched by ``torchrun``, which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
``LOCAL_WORLD_SIZE``; without them everything here is a no-op (a world of one).

How the data is split: every rank draws the *global* batch's factor values and noise from
the same seeded generators (drawing values is cheap), then renders and trains on its own
slice only. The union of the slices is exactly the batch one process would draw, and DDP
averages the equal-sized slices' gradients, so N processes follow the single-process run up to
float rounding: the same config gives the same model whether run on 1 or N processes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from sbvae.errors import ConfigError, UserError, first_line

TIMEOUT = timedelta(minutes=10)
"""How long a rank waits for the others (rendezvous, a collective) before giving up."""

_joined = False
"""Whether this process has joined a process group (then it ends through :func:`end_rank`)."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, evaluates and writes files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def shard(self, global_batch: int) -> slice:
        """This rank's rows of the global batch."""
        per_rank = global_batch // self.size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)


def world_from_env() -> World:
    """The world torchrun describes in the environment (a world of one without torchrun)."""

    def number(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            raise UserError(f"environment variable {name} must be an integer, not {os.environ[name]!r}") from None

    size = number("WORLD_SIZE", 1)
    return World(number("RANK", 0), size, number("LOCAL_RANK", 0), number("LOCAL_WORLD_SIZE", size))


def check_batch(world: World, global_batch: int, micro_batch: int) -> None:
    """The global batch must split evenly over the ranks (and each slice into micro-batches)."""
    if global_batch % world.size:
        raise ConfigError(
            f"train.batch_size {global_batch} does not split over {world.size} processes; "
            f"use a multiple of {world.size}"
        )
    if 0 < micro_batch < global_batch // world.size and (global_batch // world.size) % micro_batch:
        raise ConfigError(
            f"train.micro_batch {micro_batch} does not divide the per-process batch {global_batch // world.size}"
        )


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (gloo on CPU, nccl on CUDA); returns this rank's device."""
    if not world.active:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    global _joined
    _joined = True
    try:
        dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)
    except (RuntimeError, ValueError, OSError) as exc:
        raise UserError(
            f"rank {world.rank}: cannot join the other {world.size - 1} processes ({backend}): {first_line(exc)}"
        ) from None
    return device


def stop(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def end_rank(code: int) -> None:
    """In a process that joined a process group, flush the output and exit with ``code`` at once,
    skipping the interpreter's shutdown; elsewhere do nothing.

    Why: DDP keeps the gloo process group alive past ``destroy_process_group`` (torch 2.13), and
    when one of its worker threads frees a finished collective's tensors while Python shuts down,
    it needs the GIL and the process aborts (SIGABRT, "terminate called without an active
    exception"; a rank that finishes early hit it in about one run in ten). By the time this is
    called every file is written and closed, so nothing is lost by skipping the shutdown."""
    if _joined:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def share(world: World, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (e.g. an error message, so all ranks stop alike)."""
    if not world.active:
        return value
    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(world: World, tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks (for logging global batch statistics)."""
    if not world.active:
        return tensor
    total = tensor.clone()
    dist.all_reduce(total)
    return total / world.size
