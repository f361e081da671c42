"""The packaged experiments (``configs/experiments/NAME.yaml``) and the runs each one plans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from sbvae.config import Config, load_config
from sbvae.errors import UserError

DECODERS = ("sbd", "deconv")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper an experiment tests, on one metric."""

    number: int
    text: str
    metric: str  # a score key of metrics.json, or test_sse / heldout_sse / heldout_gap
    higher_is_better: bool


@dataclass(frozen=True)
class Experiment:
    """A base preset, its overrides, the seeds, an optional sweep, the metrics and the claims."""

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
    config: Config = field(default_factory=Config)


def experiment_names() -> list[str]:
    """The names of the packaged experiments."""
    folder = resources.files("sbvae") / "configs" / "experiments"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_experiment(name: str) -> Experiment:
    """A packaged experiment by name; one-line :class:`UserError` for an unknown one."""
    if name not in experiment_names():
        raise UserError(f"unknown experiment '{name}' (known: {', '.join(experiment_names())}, all)")
    raw = yaml.safe_load((resources.files("sbvae") / "configs" / "experiments" / f"{name}.yaml").read_text())
    return Experiment(
        name,
        " ".join(raw["description"].split()),
        raw["config"],
        list(raw["set"]),
        int(raw["seeds"]),
        dict(raw["sweep"]),
        list(raw["metrics"]),
        [Claim(**c) for c in raw["claims"]],
    )


def plan(
    experiment: Experiment,
    seeds: int | None = None,
    steps: int | None = None,
    scale: str = "cpu",
    overrides: Sequence[str] = (),
) -> list[RunSpec]:
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
                sets = [
                    *experiment.overrides,
                    *(f"{k}={v}" for k, v in variant.items()),
                    f"model.decoder={decoder}",
                    f"train.seed={seed}",
                    *overrides,
                ]
                if steps is not None:
                    sets.append(f"train.steps={steps}")
                tag = "".join(f"-{k.split('.')[-1]}{v}" for k, v in variant.items())
                specs.append(RunSpec(f"{decoder}{tag}-seed{seed}", decoder, seed, variant, load_config(base, sets)))
    _check_own_data(experiment, specs[0].config)
    return specs


def _check_own_data(experiment: Experiment, config: Config) -> None:
    """A one-line :class:`UserError` when an experiment that names its data preset (its claims
    are about that data, e.g. held-out's region never trained on) would train on other data."""
    own = [item.split("=", 1)[1] for item in experiment.overrides if item.startswith("data.preset=")]
    if not own:
        return
    if config.data.path is not None:
        other = "data.path"
    elif config.data.preset != own[-1]:
        other = f"data.preset={config.data.preset}"
    else:
        return
    raise UserError(
        f"experiment {experiment.name} trains on data preset {own[-1]}, which its claims are about; "
        f"{other} would replace it: leave it out"
    )
