"""``--backend ray``: each run of a study is a Ray task on a cluster.

A task asks for ``train.threads`` CPUs (one when it is 0, automatic) and, for a run on CUDA,
one GPU; Ray starts it as the cluster frees room. Run folders must be on storage every node
sees at the same path (the task works in the driver's folder). A task lost with its node or its
worker process is retried up to :data:`RETRIES` times, and the retry resumes the run from its
last checkpoint (:func:`sbvae.study.runner.ensure_run`), so on CPU the finished run is the one
an uninterrupted run gives. A run that fails by an error of its own is not retried: its outcome
carries the last error line. The driver prints each run's lines as it ends and a live count;
the runs' own output stays in the workers' Ray logs.

Ray is imported only here, and this module only when ``--backend ray`` is asked for.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from sbvae.errors import UserError
from sbvae.study.experiments import RunSpec
from sbvae.study.runner import Job, Outcome, Tally, echo, failed, run_job, with_threads
from sbvae.training.device import select_device
from sbvae.training.run_folder import training_process

RETRIES = 3
"""How often a task lost with its node or worker is started again."""
CONNECT_SECONDS = 15.0
"""How long joining the cluster may take before the address is reported as not answering (a
live cluster answers within seconds)."""
LOCK_WAIT_SECONDS = 120.0
"""How long a task waits for a run folder still held by a process of an earlier driver (Ray
ends the tasks of a driver that was killed, within seconds)."""
INSTALL = "pip install 'sbvae[ray]'"


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def parse_address(address: str) -> tuple[str, int] | None:
    """None for ``auto`` (the cluster this machine is part of), ``(host, port)`` for
    ``HOST:PORT``; a one-line :class:`UserError` for anything else."""
    if address == "auto":
        return None
    host, colon, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c in host for c in "/ @"):
        raise UserError(
            f"--address must be auto or HOST:PORT, the head node's address as `ray start --head` prints it "
            f"(e.g. 10.0.0.5:6379), not {address!r}"
        )
    return host, int(port)


def _reach(host: str, port: int, address: str) -> None:
    """A one-line :class:`UserError` unless something listens at ``host:port``."""
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        raise UserError(
            f"no Ray cluster at --address {address}: {exc.strerror or exc} (start one with `ray start --head`, "
            "see docs/distributed.md)"
        ) from None


PROBE = "import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); ray.shutdown()"
"""Joins the cluster and leaves it, in a process of its own: Ray keeps retrying an address that
answers but is no Ray head for minutes, printing as it goes, so the probe is bounded and quiet."""


def _connect(ray: ModuleType, address: str) -> None:
    """Join the cluster at ``address`` once a probe has joined it within :data:`CONNECT_SECONDS`;
    a one-line :class:`UserError` otherwise."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE, address], capture_output=True, text=True, timeout=CONNECT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"no Ray cluster answered at --address {address} within {CONNECT_SECONDS:.0f} s") from None
    if probe.returncode != 0 and address == "auto":
        raise UserError(
            "--address auto found no Ray cluster this machine is part of: start one (`ray start --head`) "
            "or give --address HOST:PORT"
        )
    if probe.returncode != 0:
        errors = [line for line in probe.stderr.splitlines() if "Error" in line.split(":")[0]]
        reason = errors[-1] if errors else f"the probe ended with code {probe.returncode}"
        raise UserError(f"could not join the Ray cluster at --address {address}: {reason}")
    ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)


class StartedRuns:
    """The names of the runs whose task has started (a Ray actor on the driver's node)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def add(self, name: str) -> None:
        self.names.add(name)

    def get(self) -> set[str]:
        return self.names


def _wait_for_release(run: Path) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while training_process(run) is not None and time.monotonic() < deadline:
        time.sleep(0.5)


def _task(job: Job, folder: str, started: Any) -> Outcome:
    """One run, in a Ray worker: in the driver's folder (on shared storage, relative paths mean
    the same there), once no earlier driver's task holds its folder."""
    if os.path.isdir(folder):
        os.chdir(folder)
    _wait_for_release(job.runs_dir / job.spec.name)
    started.add.remote(job.spec.name)
    return run_job(job, echo)


def _threads(spec: RunSpec) -> int:
    return spec.config.train.threads or 1


class RayBackend:
    """The runs as tasks on the Ray cluster at ``address`` (``auto``: the one this machine is
    part of), joined on entering the context and left on exit."""

    def __init__(self, address: str = "auto") -> None:
        self.address = address
        self.endpoint = parse_address(address)
        self.ray = _import_ray()

    def __enter__(self) -> RayBackend:
        if self.endpoint is not None:
            _reach(*self.endpoint, self.address)
        _connect(self.ray, self.address)
        return self

    def __exit__(self, *exc: object) -> None:
        self.ray.shutdown()

    def _largest(self, resource: str) -> float:
        return max((n["Resources"].get(resource, 0.0) for n in self.ray.nodes() if n["Alive"]), default=0.0)

    def check(self, specs: Sequence[RunSpec]) -> None:
        largest, wanted = self._largest("CPU"), max((_threads(s) for s in specs), default=1)
        if wanted > largest:
            raise UserError(
                f"train.threads={wanted}: no node of the Ray cluster has that many CPUs (the largest has "
                f"{largest:g}); ask for fewer"
            )

    def devices(self, asked: str | None) -> tuple[torch.device, str]:
        driver = select_device("cpu" if asked == "cpu" else None)
        if asked is None:
            return driver, "cuda" if self._largest("GPU") >= 1 else "cpu"
        if asked.startswith("cuda"):
            if self._largest("GPU") < 1:
                raise UserError(f"--device {asked}, but no node of the Ray cluster has a GPU")
            return driver, "cuda"  # each task sees the one GPU Ray gave it
        return driver, asked

    def run(self, jobs: Sequence[Job], log: Callable[[str], None]) -> list[Outcome]:
        ray = self.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        started = ray.remote(num_cpus=0)(StartedRuns).options(scheduling_strategy=here).remote()
        task = ray.remote(_task)
        jobs = [replace(j, spec=replace(j.spec, config=with_threads(j.spec.config, 1))) for j in jobs]
        refs = [
            task.options(
                num_cpus=_threads(job.spec),
                num_gpus=1 if job.device.startswith("cuda") else 0,
                max_retries=RETRIES,
                retry_exceptions=False,
            ).remote(job, os.getcwd(), started)
            for job in jobs
        ]
        tally = Tally(len(jobs), log)
        try:
            while len(tally.ended) < len(refs):
                waiting = [ref for k, ref in enumerate(refs) if k not in tally.ended]
                ready, _ = ray.wait(waiting, num_returns=len(waiting), timeout=1.0)
                for ref in ready:
                    k = refs.index(ref)
                    outcome = self._outcome(ref, jobs[k])
                    for line in outcome.lines:
                        log(line)
                    tally.end(k, outcome)
                ended = {jobs[k].spec.name for k in tally.ended}
                tally.show(running=len(ray.get(started.get.remote()) - ended))
        finally:
            ray.kill(started)
        return tally.outcomes()

    def _outcome(self, ref: Any, job: Job) -> Outcome:
        """A task's outcome; one lost more often than it is retried fails its run."""
        try:
            outcome: Outcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            return failed(job.spec, exc)
        return outcome
