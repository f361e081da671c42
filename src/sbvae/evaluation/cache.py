"""Run-level evaluations cached in the run folder, keyed by the run's evaluated step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbvae.training.run_folder import (
    RunPaths,
    atomic_write_json,
    read_json_object,
    read_scores,
)


def cached_for_step(
    run_dir: Path, name: str, required: str, compute: Callable[[int | None], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """``RUN/NAME`` when it was written for the run's evaluated step and holds ``required``;
    otherwise ``compute(step)``, saved there (unless None). Committed results carry no
    checkpoints, so a cached evaluation is what summarises them."""
    cached = RunPaths(run_dir).root / name
    step = (read_scores(run_dir) or {}).get("step")
    stats = read_json_object(cached)  # None when absent or unreadable: computed again, rewritten
    if stats is not None and stats.get("step") == step and required in stats:
        return stats
    stats = compute(step)
    if stats is not None:
        atomic_write_json(cached, stats)
    return stats
