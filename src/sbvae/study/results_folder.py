"""A study's results folder, for ``sbvae reproduce`` and ``sbvae sweep`` alike: ``results.json``
(every number), ``results.md`` (the tables) and the comparison page of its runs (``compare/``).

A ``results.json`` holds what the study found (its *study keys*) and bookkeeping about who wrote
it (the invocations that built the folder, the git commit, the library versions). Re-summarising
a study whose files already report it (bookkeeping aside) writes nothing and counts no
invocation, so re-running over finished runs leaves a checkout clean.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from sbvae.config import build_config
from sbvae.errors import ConfigError
from sbvae.evaluation.evaluate import library_versions
from sbvae.study.invocations import InvocationClock, earlier_invocations
from sbvae.study.records import RunRecord
from sbvae.study.runner import Outcome
from sbvae.training.run_folder import RunPaths, atomic_write_bytes, read_json_object
from sbvae.viz.report import compare_runs


def git_commit() -> str | None:
    """The commit of the sbvae checkout this runs from, None outside one."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        )
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def unfinished(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The runs of a study without a record, as ``results.json`` lists them: name, variant,
    seed and the last error line (None for a run not finished yet)."""
    return [
        {"name": o.spec.name, "variant": o.spec.variant, "seed": o.spec.seed, "error": o.error}
        for o in outcomes
        if o.record is None
    ]


def _study_text(results: dict[str, Any], keys: Sequence[str], defaults: dict[str, Any]) -> str | None:
    """The study a ``results.json`` reports, as canonical JSON: its ``keys`` (``defaults`` for
    those a file from before they were listed lacks), with each run's config given the defaults
    of config keys added since it was written. None when its runs do not all hold valid
    configs."""
    runs = results.get("runs")
    if not isinstance(runs, list):
        return None
    try:
        runs = [{**run, "config": build_config(run["config"]).to_dict()} for run in runs]
    except (ConfigError, KeyError, TypeError, AttributeError):
        return None
    study = {key: results.get(key, defaults.get(key)) for key in keys}
    study["runs"] = runs
    return json.dumps(study, sort_keys=True)


def already_reported(folder: Path, results: dict[str, Any], keys: Sequence[str], defaults: dict[str, Any]) -> bool:
    """Whether ``folder``'s ``results.json`` and ``results.md`` already report the study
    ``results`` describes (bookkeeping aside)."""
    earlier = read_json_object(folder / "results.json")
    if earlier is None or not (folder / "results.md").is_file():
        return False
    now = _study_text(results, keys, defaults)
    return now is not None and _study_text(earlier, keys, defaults) == now


def compare_page(records: Sequence[RunRecord], folder: Path, device: torch.device, log: Callable[[str], None]) -> None:
    """Draw ``folder/compare/`` when the runs' checkpoints are at hand, else say why not."""
    if len(records) < 2:
        log("fewer than two finished runs: no comparison page")
    elif all(RunPaths(r.run).checkpoint.is_file() for r in records):
        compare_runs([r.run for r in records], folder / "compare", device=device)
    else:
        log("checkpoints not at hand (not committed): the comparison page is left as it was")


def publish(
    folder: Path,
    results: dict[str, Any],
    markdown: Callable[[list[dict[str, Any]]], str],
    keys: Sequence[str],
    defaults: dict[str, Any],
    records: Sequence[RunRecord],
    clock: InvocationClock | None,
    device: torch.device,
    log: Callable[[str], None],
    fresh: bool = False,
) -> None:
    """Write ``results`` (its study keys; the invocations, commit and versions are added here)
    as ``results.json``, ``markdown(invocations)`` as ``results.md`` and the comparison page,
    unless the folder already reports the same study. ``clock``: this invocation's, counted in
    ``results.json`` (None: a summary that trained nothing and counts no invocation)."""
    results = {**results, "invocations": [], "git_commit": git_commit(), "versions": library_versions()}
    if not fresh and already_reported(folder, results, keys, defaults):  # a clean checkout stays clean
        if clock is not None:
            clock.withdraw()
        if not (folder / "compare" / "compare.html").is_file():
            compare_page(records, folder, device, log)
        log(f"nothing changed since {folder / 'results.json'} was written: it and results.md are left as they are")
        log((folder / "results.md").read_text())
        return
    invocations = [*earlier_invocations(folder / "results.json"), *(clock.finish() if clock else [])]
    results["invocations"] = invocations
    atomic_write_bytes(folder / "results.json", lambda h: h.write(json.dumps(results, indent=2).encode()))
    text = markdown(invocations)
    atomic_write_bytes(folder / "results.md", lambda h: h.write(text.encode()))
    if clock is not None:
        clock.settled()
    compare_page(records, folder, device, log)
    log(text)
