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

from sbvae.config import EXECUTION, ROLES, build_config, fields_of_roles
from sbvae.errors import ConfigError
from sbvae.evaluation.evaluate import library_versions
from sbvae.study.invocations import InvocationClock, earlier_invocations
from sbvae.study.records import RunRecord
from sbvae.study.runner import Outcome
from sbvae.study.summary import traversal_runs
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


_STUDY_ROLES = tuple(role for role in ROLES if role != EXECUTION)
"""The config fields a study depends on: all but how its runs were executed."""


def _study_text(results: dict[str, Any], keys: Sequence[str], defaults: dict[str, Any]) -> str | None:
    """The study a ``results.json`` reports, as canonical JSON: its ``keys`` (``defaults`` for
    those a file from before they were listed lacks), with each run's config given the defaults
    of config keys added since it was written and without its execution settings (threads and
    the like depend on ``--jobs``, not on the study). None when its runs do not all hold valid
    configs."""
    runs = results.get("runs")
    if not isinstance(runs, list):
        return None
    try:
        runs = [{**run, "config": fields_of_roles(build_config(run["config"]).to_dict(), _STUDY_ROLES)} for run in runs]
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


def compare_folders(records: Sequence[RunRecord], folder: Path) -> dict[Path, list[Path]]:
    """Where the comparison page of ``records`` goes, with its runs (each once): ``compare/``,
    or a page per data preset, ``compare/PRESET/``, when the runs use several (geometry is
    compared within one dataset)."""
    groups: dict[str, list[Path]] = {}
    for r in records:
        runs = groups.setdefault(r.config.data.preset, [])
        if r.run not in runs:
            runs.append(r.run)
    if len(groups) <= 1:
        return {folder / "compare": next(iter(groups.values()), [])}
    return {folder / "compare" / preset: runs for preset, runs in groups.items()}


def compare_page(
    records: Sequence[RunRecord],
    folder: Path,
    device: torch.device,
    log: Callable[[str], None],
    only_missing: bool = False,
) -> None:
    """Draw each comparison page (:func:`compare_folders`) when its runs' checkpoints are at hand,
    else say why not; ``only_missing``: only pages not drawn yet."""
    for page, runs in compare_folders(records, folder).items():
        if only_missing and (page / "compare.html").is_file():
            continue
        if len(runs) < 2:
            log("fewer than two finished runs: no comparison page")
        elif all(RunPaths(run).checkpoint.is_file() for run in runs):
            compare_runs(runs, page, device=device)
        else:
            log("checkpoints not at hand (not committed): the comparison page is left as it was")


def copy_traversals(
    records: Sequence[RunRecord], folder: Path, log: Callable[[str], None], only_missing: bool = False
) -> None:
    """Copy the traversals of the runs a study shows (:func:`sbvae.study.summary.traversal_runs`)
    into ``traversals/RUN.png`` when their run folders hold them (run figures are not
    committed); ``only_missing``: only those not copied yet. Once every one is copied, a copy of
    another run (shown before the study had more seeds) goes: the folder holds what
    ``results.md`` links."""
    shown, copied = set(), 0
    for r in traversal_runs(records):
        source, target = RunPaths(r.run).figure("traversals"), folder / "traversals" / f"{r.name}.png"
        shown.add(target)
        if only_missing and target.is_file():
            copied += 1
        elif source.is_file():
            _copy(source, target)
            copied += 1
        else:
            log(f"{source} is not at hand (run figures are not committed): {target} is left as it was")
    if copied == len(shown):
        for stale in set((folder / "traversals").glob("*.png")) - shown:
            stale.unlink()


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    atomic_write_bytes(target, lambda handle: handle.write(data))


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
    traversals: bool = False,
) -> None:
    """Write ``results`` (its study keys; the invocations, commit and versions are added here)
    as ``results.json``, ``markdown(invocations)`` as ``results.md``, the comparison page and
    (``traversals``) the traversals it links, unless the folder already reports the same study.
    ``clock``: this invocation's, counted in ``results.json`` (None: a summary that trained
    nothing and counts no invocation)."""
    results = {**results, "invocations": [], "git_commit": git_commit(), "versions": library_versions()}
    if not fresh and already_reported(folder, results, keys, defaults):  # a clean checkout stays clean
        if clock is not None:
            clock.withdraw()
        compare_page(records, folder, device, log, only_missing=True)
        if traversals:
            copy_traversals(records, folder, log, only_missing=True)
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
    if traversals:
        copy_traversals(records, folder, log)
    log(text)
