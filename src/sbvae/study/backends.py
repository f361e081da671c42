"""Where a study's runs are made: ``--backend local`` (this machine: in turn, or ``--jobs N``
worker processes side by side) or ``--backend ray`` (a Ray cluster, :mod:`sbvae.study.ray_backend`,
imported only when asked for).

Every backend returns one :class:`~sbvae.study.runner.Outcome` per run, in order: a run that
fails is reported with its last error line and the others go on. While it works it shows a live
count of the runs (:class:`~sbvae.study.runner.Tally`).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import replace

import torch

from sbvae.errors import UserError
from sbvae.study.experiments import RunSpec
from sbvae.study.runner import Backend, Job, Outcome, Tally, echo, failed, run_job, with_threads
from sbvae.training.device import available_cores, select_device

BACKENDS = ("local", "ray")


def make_backend(name: str = "local", jobs: int | None = None, address: str | None = None) -> Backend:
    """The backend ``--backend NAME`` asks for, its options checked (one line for a bad one)."""
    if name not in BACKENDS:
        raise UserError(f"--backend must be local or ray, not {name}")
    if name == "local":
        if address is not None:
            raise UserError("--address is for --backend ray; the local backend runs on this machine")
        return LocalBackend(1 if jobs is None else jobs)
    if jobs is not None:
        raise UserError("--jobs is for --backend local; on Ray each run asks for train.threads CPUs of the cluster")
    from sbvae.study.ray_backend import RayBackend

    return RayBackend("auto" if address is None else address)


class LocalBackend:
    """This machine: the runs in turn in this process (``jobs`` 1), or ``jobs`` of them at once
    in worker processes, each with its share of the cores unless ``train.threads`` says
    otherwise (small models use several cores poorly, so runs side by side finish sooner than
    in turn)."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs <= 0:
            raise UserError(f"--jobs must be positive, not {jobs}")
        self.jobs = jobs

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def check(self, specs: Sequence[RunSpec]) -> None:
        return None

    def devices(self, asked: str | None) -> tuple[torch.device, str]:
        device = select_device(asked)
        return device, str(device)

    def run(self, jobs: Sequence[Job], log: Callable[[str], None]) -> list[Outcome]:
        tally = Tally(len(jobs), log)
        if self.jobs == 1:
            for k, job in enumerate(jobs):
                tally.show(running=1)
                tally.end(k, run_job(job, log))
            tally.show(running=0)
            return tally.outcomes()
        share = max(1, available_cores() // self.jobs)
        jobs = [replace(j, spec=replace(j.spec, config=with_threads(j.spec.config, share))) for j in jobs]
        with ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            try:
                futures = [pool.submit(run_job, job, echo) for job in jobs]
                while len(tally.ended) < len(futures):
                    wait([f for f in futures if not f.done()], timeout=1.0, return_when=FIRST_COMPLETED)
                    for k, future in enumerate(futures):
                        if future.done() and k not in tally.ended:
                            tally.end(k, _outcome(jobs[k], future))
                    tally.show(running=min(self.jobs, sum(f.running() for f in futures)))
            except BaseException:
                _stop_workers(pool)
                raise
        return tally.outcomes()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers now (an interrupted study: Ctrl-C, SIGTERM) instead of waiting for
    the runs they are training; each run resumes from its last checkpoint next time. The pool
    has no public way to do it before Python 3.14 (``terminate_workers``)."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()


def _outcome(job: Job, future: Future[Outcome]) -> Outcome:
    """A finished future's outcome; a worker that died (killed, out of memory) fails its run."""
    try:
        return future.result()
    except Exception as exc:
        return failed(job.spec, exc)


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Make a pool worker end when the study that started it is gone: a killed parent
    otherwise leaves its workers training on, into folders nobody summarises. The run resumes
    from its last checkpoint next time."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
