"""Every run of a study made, once: trained, resumed, extended or reused, then evaluated.

A run's identity is its config without its length, its execution settings and what it logs
along the way (the roles marked in :mod:`sbvae.config`, see :func:`sbvae.config.run_identity`).
A finished run with the same identity is reused; asking for more steps extends it; a
*same-config run* (a finished run of another experiment with exactly this run's config and
length, e.g. beta 1 of the beta sweep, which is the colored-sprites experiment's run) is used
where it is rather than trained again.

A study hands its runs to a backend (:class:`Backend`; :mod:`sbvae.study.backends`) as
:class:`Job` s and gets an :class:`Outcome` per run: its record, or the last line of the error
that stopped it. Every run is checked first (:func:`check_runs`), so a study that would be
refused writes nothing.
"""

from __future__ import annotations

import copy
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from sbvae.config import BOOKKEEPING, EXECUTION, Config, build_config, field_roles, run_identity
from sbvae.errors import ConfigError, UserError, first_line
from sbvae.evaluation.evaluate import TEST_IMAGES, evaluate_run
from sbvae.evaluation.fidelity import FIDELITY_SAMPLES
from sbvae.study.experiments import RunSpec
from sbvae.study.records import RunRecord, record
from sbvae.training.loop import resume_config, train
from sbvae.training.run_folder import RunPaths, load_checkpoint, read_scores
from sbvae.viz.outputs import standard_callbacks


def study_votes(num_train: int) -> tuple[int, int]:
    """The training and evaluation votes (points) of a study's FactorVAE (BetaVAE) score: a tenth
    and a twentieth of ``num_train``. disentanglement_lib's 10,000 + 5,000 would add about a
    fifth to an experiment's time at the ``cpu`` preset (docs/reproduction.md)."""
    return max(2, num_train // 10), max(1, num_train // 20)


def is_finished(paths: RunPaths, config: Config, metrics: list[str]) -> bool:
    """Whether the run in ``paths`` was trained for ``config``'s steps and evaluated on
    ``metrics`` at that step. Without its checkpoint (committed results keep none) it cannot be
    evaluated again, so a run evaluated at that step on fewer metrics counts as finished too."""
    scores = read_scores(paths.root)
    if scores is None or scores.get("step") != config.train.steps:
        return False
    return set(metrics) <= set(scores.get("metrics", [])) or not paths.checkpoint.is_file()


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
            and is_finished(paths, spec.config, metrics)
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


def check_run(spec: RunSpec, runs_dir: Path) -> None:
    """A one-line :class:`UserError` when ``runs_dir`` already holds, under this run's name, a
    run with another identity or with more steps than asked for; checked for every run of a
    study before any starts, so a refused study writes nothing."""
    run = runs_dir / spec.name
    paths = RunPaths(run)
    if not paths.config.is_file():
        return
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


def ensure_run(
    spec: RunSpec,
    runs_dir: Path,
    metrics: list[str],
    device: torch.device,
    log: Callable[[str], None],
    num_train: int = 10_000,
    reuse_from: Path | None = None,
) -> Path:
    """Train (or resume, or extend) and evaluate one run unless a finished one with its config
    exists; returns its folder (a same-config run's under ``reuse_from/*/runs/``, when one is
    used)."""
    run = runs_dir / spec.name
    paths = RunPaths(run)
    if not paths.config.is_file() and reuse_from is not None:
        same = _same_config_run(reuse_from, spec, metrics)
        if same is not None:
            log(f"reusing {same} (the same run)")
            return same
    if paths.config.is_file():
        check_run(spec, runs_dir)
        saved = _saved_config(paths)
        assert saved is not None  # check_run refuses a folder without a valid config
        if is_finished(paths, spec.config, metrics):
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
    num_test, votes = max(2, num_train // 2), study_votes(num_train)
    # A quick study (fewer samples than these) measures fidelity and reconstruction on fewer too.
    fidelity, test_images = min(FIDELITY_SAMPLES, num_train), min(TEST_IMAGES, num_train)
    evaluate_run(
        run,
        metrics,
        num_train=num_train,
        num_test=num_test,
        device=device,
        votes=votes,
        fidelity_samples=fidelity,
        num_test_images=test_images,
    )
    return run


@dataclass(frozen=True)
class Job:
    """One run of a study as a backend receives it: everything :func:`ensure_run` needs, with
    the device by name (a worker, perhaps on another machine, resolves it)."""

    spec: RunSpec
    runs_dir: Path
    metrics: list[str]
    device: str
    num_train: int
    reuse_from: Path | None = None


@dataclass(frozen=True)
class Outcome:
    """What came of a :class:`Job`: the run's record, or the last line of the error that stopped
    it; and the lines it logged."""

    spec: RunSpec
    record: RunRecord | None
    error: str | None = None
    lines: tuple[str, ...] = ()


def failed(spec: RunSpec, exc: BaseException) -> Outcome:
    """The outcome of a run stopped by ``exc``: its type and the first line of its message."""
    return Outcome(spec, None, f"{type(exc).__name__}: {first_line(exc)}")


def run_job(job: Job, log: Callable[[str], None]) -> Outcome:
    """Make one run (:func:`ensure_run`) and read its record; an error becomes a failed outcome
    (with its traceback on stderr, unless it is one a user can cause) so the study goes on."""
    lines: list[str] = []

    def keep(line: str) -> None:
        lines.append(line)
        log(line)

    device = torch.device(job.device)
    try:
        run = ensure_run(job.spec, job.runs_dir, job.metrics, device, keep, job.num_train, job.reuse_from)
        outcome = Outcome(job.spec, record(job.spec, run, device))
    except Exception as exc:
        if not isinstance(exc, UserError):
            traceback.print_exc()
        outcome = failed(job.spec, exc)
    return replace(outcome, lines=tuple(lines))


class Backend(Protocol):
    """Where a study's runs are made (:mod:`sbvae.study.backends`). Used as a context manager
    around the study (a cluster is joined on entry and left on exit)."""

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> None: ...

    def check(self, specs: Sequence[RunSpec]) -> None:
        """A one-line :class:`UserError` when it cannot make some run (e.g. no node has the CPUs
        it asks for)."""
        ...

    def devices(self, asked: str | None) -> tuple[torch.device, str]:
        """The device of the driver's own work (summaries, the comparison page) and the name of
        the runs' device, for ``--device`` (None: the default)."""
        ...

    def run(self, jobs: Sequence[Job], log: Callable[[str], None]) -> list[Outcome]:
        """Every job's outcome, in order; a live count of the runs goes to ``log``."""
        ...


def check_runs(specs: Sequence[RunSpec], runs_dir: Path, backend: Backend) -> None:
    """:func:`check_run` for every spec, then whether ``backend`` can make them all: a study
    that would be refused is refused before it writes anything."""
    for spec in specs:
        check_run(spec, runs_dir)
    backend.check(specs)


def ensure_runs(
    specs: Sequence[RunSpec],
    runs_dir: Path,
    metrics: list[str],
    device: str,
    log: Callable[[str], None],
    backend: Backend,
    num_train: int = 10_000,
    reuse_from: Path | None = None,
) -> list[Outcome]:
    """:func:`ensure_run` for every spec on ``backend`` (after :func:`check_runs`); one outcome
    per spec, in order. Specs of the same run (one name, planned for several sweep values, see
    :func:`sbvae.study.experiments.plan`) make it once; each gets its record under its own variant."""
    check_runs(specs, runs_dir, backend)
    first: dict[str, RunSpec] = {}
    for spec in specs:
        first.setdefault(spec.name, spec)
    jobs = [Job(spec, runs_dir, metrics, device, num_train, reuse_from) for spec in first.values()]
    made = {outcome.spec.name: outcome for outcome in backend.run(jobs, log)}
    return [_as_planned(made[spec.name], spec) for spec in specs]


def _as_planned(outcome: Outcome, spec: RunSpec) -> Outcome:
    """``outcome`` for ``spec`` (the same run, perhaps planned under another variant)."""
    if outcome.spec is spec:
        return outcome
    shared = None if outcome.record is None else replace(outcome.record, variant=spec.variant)
    return replace(outcome, spec=spec, record=shared)


def with_threads(config: Config, threads: int) -> Config:
    """``config`` with ``train.threads`` set to ``threads`` where it is 0 (automatic: one per
    core, too many for a run beside others)."""
    if config.train.threads:
        return config
    config = copy.deepcopy(config)
    config.train.threads = threads
    return config


def echo(line: str) -> None:
    """A worker's log: its standard output, at once."""
    print(line, flush=True)


class Tally:
    """A study's runs as they end, and their live count: a line ``runs: F finished, R running,
    W waiting, X failed`` each time it changes; a run that fails is reported at once with its
    last error line."""

    def __init__(self, total: int, log: Callable[[str], None]) -> None:
        self.total, self.log, self.last = total, log, ""
        self.ended: dict[int, Outcome] = {}

    def end(self, k: int, outcome: Outcome) -> None:
        """Run ``k`` (in the study's order) ended with ``outcome``."""
        self.ended[k] = outcome
        if outcome.error is not None:
            self.log(f"failed: {outcome.spec.name}: {outcome.error}")

    def show(self, running: int) -> None:
        finished = sum(o.record is not None for o in self.ended.values())
        failures = len(self.ended) - finished
        waiting = self.total - len(self.ended) - running
        text = f"runs: {finished} finished, {running} running, {waiting} waiting, {failures} failed"
        if text != self.last:
            self.log(text)
            self.last = text

    def outcomes(self) -> list[Outcome]:
        """Every run's outcome, in the study's order (once all have ended)."""
        return [self.ended[k] for k in range(self.total)]


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
