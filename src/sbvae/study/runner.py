"""Every run of a study made, once: trained, resumed, extended or reused, then evaluated.

A run's identity is its config without its length, its execution settings and what it logs
along the way (the roles marked in :mod:`sbvae.config`, see :func:`sbvae.config.run_identity`).
A finished run with the same identity is reused; asking for more steps extends it; a
*same-config run* (a finished run of another experiment with exactly this run's config and
length, e.g. beta 1 of the beta sweep, which is the colored-sprites experiment's run) is used
where it is rather than trained again.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import yaml

from sbvae.config import BOOKKEEPING, EXECUTION, Config, build_config, field_roles, run_identity
from sbvae.errors import ConfigError, UserError
from sbvae.evaluation.evaluate import evaluate_run
from sbvae.study.experiments import RunSpec
from sbvae.training.device import available_cores
from sbvae.training.loop import resume_config, train
from sbvae.training.run_folder import RunPaths, load_checkpoint, read_scores
from sbvae.viz.outputs import standard_callbacks


def _finished(paths: RunPaths, config: Config, metrics: list[str]) -> bool:
    scores = read_scores(paths.root)
    return (
        scores is not None
        and scores.get("step") == config.train.steps
        and set(metrics) <= set(scores.get("metrics", []))
    )


def _saved_config(paths: RunPaths) -> dict[str, Any] | None:
    """A run folder's config with the defaults of keys added since it was written (None if
    it is not a valid config)."""
    try:
        return build_config(yaml.safe_load(paths.config.read_text())).to_dict()
    except (ConfigError, yaml.YAMLError, AttributeError, TypeError):
        return None


def _same_config_run(out: Path, spec: RunSpec, metrics: list[str]) -> Path | None:
    """A finished run elsewhere under ``out`` (another experiment) with exactly this run's
    config and length, or None."""
    wanted = run_identity(spec.config.to_dict())
    for config in sorted(out.glob("*/runs/*/config.yaml")):
        paths = RunPaths(config.parent)
        saved = _saved_config(paths)
        if (
            saved is not None
            and run_identity(saved) == wanted
            and saved["train"]["steps"] == spec.config.train.steps
            and _finished(paths, spec.config, metrics)
        ):
            return config.parent
    return None


def _with_settings_asked_now(config: Config, asked: Config) -> Config:
    """``config`` with the execution and bookkeeping settings of ``asked``: a run resumed or
    extended runs and logs as asked now."""
    for (section, key), role in field_roles().items():
        if role in (EXECUTION, BOOKKEEPING):
            setattr(getattr(config, section), key, getattr(getattr(asked, section), key))
    return config


def ensure_run(
    spec: RunSpec,
    runs_dir: Path,
    metrics: list[str],
    device: torch.device,
    log: Callable[[str], None],
    num_train: int = 10_000,
) -> Path:
    """Train (or resume, or extend) and evaluate one run unless a finished one with its config
    exists; returns its folder (a same-config run's, when one is used)."""
    run = runs_dir / spec.name
    paths = RunPaths(run)
    if not paths.config.is_file():
        same = _same_config_run(runs_dir.parent.parent, spec, metrics)
        if same is not None:
            log(f"reusing {same} (the same run)")
            return same
    if paths.config.is_file():
        saved = _saved_config(paths)
        if saved is None or run_identity(saved) != run_identity(spec.config.to_dict()):
            raise UserError(
                f"{run} holds a run with a different config; use --fresh to set the old "
                f"runs aside (nothing is deleted) or another --out"
            )
        if saved["train"]["steps"] > spec.config.train.steps:
            raise UserError(
                f"{run} was trained for {saved['train']['steps']} steps, more than the "
                f"{spec.config.train.steps} asked for; ask for --steps {saved['train']['steps']}, "
                f"or use --fresh to set the old runs aside (nothing is deleted)"
            )
        if _finished(paths, spec.config, metrics):
            log(f"reusing {run}")
            return run
        if paths.checkpoint.is_file():
            step = int(load_checkpoint(paths.checkpoint)["step"])
            if step < spec.config.train.steps:
                log(
                    f"{'extending' if saved['train']['steps'] < spec.config.train.steps else 'resuming'} "
                    f"{run} from step {step} to {spec.config.train.steps}"
                )
                config, state = resume_config(run, spec.config.train.steps)
                train(
                    _with_settings_asked_now(config, spec.config),
                    run,
                    device,
                    resume_state=state,
                    progress=False,
                    callbacks=standard_callbacks(),
                )
        else:
            set_aside(run)
    if not paths.checkpoint.is_file():
        log(f"training {run}")
        train(spec.config, run, device, progress=False, callbacks=standard_callbacks())
    log(f"evaluating {run}")
    evaluate_run(run, metrics, num_train=num_train, num_test=max(2, num_train // 2), device=device)
    return run


def _ensure_job(spec: RunSpec, runs_dir: Path, metrics: list[str], device: str, num_train: int) -> Path:
    return ensure_run(spec, runs_dir, metrics, torch.device(device), lambda line: print(line, flush=True), num_train)


def ensure_runs(
    specs: Sequence[RunSpec],
    runs_dir: Path,
    metrics: list[str],
    device: torch.device,
    log: Callable[[str], None],
    num_train: int = 10_000,
    jobs: int = 1,
) -> list[Path]:
    """:func:`ensure_run` for every spec, ``jobs`` of them at once in separate processes, each
    with its share of the cores unless ``train.threads`` says otherwise (small models use
    several cores poorly, so runs side by side finish sooner than in turn)."""
    if jobs == 1:
        return [ensure_run(spec, runs_dir, metrics, device, log, num_train) for spec in specs]
    specs = [replace(s, config=_with_threads(s.config, jobs)) for s in specs]
    with ProcessPoolExecutor(
        jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with_parent, initargs=(os.getpid(),)
    ) as pool:
        futures = [pool.submit(_ensure_job, s, runs_dir, metrics, str(device), num_train) for s in specs]
        return [f.result() for f in futures]


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Make a pool worker end when the ``sbvae reproduce`` that started it is gone: a killed
    parent otherwise leaves its workers training on, into folders nobody summarises. The run
    resumes from its last checkpoint next time."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _with_threads(config: Config, jobs: int) -> Config:
    if config.train.threads:
        return config
    config = copy.deepcopy(config)
    config.train.threads = max(1, available_cores() // jobs)
    return config


def set_aside(folder: Path) -> Path:
    """Rename ``folder`` out of the way (``NAME.old-TIME``, ``NAME.old-TIME-2`` when one was set
    aside in the same second); nothing is ever deleted."""
    stamp = f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = folder.with_name(stamp), 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{stamp}-{n}")
    folder.rename(target)
    return target
