"""``sbvae sweep``: a grid over config keys times seeds, each run an ordinary run folder.

``--grid objective.name=beta_vae,factor_vae model.decoder=sbd,deconv --seeds 5`` plans a run
for every cell (one value of each key) and seed 1 to 5 over the fixed part (``--config``,
``--set``), in ``OUT/runs/`` (e.g. ``OUT/runs/name=beta_vae,decoder=sbd,seed=1``). The runs
are made by the runner ``sbvae reproduce`` uses (:mod:`sbvae.study.runner`) on a backend
(:mod:`sbvae.study.backends`): a finished run is reused, an interrupted one resumed, a shorter
one extended. The outcome is ``OUT/results.json``, ``OUT/results.md`` (per cell: each score's
mean and 95% interval over seeds) and ``OUT/compare/``; ``OUT/sweep.json`` keeps the plan, so
``sbvae sweep --summarise OUT`` summarises the runs finished so far at any time.

A grid key must be part of a run's identity (a key of its length, execution or logging would
make every cell the same run) and not ``train.seed`` (that is ``--seeds``). A folder holds one
study: the same grid keys over the same fixed part; more values or seeds add runs to it.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from sbvae.config import IDENTITY, field_roles, load_config, parse_override, run_identity
from sbvae.errors import ConfigError, UserError
from sbvae.evaluation.evaluate import parse_metric_names
from sbvae.study.backends import LocalBackend
from sbvae.study.experiments import RunSpec
from sbvae.study.invocations import InvocationClock
from sbvae.study.markdown import sweep_markdown
from sbvae.study.records import record
from sbvae.study.results_folder import publish, unfinished
from sbvae.study.runner import Backend, Outcome, check_runs, ensure_runs, is_finished, set_aside
from sbvae.study.summary import cells
from sbvae.training.device import select_device
from sbvae.training.run_folder import RunPaths, atomic_write_bytes, read_json_object

PLAN_FILE = "sweep.json"
STUDY_KEYS = ("sweep", "command", "cells", "runs", "unfinished")
"""What a sweep's ``results.json`` says about it; the rest is bookkeeping (invocations, commit,
versions)."""


def parse_grid(items: Sequence[str], overrides: Sequence[str] = ()) -> dict[str, list[str]]:
    """``["objective.beta=1,4", ...]`` as ``{"objective.beta": ["1", "4"], ...}`` (each value as
    written, read as YAML when set); a one-line :class:`UserError` for anything that is no
    grid over a run's identity."""
    roles, fixed = field_roles(), {parse_override(item)[0] for item in overrides}
    grid: dict[str, list[str]] = {}
    for item in items:
        key, equals, text = (part.strip() for part in item.partition("="))
        if not equals or key.count(".") != 1:
            raise UserError(f"--grid {item}: give section.key=VALUE,VALUE (e.g. objective.beta=1,4)")
        section, name = key.split(".")
        if (section, name) not in roles:
            known = sorted(n for s, n in roles if s == section) or sorted({s for s, _ in roles})
            raise UserError(f"--grid: unknown config key '{key}' (known: {', '.join(known)})")
        values = [value.strip() for value in text.split(",")]
        if not all(values):
            raise UserError(f"--grid {key}= has an empty value: give values separated by commas, e.g. {key}=A,B")
        if key in grid or len(set(values)) < len(values):
            raise UserError(f"--grid {key}: give the key once and each value once, e.g. {key}=A,B")
        if key == "train.seed":
            raise UserError("--grid train.seed: the seeds come from --seeds N (seeds 1 to N)")
        if roles[section, name] != IDENTITY:
            raise UserError(
                f"--grid {key}: a run's {roles[section, name]} setting, not part of what it computes, so every "
                f"cell would be the same run; set it for all runs with --set {key}=VALUE"
            )
        if key in fixed:
            raise UserError(f"{key} is in both --grid and --set: give it in one of them")
        grid[key] = values
    return grid


def _safe(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", value)


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep asks for (kept in ``OUT/sweep.json``): the grid, the seeds, the fixed part,
    the metrics and the evaluation samples per run."""

    grid: dict[str, list[str]]
    seeds: int
    config: str | None
    overrides: list[str]
    metrics: list[str]
    num_train: int

    def specs(self) -> list[RunSpec]:
        """Every run: each cell (its variant: each grid key's value as the config reads it) with
        each seed 1 to ``seeds``; a one-line :class:`UserError` for a cell whose config is
        invalid."""
        short = {k: k.split(".")[-1] for k in self.grid}
        if len(set(short.values())) < len(short):
            short = {k: k for k in self.grid}
        specs = []
        for values in itertools.product(*self.grid.values()):
            cell = dict(zip(self.grid, values))
            tag = ",".join(f"{short[k]}={_safe(v)}" for k, v in cell.items())
            for seed in range(1, self.seeds + 1):
                sets = [*self.overrides, *(f"{k}={v}" for k, v in cell.items()), f"train.seed={seed}"]
                config = load_config(self.config, sets)
                variant = {k: getattr(getattr(config, k.split(".")[0]), k.split(".")[1]) for k in cell}
                name = f"{tag},seed={seed}" if tag else f"seed={seed}"
                specs.append(RunSpec(name, config.model.decoder, seed, variant, config))
        if len({s.name for s in specs}) < len(specs):
            raise UserError("two cells of --grid get the same run folder name: give values that differ in letters")
        return specs

    def fixed_identity(self) -> dict[str, Any]:
        """The identity every run shares: the fixed part without the grid keys and the seed."""
        identity = run_identity(load_config(self.config, list(self.overrides)).to_dict())
        for key in [*self.grid, "train.seed"]:
            section, name = key.split(".")
            identity[section].pop(name, None)
        return identity

    def command(self, out: str | Path) -> str:
        """The ``sbvae sweep`` call that makes this study (execution options left out)."""
        parts = ["sbvae sweep"]
        if self.grid:
            parts.append("--grid " + " ".join(f"{k}={','.join(v)}" for k, v in self.grid.items()))
        parts += [f"--seeds {self.seeds}", f"--out {out}"]
        if self.config is not None:
            parts.append(f"--config {self.config}")
        if self.metrics != ["mig"]:
            parts.append(f"--metrics {','.join(self.metrics)}")
        if self.num_train != 10_000:
            parts.append(f"--num-train {self.num_train}")
        if self.overrides:
            parts.append("--set " + " ".join(self.overrides))
        return " ".join(parts)


def plan_sweep(
    grid: Sequence[str],
    seeds: int = 3,
    config: str | None = None,
    overrides: Sequence[str] = (),
    metrics: str = "mig",
    num_train: int = 10_000,
) -> tuple[SweepPlan, list[RunSpec]]:
    """The plan and its runs, every option checked (one line for a bad one)."""
    if seeds <= 0:
        raise UserError(f"--seeds must be positive, not {seeds}")
    if num_train < 2:
        raise UserError(f"--num-train must be at least 2, not {num_train}")
    names = parse_metric_names(metrics)
    plan = SweepPlan(parse_grid(grid, overrides), seeds, config, list(overrides), names, num_train)
    return plan, plan.specs()


def _read_plan(folder: Path) -> SweepPlan | None:
    raw = read_json_object(folder / PLAN_FILE)
    try:
        return None if raw is None else SweepPlan(**raw)
    except TypeError:
        return None


def _check_same_study(folder: Path, plan: SweepPlan) -> None:
    """A one-line :class:`UserError` when ``folder`` holds a sweep over other grid keys or
    another fixed part: its runs would change identity mid-study."""
    earlier = _read_plan(folder)
    if earlier is None:
        return
    where = f"{folder} holds a sweep"
    remedy = "use another --out, or --fresh to set its runs aside (nothing is deleted)"
    if list(earlier.grid) != list(plan.grid):
        raise UserError(f"{where} over {', '.join(earlier.grid) or 'seeds only'}, not {', '.join(plan.grid)}: {remedy}")
    try:
        before = earlier.fixed_identity()
    except ConfigError:
        return  # its config is gone: each run folder is still checked on its own
    now = plan.fixed_identity()
    changed = [f"{s}.{k}" for s in now for k in now[s] if before.get(s, {}).get(k) != now[s][k]]
    if changed:
        raise UserError(f"{where} with another {', '.join(changed)} for every run: {remedy}")


def sweep(
    grid: Sequence[str],
    out: str | Path,
    seeds: int = 3,
    config: str | None = None,
    overrides: Sequence[str] = (),
    metrics: str = "mig",
    num_train: int = 10_000,
    fresh: bool = False,
    device: str | None = None,
    log: Callable[[str], None] = print,
    backend: Backend | None = None,
) -> int:
    """Run (or finish) a sweep into ``out`` and write its results; returns how many runs failed
    (each reported with its last error line; the others go on). ``backend``: where the runs
    are made (default: in turn, here)."""
    backend = LocalBackend() if backend is None else backend
    plan, specs = plan_sweep(grid, seeds, config, overrides, metrics, num_train)
    folder = Path(out)
    runs_dir = folder / "runs"
    if not fresh:
        _check_same_study(folder, plan)
    driver, runs_device = backend.devices(device)
    if fresh and runs_dir.exists():
        backend.check(specs)
        aside = set_aside(runs_dir)
        if (folder / PLAN_FILE).is_file():
            (folder / PLAN_FILE).rename(aside / PLAN_FILE)
        log(f"--fresh: earlier runs set aside in {aside}")
    check_runs(specs, runs_dir, backend)  # a sweep that would be refused writes nothing
    runs_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / PLAN_FILE, lambda h: h.write(json.dumps(asdict(plan), indent=2).encode()))
    clock = InvocationClock(folder)
    try:
        outcomes = ensure_runs(specs, runs_dir, plan.metrics, runs_device, log, backend, plan.num_train)
    except UserError:
        clock.withdraw()
        raise
    return _publish(folder, plan, outcomes, clock, driver, log, fresh)


def summarise(folder: str | Path, device: str | None = None, log: Callable[[str], None] = print) -> int:
    """Summarise the sweep in ``folder`` from the runs finished so far (training goes on
    undisturbed; the others are listed as not finished); returns how many are not."""
    folder = Path(folder)
    plan = _read_plan(folder)
    if plan is None:
        raise UserError(f"{folder} holds no sweep ({PLAN_FILE} is missing or damaged): give the --out of a sweep")
    driver = select_device(device)
    outcomes = []
    for spec in plan.specs():
        run = folder / "runs" / spec.name
        done = is_finished(RunPaths(run), spec.config, plan.metrics)
        outcomes.append(Outcome(spec, record(spec, run, driver) if done else None))
    return _publish(folder, plan, outcomes, None, driver, log)


def _publish(
    folder: Path,
    plan: SweepPlan,
    outcomes: list[Outcome],
    clock: InvocationClock | None,
    device: torch.device,
    log: Callable[[str], None],
    fresh: bool = False,
) -> int:
    records = [o.record for o in outcomes if o.record is not None]
    table = cells([o.spec for o in outcomes], records)
    failed = unfinished(outcomes)
    command = plan.command(folder)
    results = {
        "sweep": asdict(plan),
        "command": command,
        "cells": [c.to_json() for c in table],
        "runs": [r.to_json() for r in records],
        "unfinished": failed,
    }
    text = lambda invocations: sweep_markdown(command, table, records, invocations, failed)
    publish(folder, results, text, STUDY_KEYS, {}, records, clock, device, log, fresh)
    return len(failed)
