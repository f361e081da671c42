"""``sbvae reproduce EXPERIMENT``: SBD against DeConv, everything else equal, over seeds.

An experiment (``configs/experiments/NAME.yaml``) names a base preset, overrides, a number of
seeds, an optional sweep (e.g. over beta), the metrics to compute and the claims to test. Every
run is an ordinary run folder under ``OUT/NAME/runs/``; a finished run with the same config is
reused, an interrupted one resumed, so re-running the command finishes a study. The outcome is
``results.json`` (every number), ``results.md`` (the table and the verdicts) and a comparison
page, all in ``OUT/NAME/``.

A run's identity is its config without its length, its execution settings
(:data:`EXECUTION_KEYS`) and what it logs along the way (:data:`BOOKKEEPING_KEYS`): asking for
more steps extends the finished runs (constant learning rate, a data stream drawn from the seed
and the step, so an extended run is the longer run), and a run an earlier experiment already
made with the same config (e.g. beta 1 of the beta sweep, which is the colored-sprites
experiment's run) is used where it is rather than trained again.

Two comparisons are reported. *Equal steps*: both decoders trained for the same steps.
*Equal time*: each SBD run as it was when its DeConv twin (same seed) finished, read from the
SBD's logged validation and MIG rows at that elapsed training time (validation every
``train.eval_every`` steps, MIG every ``train.mig_every``: the nearest earlier logged point).
Scores that need the model itself (:data:`CHECKPOINT_METRICS`, e.g. the error on a held-out
region) come from an *equal-time snapshot*: the SBD trained again, same config and seed, only
up to the step it had logged at that time (``OUT/NAME/equal-time/``). Training is a function of
the config, the seed and the step, so the snapshot is the run as it stood then; results.md
shows how closely its logged validation error matches the full run's at the same step.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml

from sbvae.config import Config, build_config, load_config
from sbvae.errors import ConfigError, UserError
from sbvae.evaluation.evaluate import evaluate_run, library_versions
from sbvae.evaluation.heldout import heldout_statistics
from sbvae.evaluation.live_units import unit_statistics
from sbvae.evaluation.position import position_statistics
from sbvae.study.invocations import InvocationClock, earlier_invocations, wall_time_text
from sbvae.study.stats import compare, verdict
from sbvae.training.device import available_cores, select_device
from sbvae.training.loop import resume_config, train
from sbvae.training.run_folder import (
    RunPaths,
    atomic_write_bytes,
    load_checkpoint,
    read_metrics,
    read_scores,
)
from sbvae.viz.outputs import standard_callbacks
from sbvae.viz.report import compare_runs

DECODERS = ("sbd", "deconv")
# Shown per run beside the claimed metrics, to read them against (in-distribution error and geometry).
CONTEXT_METRICS = ("test_sse", "discrete_mig", "position_r2", "last_layer_live")
# Claimed scores that need a checkpoint: at equal time they come from equal-time snapshots.
CHECKPOINT_METRICS = ("heldout_sse", "heldout_gap", "heldout_position_r2")
# What an equal-time snapshot is evaluated on besides reconstruction (cheap; also a check).
SNAPSHOT_METRICS = ["mig"]


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    metric: str  # a score key of metrics.json, or test_sse / heldout_sse / heldout_gap
    higher_is_better: bool


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    config: str
    overrides: list[str]
    seeds: int
    sweep: dict[str, list[Any]]
    metrics: list[str]
    claims: list[Claim]


@dataclass(frozen=True)
class RunSpec:
    """One training run of a study."""

    name: str
    decoder: str
    seed: int
    variant: dict[str, Any] = field(default_factory=dict)
    config: Config | None = None

    @property
    def variant_label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.variant.items()) or "all"


def experiment_names() -> list[str]:
    folder = resources.files("sbvae") / "configs" / "experiments"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_experiment(name: str) -> Experiment:
    """A packaged experiment by name; one-line :class:`UserError` for an unknown one."""
    if name not in experiment_names():
        raise UserError(f"unknown experiment '{name}' (known: {', '.join(experiment_names())}, all)")
    raw = yaml.safe_load((resources.files("sbvae") / "configs" / "experiments" / f"{name}.yaml").read_text())
    return Experiment(name, " ".join(raw["description"].split()), raw["config"], list(raw["set"]),
                      int(raw["seeds"]), dict(raw["sweep"]), list(raw["metrics"]),
                      [Claim(**c) for c in raw["claims"]])


def plan(experiment: Experiment, seeds: int | None = None, steps: int | None = None,
         scale: str = "cpu", overrides: Sequence[str] = ()) -> list[RunSpec]:
    """Every run of the study: decoders x sweep values x seeds 1..N."""
    seeds = experiment.seeds if seeds is None else seeds
    if seeds <= 0:
        raise UserError(f"--seeds must be positive, not {seeds}")
    if scale not in ("cpu", "paper"):
        raise UserError(f"--scale must be cpu or paper, not {scale}")
    base = experiment.config if scale == "cpu" else "paper"
    variants: list[dict[str, Any]] = [{}]
    for key, values in experiment.sweep.items():
        variants = [{**v, key: value} for v in variants for value in values]
    specs = []
    for variant in variants:
        for decoder in DECODERS:
            for seed in range(1, seeds + 1):
                sets = [*experiment.overrides, *(f"{k}={v}" for k, v in variant.items()),
                        f"model.decoder={decoder}", f"train.seed={seed}", *overrides]
                if steps is not None:
                    sets.append(f"train.steps={steps}")
                tag = "".join(f"-{k.split('.')[-1]}{v}" for k, v in variant.items())
                specs.append(RunSpec(f"{decoder}{tag}-seed{seed}", decoder, seed, variant,
                                     load_config(base, sets)))
    return specs


def _finished(paths: RunPaths, config: Config, metrics: list[str]) -> bool:
    scores = read_scores(paths.root)
    return (scores is not None and scores.get("step") == config.train.steps
            and set(metrics) <= set(scores.get("metrics", [])))


# Settings that change how fast a run trains, not what it learns (the same update up to float
# rounding): a run is reused or extended whatever they were.
EXECUTION_KEYS = ("threads", "channels_last", "compile", "micro_batch")
# Settings that only decide what is logged or saved along the way: validation and MIG use their
# own seeded draws and the training stream and noise have their own generators, so these change
# no weight. A run is reused or extended whatever they were, with the values asked for now.
BOOKKEEPING_KEYS = ("log_every", "eval_every", "checkpoint_every", "mig_every", "mig_samples")
NOT_IDENTITY_KEYS = (*EXECUTION_KEYS, *BOOKKEEPING_KEYS)


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same: the config without its length, execution and bookkeeping
    settings."""
    return {**config, "train": {k: v for k, v in config["train"].items() if k not in (*NOT_IDENTITY_KEYS, "steps")}}


def _twin_run(out: Path, spec: RunSpec, metrics: list[str]) -> Path | None:
    """A finished run elsewhere under ``out`` (another experiment) with exactly this run's
    config and length, or None."""
    wanted = spec.config.to_dict()
    for config in sorted(out.glob("*/runs/*/config.yaml")):
        saved = _saved_config(RunPaths(config.parent))
        if (saved is not None and _identity(saved) == _identity(wanted)
                and saved["train"]["steps"] == spec.config.train.steps
                and _finished(RunPaths(config.parent), spec.config, metrics)):
            return config.parent
    return None


def _saved_config(paths: RunPaths) -> dict[str, Any] | None:
    """A run folder's config with the defaults of keys added since it was written (None if
    it is not a valid config)."""
    try:
        return build_config(yaml.safe_load(paths.config.read_text())).to_dict()
    except (ConfigError, yaml.YAMLError, AttributeError, TypeError):
        return None


def ensure_run(spec: RunSpec, runs_dir: Path, metrics: list[str], device: torch.device,
               log: Callable[[str], None], num_train: int = 10_000) -> Path:
    """Train (or resume) and evaluate one run unless a finished one with its config exists."""
    run = runs_dir / spec.name
    paths = RunPaths(run)
    if not paths.config.is_file():
        twin = _twin_run(runs_dir.parent.parent, spec, metrics)
        if twin is not None:
            log(f"reusing {twin} (the same run)")
            return twin
    if paths.config.is_file():
        saved = _saved_config(paths)
        if saved is None or _identity(saved) != _identity(spec.config.to_dict()):
            raise UserError(f"{run} holds a run with a different config; use --fresh to set the old "
                            f"runs aside (nothing is deleted) or another --out")
        if saved["train"]["steps"] > spec.config.train.steps:
            raise UserError(f"{run} was trained for {saved['train']['steps']} steps, more than the "
                            f"{spec.config.train.steps} asked for; ask for --steps {saved['train']['steps']}, "
                            f"or use --fresh to set the old runs aside (nothing is deleted)")
        if _finished(paths, spec.config, metrics):
            log(f"reusing {run}")
            return run
        if paths.checkpoint.is_file():
            step = int(load_checkpoint(paths.checkpoint)["step"])
            if step < spec.config.train.steps:
                log(f"{'extending' if saved['train']['steps'] < spec.config.train.steps else 'resuming'} "
                    f"{run} from step {step} to {spec.config.train.steps}")
                config, state = resume_config(run, spec.config.train.steps)
                for key in NOT_IDENTITY_KEYS:
                    setattr(config.train, key, getattr(spec.config.train, key))
                train(config, run, device, resume_state=state, progress=False,
                      callbacks=standard_callbacks())
        else:
            _set_aside(run)
    if not paths.checkpoint.is_file():
        log(f"training {run}")
        train(spec.config, run, device, progress=False, callbacks=standard_callbacks())
    log(f"evaluating {run}")
    evaluate_run(run, metrics, num_train=num_train, num_test=max(2, num_train // 2), device=device)
    return run


def _ensure_job(spec: RunSpec, runs_dir: Path, metrics: list[str], device: str, num_train: int) -> Path:
    return ensure_run(spec, runs_dir, metrics, torch.device(device), lambda line: print(line, flush=True), num_train)


def ensure_runs(specs: Sequence[RunSpec], runs_dir: Path, metrics: list[str], device: torch.device,
                log: Callable[[str], None], num_train: int = 10_000, jobs: int = 1) -> list[Path]:
    """:func:`ensure_run` for every spec, ``jobs`` of them at once in separate processes, each
    with its share of the cores unless ``train.threads`` says otherwise. Small models use several
    cores poorly: two one-thread runs side by side finished 1.4x sooner than one after the other
    on two threads (2-core CPU, default preset)."""
    if jobs == 1:
        return [ensure_run(spec, runs_dir, metrics, device, log, num_train) for spec in specs]
    specs = [replace(s, config=_with_threads(s.config, jobs)) for s in specs]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
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


def _set_aside(folder: Path) -> Path:
    """Rename ``folder`` out of the way (``NAME.old-TIME``, ``NAME.old-TIME-2`` when one was set
    aside in the same second); nothing is ever deleted."""
    stamp = f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = folder.with_name(stamp), 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{stamp}-{n}")
    folder.rename(target)
    return target


def _equal_time(sbd_rows: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """The SBD's last logged training step, validation error and MIG at or before ``budget``
    seconds of training. Training time is read only where the loss is logged, so a validation or
    MIG row counts from the first loss row at or after its step (an upper bound on its time)."""
    elapsed = sorted((r["step"], r["elapsed"]) for r in sbd_rows if r.get("split") == "train" and "elapsed" in r)
    steps = [step for step, seconds in elapsed if seconds <= budget]

    def seconds_at(step: int) -> float:
        return next((seconds for logged, seconds in elapsed if logged >= step), float("inf"))

    def last(split: str, key: str) -> tuple[int | None, float | None]:
        points = [(r["step"], r[key]) for r in sbd_rows if r.get("split") == split and key in r
                  and seconds_at(r["step"]) <= budget]
        return points[-1] if points else (None, None)

    sse_step, sse = last("val", "sse")
    mig_step, mig = last("mig", "discrete_mig")
    return {"seconds": budget, "step": max(steps, default=None), "val_sse": sse, "val_sse_step": sse_step,
            "discrete_mig": mig, "mig_step": mig_step}


def snapshot_specs(specs: Sequence[RunSpec], records: list[dict[str, Any]]) -> list[tuple[str, RunSpec]]:
    """Each SBD run again (with the name of the run it repeats), trained only to the step it
    had logged when its DeConv twin (same seed and variant) finished training."""
    by_name = {r["name"]: r for r in records}
    twins = {(json.dumps(r["variant"], sort_keys=True), r["seed"]): r for r in records if r["decoder"] == "deconv"}
    out = []
    for spec in specs:
        twin = twins.get((json.dumps(spec.variant, sort_keys=True), spec.seed))
        if spec.decoder != "sbd" or twin is None:
            continue
        step = _equal_time(by_name[spec.name]["rows"], twin["training_seconds"])["step"]
        if step is None or step >= spec.config.train.steps:
            continue
        config = copy.deepcopy(spec.config)
        config.train.steps = step
        out.append((spec.name, replace(spec, name=f"{spec.name}-step{step}", config=config)))
    return out


def _snapshot_check(snapshot: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """The validation error both logged last at the same step, the snapshot's and the full run's."""
    def val(rows: list[dict[str, Any]], step: int | None) -> float | None:
        return next((r["sse"] for r in rows if r.get("split") == "val" and r["step"] == step), None)

    full_steps = {r["step"] for r in full["rows"] if r.get("split") == "val"}
    steps = [r["step"] for r in snapshot["rows"] if r.get("split") == "val" and r["step"] in full_steps]
    step = steps[-1] if steps else None
    return {"name": snapshot["name"], "of": full["name"], "step": snapshot["config"]["train"]["steps"],
            "val_step": step, "val_sse": val(snapshot["rows"], step), "full_run_val_sse": val(full["rows"], step),
            "values": snapshot["values"]}


def late_drop(rows: list[dict[str, Any]], steps: int) -> float | None:
    """How much the validation error still fell over the last quarter of training (a fraction
    of its value at three quarters): near 0 for a run that has flattened."""
    val = [(r["step"], r["sse"]) for r in rows if r.get("split") == "val" and "sse" in r]
    earlier = [v for step, v in val if step <= 0.75 * steps]
    if not earlier or val[-1][0] <= 0.75 * steps:
        return None
    return (earlier[-1] - val[-1][1]) / earlier[-1]


def record(spec: RunSpec, run: Path, device: torch.device) -> dict[str, Any]:
    """Everything results.json keeps about one run."""
    scores = read_scores(run) or {}
    rows = read_metrics(RunPaths(run).metrics)
    elapsed = max((r.get("elapsed", 0.0) for r in rows if r.get("split") == "train"), default=0.0)
    values = {k: v for k, v in scores.get("scores", {}).items() if isinstance(v, (int, float))}
    values["test_sse"] = scores.get("reconstruction", {}).get("sse")
    heldout = heldout_statistics(run, device)
    if heldout is not None:
        values["heldout_sse"] = heldout["sse"]
        values["heldout_gap"] = heldout["sse"] - values["test_sse"]
        values["heldout_position_r2"] = heldout["heldout_position_r2"]
    values["position_r2"] = (heldout or position_statistics(run, device))["position_r2"]
    units = unit_statistics(run, device)
    if units is not None:
        values["last_layer_live"] = units["last_hidden_live"]
    return {"name": spec.name, "decoder": spec.decoder, "seed": spec.seed, "variant": spec.variant,
            "run": str(run), "training_seconds": elapsed, "late_val_drop": late_drop(rows, spec.config.train.steps), "values": values, "heldout": heldout,
            "config": spec.config.to_dict(), "rows": rows}


def summarize(experiment: Experiment, records: list[dict[str, Any]],
              snapshots: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Per variant and claim: both decoders' values, the difference SBD - DeConv, the verdict;
    at equal steps, and at equal time where the metric was logged during training or an
    equal-time snapshot (see :func:`_snapshot_check`) holds it."""
    out = []
    variants = list(dict.fromkeys(json.dumps(r["variant"], sort_keys=True) for r in records))
    for variant in variants:
        group = [r for r in records if json.dumps(r["variant"], sort_keys=True) == variant]
        by = {d: sorted((r for r in group if r["decoder"] == d), key=lambda r: r["seed"]) for d in DECODERS}
        for claim in experiment.claims:
            a = [r["values"].get(claim.metric) for r in by["sbd"]]
            b = [r["values"].get(claim.metric) for r in by["deconv"]]
            a, b = [v for v in a if v is not None], [v for v in b if v is not None]
            result = compare(a, b)
            entry = {"variant": json.loads(variant), "claim": claim.number, "text": claim.text,
                     "metric": claim.metric, "higher_is_better": claim.higher_is_better,
                     "sbd": a, "deconv": b, "equal_steps": result.to_dict(),
                     "verdict": verdict(result, claim.higher_is_better)}
            timed = _equal_time_pairs(claim.metric, by, snapshots)
            if timed is not None:
                label, sbd_at, deconv_at = timed
                timed_result = compare(sbd_at, deconv_at)
                entry["equal_time"] = {"metric": label, "sbd": sbd_at, "deconv": deconv_at,
                                       **timed_result.to_dict(),
                                       "verdict": verdict(timed_result, claim.higher_is_better)}
            out.append(entry)
    return out


def _equal_time_pairs(metric: str, by: dict[str, list[dict[str, Any]]], snapshots: Sequence[dict[str, Any]]
                      ) -> tuple[str, list[float], list[float]] | None:
    """The SBD's values at its DeConv twin's training time and the twins' final values, per
    seed; None for a metric known neither from the logs nor from a snapshot."""
    logged = {"discrete_mig": "discrete_mig", "test_sse": "val_sse"}
    if metric not in logged and metric not in CHECKPOINT_METRICS:
        return None
    twins = {r["seed"]: r for r in by["deconv"]}
    at_time = {s["of"]: s["values"] for s in snapshots}
    sbd_at, deconv_at = [], []
    for r in by["sbd"]:
        twin = twins.get(r["seed"])
        if twin is None:
            continue
        if metric in logged:
            mine = _equal_time(r["rows"], twin["training_seconds"])[logged[metric]]
            theirs = _equal_time(twin["rows"], float("inf"))[logged[metric]]
        else:  # a snapshot, or the final model if the SBD had finished by then
            finished = r["training_seconds"] <= twin["training_seconds"]
            mine = (r["values"] if finished else at_time.get(r["name"], {})).get(metric)
            theirs = twin["values"].get(metric)
        if mine is not None and theirs is not None:
            sbd_at.append(mine)
            deconv_at.append(theirs)
    return (logged.get(metric, metric), sbd_at, deconv_at)


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).parent)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.4g}"


def regenerate_command(name: str, out: str | Path, seeds: int | None, steps: int | None, scale: str,
                       overrides: Sequence[str]) -> str:
    """The ``sbvae reproduce`` call that rebuilds a folder with the same settings (execution
    options such as ``--jobs`` left out: they change no number)."""
    parts = ["sbvae reproduce", name]
    if Path(out) != Path("results"):
        parts.append(f"--out {out}")
    if scale != "cpu":
        parts.append(f"--scale {scale}")
    if seeds is not None:
        parts.append(f"--seeds {seeds}")
    if steps is not None:
        parts.append(f"--steps {steps}")
    if overrides:
        parts.append("--set " + " ".join(overrides))
    return " ".join(parts)


def results_markdown(experiment: Experiment, summary: list[dict[str, Any]], records: list[dict[str, Any]],
                     invocations: list[dict[str, Any]], command: str,
                     snapshots: Sequence[dict[str, Any]] = ()) -> str:
    """The human-readable outcome: what was run, the table per claim, the verdicts."""
    lines = [f"# {experiment.name}", "", experiment.description, "",
             f"Command: `{command}` (the experiment's YAML plus these options; the runs' "
             f"config.yaml files hold every setting).", "",
             f"Runs: {len(records)} ({', '.join(DECODERS)} x seeds"
             f"{' x ' + ', '.join(experiment.sweep) if experiment.sweep else ''}); "
             f"training time {sum(r['training_seconds'] for r in records) / 60:.0f} min in all (as logged "
             f"by each run); {wall_time_text(invocations)}. Metrics: "
             f"{', '.join(experiment.metrics)} (posterior means; see metrics.json in each run).", "",
             "Verdicts: *reproduced* when the 95% Welch interval of SBD - DeConv excludes 0 on the "
             "claimed side, *not reproduced* when it excludes 0 on the other side, otherwise "
             "*inconclusive*.", "",
             "| claim | variant | metric | SBD mean ± sd | DeConv mean ± sd | SBD - DeConv [95% CI] | p | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in summary:
        s = e["equal_steps"]
        variant = ", ".join(f"{k}={v}" for k, v in e["variant"].items()) or "-"
        lines.append(f"| {e['claim']}: {e['text']} | {variant} | {e['metric']} (equal steps) | "
                     f"{_fmt(s['mean_a'])} ± {_fmt(s['std_a'])} | {_fmt(s['mean_b'])} ± {_fmt(s['std_b'])} | "
                     f"{_fmt(s['difference'])} [{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] | "
                     f"{_fmt(s['p_value'])} | {e['verdict']} |")
        if "equal_time" in e:
            t = e["equal_time"]
            if not t["sbd"]:
                lines.append(f"| {e['claim']} at equal time | {variant} | {t['metric']} | no SBD value was logged "
                             f"before its DeConv twin finished | | | | n/a |")
                continue
            lines.append(f"| {e['claim']} at equal time | {variant} | {t['metric']} (SBD at DeConv's time) | "
                         f"{_fmt(t['mean_a'])} ± {_fmt(t['std_a'])} | {_fmt(t['mean_b'])} ± {_fmt(t['std_b'])} | "
                         f"{_fmt(t['difference'])} [{_fmt(t['ci_low'])}, {_fmt(t['ci_high'])}] | "
                         f"{_fmt(t['p_value'])} | {t['verdict']} |")
    claimed = list(dict.fromkeys(c.metric for c in experiment.claims))
    context = [m for m in CONTEXT_METRICS if m not in claimed and any(m in r["values"] for r in records)]
    columns = claimed + context
    lines += ["", "## Per run", "",
              "*Late drop*: how much the validation error still fell over the last quarter of the "
              "steps, as a fraction of its value at three quarters; a run whose error still fell by "
              "more than about 10% had not flattened when it stopped. *last_layer_live*: the share of "
              "the decoder's last hidden layer's channels that still fire on some image (units.json; "
              "n/a for a run whose checkpoint was not kept).", "",
              "| run | training min | late drop | " + " | ".join(columns) + " |",
              "| --- | --- | --- |" + " --- |" * len(columns)]
    for r in records:
        drop = "n/a" if r.get("late_val_drop") is None else f"{100 * r['late_val_drop']:.0f}%"
        lines.append(f"| {r['name']} | {r['training_seconds'] / 60:.1f} | {drop} | "
                     + " | ".join(_fmt(r["values"].get(c)) for c in columns) + " |")
    if snapshots:
        lines += ["", "## Equal-time snapshots", "",
                  "Each SBD run trained again from scratch, same config and seed, to the step it had logged "
                  "when its DeConv twin finished training (`equal-time/`), for the scores that need the model "
                  "at that time. Its last validation error beside the full run's at the same step shows that "
                  "it is the same run.", "",
                  "| snapshot | of | step | validation step | its val_sse | full run's val_sse | "
                  + " | ".join(CHECKPOINT_METRICS) + " |",
                  "| --- | --- | --- | --- | --- | --- |" + " --- |" * len(CHECKPOINT_METRICS)]
        for s in snapshots:
            lines.append(f"| {s['name']} | {s['of']} | {s['step']} | {s['val_step']} | {_fmt(s['val_sse'])} | "
                         f"{_fmt(s['full_run_val_sse'])} | "
                         + " | ".join(_fmt(s["values"].get(m)) for m in CHECKPOINT_METRICS) + " |")
    return "\n".join(lines) + "\n"


def reproduce(name: str, out: str | Path = "results", seeds: int | None = None, steps: int | None = None,
              scale: str = "cpu", fresh: bool = False, overrides: Sequence[str] = (),
              device: str | torch.device | None = None, log: Callable[[str], None] = print,
              num_train: int = 10_000, jobs: int = 1) -> Path:
    """Run (or finish) one experiment and write its results folder; returns the folder.
    ``num_train``: evaluation samples per run (disentanglement_lib's 10,000; half as many test);
    ``jobs``: runs trained at once (see :func:`ensure_runs`)."""
    if jobs <= 0:
        raise UserError(f"--jobs must be positive, not {jobs}")
    experiment = load_experiment(name)
    try:
        specs = plan(experiment, seeds, steps, scale, overrides)
    except ConfigError as exc:
        raise UserError(f"experiment {name}: {exc}") from None
    device = device if isinstance(device, torch.device) else select_device(device)
    folder = Path(out) / name
    runs_dir = folder / "runs"
    for earlier in (runs_dir, folder / "equal-time"):
        if fresh and earlier.exists():
            log(f"--fresh: earlier runs set aside in {_set_aside(earlier)}")
    runs_dir.mkdir(parents=True, exist_ok=True)
    clock = InvocationClock(folder)
    try:
        runs = ensure_runs(specs, runs_dir, experiment.metrics, device, log, num_train, jobs)
        records = [record(spec, run, device) for spec, run in zip(specs, runs)]
        snapshots = _equal_time_snapshots(experiment, specs, records, folder / "equal-time", device, log,
                                          num_train, jobs)
    except UserError:
        clock.withdraw()
        raise
    summary = summarize(experiment, records, snapshots)
    invocations = [*earlier_invocations(folder / "results.json"), *clock.finish()]
    command = regenerate_command(name, out, seeds, steps, scale, overrides)
    results = {"experiment": name, "description": experiment.description, "scale": scale, "command": command,
               "claims": [c.__dict__ for c in experiment.claims], "summary": summary,
               "runs": [{k: v for k, v in r.items() if k != "rows"} for r in records],
               "equal_time_snapshots": snapshots, "invocations": invocations,
               "git_commit": _git_commit(), "versions": library_versions()}
    atomic_write_bytes(folder / "results.json", lambda h: h.write(json.dumps(results, indent=2).encode()))
    text = results_markdown(experiment, summary, records, invocations, command, snapshots)
    atomic_write_bytes(folder / "results.md", lambda h: h.write(text.encode()))
    clock.settled()
    if all(RunPaths(Path(r["run"])).checkpoint.is_file() for r in records):
        compare_runs([r["run"] for r in records], folder / "compare", device=device)
    else:
        log("checkpoints not at hand (not committed): the comparison page is left as it was")
    log(text)
    return folder


def _equal_time_snapshots(experiment: Experiment, specs: Sequence[RunSpec], records: list[dict[str, Any]],
                          folder: Path, device: torch.device, log: Callable[[str], None], num_train: int,
                          jobs: int) -> list[dict[str, Any]]:
    """Train and score the equal-time snapshots an experiment's claims need (none for claims
    whose scores are logged during training)."""
    if not any(c.metric in CHECKPOINT_METRICS for c in experiment.claims):
        return []
    pairs = snapshot_specs(specs, records)
    if not pairs:
        return []
    folder.mkdir(exist_ok=True)
    runs = ensure_runs([s for _, s in pairs], folder, SNAPSHOT_METRICS, device, log, num_train, jobs)
    full = {r["name"]: r for r in records}
    return [_snapshot_check(record(spec, run, device), full[name]) for (name, spec), run in zip(pairs, runs)]


def reproduce_all(out: str | Path = "results", **options: Any) -> list[Path]:
    return [reproduce(name, out, **options) for name in experiment_names()]


