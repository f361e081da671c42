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
DECODER_KEYS = {
    "sbd": ("model.sbd_layers", "model.sbd_channels", "model.sbd_kernel", "model.broadcast"),
    "deconv": ("model.deconv_channels",),
}
"""The config keys only one decoder reads. A sweep over them leaves the other decoder's runs as
they are: one run per seed, shared by every value of the sweep."""


@dataclass(frozen=True)
class Claim:
    """One claim of the paper an experiment tests, on one metric."""

    number: int
    text: str
    metric: str  # a score key of metrics.json, or test_sse / heldout_sse / heldout_gap
    higher_is_better: bool


@dataclass(frozen=True)
class Ablation:
    """How the SBD - DeConv difference in ``metric`` changes from the runs at the ``baseline``
    value of the sweep key ``key`` to those at each other value (e.g. a wider SBD against the
    same DeConv runs); see :func:`sbvae.study.summary.ablation_results` for its verdicts."""

    number: int
    text: str
    metric: str
    higher_is_better: bool
    key: str
    baseline: Any


@dataclass(frozen=True)
class WallTime:
    """What an experiment is expected to take with ``--jobs 2`` on the 2-core machine its
    protocol was sized on, and how that follows from the measured training rates."""

    minutes: int
    why: str


@dataclass(frozen=True)
class Experiment:
    """A base preset, its overrides, the seeds, an optional sweep, the metrics and the claims;
    optionally an ablation and the expected wall time."""

    name: str
    description: str
    config: str
    overrides: list[str]
    seeds: int
    sweep: dict[str, list[Any]]
    metrics: list[str]
    claims: list[Claim]
    ablation: Ablation | None = None
    wall_time: WallTime | None = None


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
    wall_time = raw.get("wall_time")
    return Experiment(
        name,
        _one_line(raw["description"]),
        raw["config"],
        list(raw["set"]),
        int(raw["seeds"]),
        dict(raw["sweep"]),
        list(raw["metrics"]),
        [Claim(**c) for c in raw["claims"]],
        Ablation(**raw["ablation"]) if "ablation" in raw else None,
        WallTime(int(wall_time["minutes"]), _one_line(wall_time["why"])) if wall_time else None,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reads(decoder: str, key: str) -> bool:
    """Whether runs of ``decoder`` read the config key ``key`` (see :data:`DECODER_KEYS`)."""
    return not any(key in keys for other, keys in DECODER_KEYS.items() if other != decoder)


def plan(
    experiment: Experiment,
    seeds: int | None = None,
    steps: int | None = None,
    scale: str = "cpu",
    overrides: Sequence[str] = (),
) -> list[RunSpec]:
    """Every run of the study: decoders x sweep values x seeds 1..N. A decoder's run leaves out
    the sweep keys it does not read (:data:`DECODER_KEYS`), so runs that differ only in them are
    one run, planned once per sweep value with the same name and config."""
    seeds = experiment.seeds if seeds is None else seeds
    if seeds <= 0:
        raise UserError(f"--seeds must be positive, not {seeds}")
    if scale not in ("cpu", "paper"):
        raise UserError(f"--scale must be cpu or paper, not {scale}")
    _check_sweep_kept(experiment, overrides)
    base = experiment.config if scale == "cpu" else "paper"
    variants: list[dict[str, Any]] = [{}]
    for key, values in experiment.sweep.items():
        variants = [{**v, key: value} for v in variants for value in values]
    specs = []
    for variant in variants:
        for decoder in DECODERS:
            own = {k: v for k, v in variant.items() if _reads(decoder, k)}
            tag = "".join(_tag(k, v) for k, v in own.items())
            for seed in range(1, seeds + 1):
                sets = [
                    *experiment.overrides,
                    *(f"{k}={v}" for k, v in own.items()),
                    f"model.decoder={decoder}",
                    f"train.seed={seed}",
                    *overrides,
                ]
                if steps is not None:
                    sets.append(f"train.steps={steps}")
                specs.append(RunSpec(f"{decoder}{tag}-seed{seed}", decoder, seed, variant, load_config(base, sets)))
    for spec in specs:
        _check_own_data(experiment, spec)
    return specs


def _tag(key: str, value: Any) -> str:
    """A sweep value in a run's name: a word as it is (``-objects_room``), a number after its
    key's last part (``-beta4.0``)."""
    return f"-{value}" if isinstance(value, str) else f"-{key.split('.')[-1]}{value}"


def _check_sweep_kept(experiment: Experiment, overrides: Sequence[str]) -> None:
    """A one-line :class:`UserError` for an override of a key the experiment sweeps: it would
    make every value of the sweep the same."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in experiment.sweep:
            values = ", ".join(str(v) for v in experiment.sweep[key])
            raise UserError(f"experiment {experiment.name} sweeps {key} ({values}); --set {item} would replace it")


def _check_own_data(experiment: Experiment, spec: RunSpec) -> None:
    """A one-line :class:`UserError` when an experiment that names its data preset (its claims
    are about that data, e.g. held-out's region never trained on), in its overrides or its
    sweep, would train on other data."""
    own = [item.split("=", 1)[1] for item in experiment.overrides if item.startswith("data.preset=")]
    if "data.preset" in spec.variant:
        own.append(str(spec.variant["data.preset"]))
    if not own:
        return
    config = spec.config
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
