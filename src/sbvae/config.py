"""Typed run configuration: dataclasses, YAML presets, dotted overrides, validation.

A config has four sections (``data``, ``model``, ``objective``, ``train``). Every value is
checked on load, so a typo or a bad value fails with one clear :class:`ConfigError` before
anything is trained or written.

Every field says, where it is defined, what role it plays in a run's identity (the config a
finished run is reused or extended for, see :func:`run_identity`): :data:`IDENTITY` (it changes
what the run computes), :data:`LENGTH` (how far it is trained: a longer run extends a shorter
one), :data:`EXECUTION` (how fast it trains, not what it learns) or :data:`BOOKKEEPING` (what is
logged or saved along the way). A field without a role is a bug that a test catches.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from sbvae.errors import ConfigError

IDENTITY = "identity"
"""Changes what a run computes: runs that differ in it are different runs."""
LENGTH = "length"
"""How far a run is trained: asking for more steps extends a finished run (constant learning
rate, a data stream drawn from the seed and the step), so the longer run is the extended one."""
EXECUTION = "execution"
"""Changes how fast a run trains, not what it learns (the same update up to float rounding)."""
BOOKKEEPING = "bookkeeping"
"""Only decides what is logged or saved along the way: validation and MIG use their own seeded
draws and the training stream and noise have their own generators, so it changes no weight."""
ROLES = (IDENTITY, LENGTH, EXECUTION, BOOKKEEPING)


def _role(role: str, default: Any, why: str = "") -> Any:
    """A dataclass field with ``default`` whose metadata records its role (and for a field
    outside the identity, why it is)."""
    return field(default=default, metadata={"role": role, "why": why})


def identity(default: Any) -> Any:
    """A field that is part of a run's identity."""
    return _role(IDENTITY, default)


def length(default: Any) -> Any:
    """The field that says how far a run is trained."""
    return _role(LENGTH, default)


def execution(default: Any, why: str) -> Any:
    """A field that changes how fast a run trains, not what it learns."""
    return _role(EXECUTION, default, why)


def bookkeeping(default: Any, why: str) -> Any:
    """A field that only decides what is logged or saved along the way."""
    return _role(BOOKKEEPING, default, why)


@dataclass
class DataConfig:
    """What the model sees. ``preset`` names a factor space in :mod:`sbvae.data.presets`.

    ``path``: a dataset file, a folder or a glob of images (see :mod:`sbvae.data.files`); when
    set, the file decides the dataset and ``preset`` is not used. Kept absolute, so a run's
    later stages find it from any folder. ``format``: how to read it (the formats of
    :data:`sbvae.data.files.FORMATS`), or None to
    recognise it from the file. ``cache``: the folder for the one-time uncompressed copy of a
    compressed ``.npz`` (None: ``$XDG_CACHE_HOME/sbvae``, else ``~/.cache/sbvae``).
    """

    preset: str = identity("colored_sprites")
    image_size: int = identity(64)
    val_size: int = identity(512)
    supersample: int = identity(4)
    path: str | None = identity(None)
    format: Literal["dsprites_npz", "shapes3d_h5", "mpi3d_npz", "chairs_folder", "image_folder"] | None = identity(None)
    cache: str | None = execution(None, "where the uncompressed copy of a file is kept: the same images")

    def __post_init__(self) -> None:
        for key in ("path", "cache"):
            value = getattr(self, key)
            if isinstance(value, str) and value.strip():
                setattr(self, key, os.path.abspath(os.path.expanduser(value)))


@dataclass
class ModelConfig:
    """Encoder and decoder shapes. See :mod:`sbvae.models` for what each knob means."""

    decoder: Literal["sbd", "deconv"] = identity("sbd")
    latent_dim: int = identity(10)
    encoder_channels: int = identity(64)
    encoder_hidden: int = identity(256)
    logvar_bias: float = identity(0.0)
    sbd_layers: int = identity(4)
    sbd_channels: int = identity(64)
    sbd_kernel: int = identity(3)
    broadcast: Literal["same", "valid"] = identity("valid")
    deconv_channels: int = identity(64)


OBJECTIVES: dict[str, dict[str, float | int]] = {
    "beta_vae": {"beta": 1.0, "kl_warmup": 0},
    "factor_vae": {"gamma": 10.0},
    "beta_tcvae": {"beta": 10.0},
    "dip_vae_i": {"lambda_od": 10.0, "lambda_d_factor": 10.0},
    "dip_vae_ii": {"lambda_od": 10.0, "lambda_d_factor": 1.0},
    "annealed_vae": {"gamma": 1000.0, "c_max": 25.0, "c_steps": 100_000},
}
"""Every objective (``objective.name``) and its own hyperparameters with their defaults.

beta-VAE keeps this package's defaults (beta 1: the plain VAE). The others take the one value
google-research/disentanglement_lib binds for each method in its training test
(``disentanglement_lib/methods/unsupervised/train_test.py``; its ``train_test.gin`` binds only
``vae.beta``); every one of them is also a point of the
sweep of its study (``config/unsupervised_study_v1/sweep.py``, Locatello et al. 2019).
"""


@dataclass
class ObjectiveConfig:
    """The loss: the reconstruction likelihood (with its sigma), the KL, and the method's penalty.

    ``name`` picks the method (see :mod:`sbvae.objectives` and :data:`OBJECTIVES`); each has
    its own hyperparameters below, left ``None`` by every other method and filled with the
    method's default when not given. Setting one that belongs to another method is an error.

    * ``beta`` (beta_vae: the KL weight; beta_tcvae: the weight of the total correlation).
    * ``kl_warmup`` (every method; 0 by default for beta_vae, unset, i.e. off, for the others):
      over the first so many steps the regulariser (all the loss adds to the reconstruction
      NLL: beta-VAE's ``beta`` KL, another method's KL and penalty) is weighed by a factor
      rising linearly from 0 to 1; the usual remedy for latents that collapse before the
      decoder has learned to use them (Bowman et al. 2016, Sonderby et al. 2016).
    * ``gamma`` (factor_vae: the weight of the total correlation; annealed_vae: the weight of
      ``|KL - C|``).
    * ``lambda_od``, ``lambda_d_factor`` (dip_vae_i, dip_vae_ii): the weights of the squared
      off-diagonal entries of the latents' covariance and, ``lambda_d_factor * lambda_od``, of
      the squared deviations of its diagonal from 1.
    * ``c_max``, ``c_steps`` (annealed_vae): the capacity C rises linearly from 0 to ``c_max``
      nats over ``c_steps`` steps.
    """

    name: Literal["beta_vae", "factor_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii", "annealed_vae"] = identity(
        "beta_vae"
    )
    likelihood: Literal["gaussian", "bernoulli"] = identity("gaussian")
    sigma: float = identity(0.1)
    beta: float | None = identity(None)
    kl_warmup: int | None = identity(None)
    gamma: float | None = identity(None)
    lambda_od: float | None = identity(None)
    lambda_d_factor: float | None = identity(None)
    c_max: float | None = identity(None)
    c_steps: int | None = identity(None)

    def __post_init__(self) -> None:
        for key, default in OBJECTIVES.get(self.name, {}).items():
            if getattr(self, key) is None:
                setattr(self, key, default)

    def hyperparameters(self) -> dict[str, Any]:
        """The method's own hyperparameters and their values (``{"gamma": 10.0}``), and the KL
        warm-up where set."""
        own = {key: getattr(self, key) for key in OBJECTIVES.get(self.name, {})}
        return own if self.kl_warmup is None else {**own, "kl_warmup": self.kl_warmup}

    def summary(self) -> str:
        """One line naming the method and every hyperparameter it uses."""
        own = [f"{key} {value:g}" for key, value in self.hyperparameters().items()]
        likelihood = "bernoulli likelihood"
        if self.likelihood == "gaussian":
            likelihood = f"gaussian likelihood, sigma {self.sigma:g}"
        return f"{self.name} ({', '.join([*own, likelihood])})"


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping.

    ``lr_warmup``: over the first so many steps the learning rate rises linearly to ``lr``
    (0: ``lr`` from the start). Adam's first steps at full rate can switch ReLU channels off
    for good, most of the SBD's last hidden layer at 1e-3 (see :mod:`sbvae.evaluation.live_units`); a warm-up
    keeps many of them. ``lr_decay_steps``: after the warm-up the learning rate falls along a
    half cosine to ``lr_final * lr`` at this step and stays there (0: no decay); it is part of
    the run's identity, so a run resumed for longer keeps its schedule. ``adam_beta1``,
    ``adam_beta2``, ``adam_eps``: Adam's moment decays and epsilon. ``mig_every``: log MIG
    every so many steps (0: only at the end); ``mig_samples``: samples for that MIG;
    ``fidelity_every``: log the fidelity of reconstructions (:mod:`sbvae.evaluation.fidelity`)
    every so many steps and at the end (0: off); ``fidelity_samples``: samples for it;
    ``threads``: CPU threads (0: one per available
    core); ``micro_batch``: split each batch into chunks of this many images whose gradients are summed before the step
    (0, or at least the batch: the whole batch at once). Same update up to float rounding; on a CPU small chunks
    stay in cache and run faster (see ``sbvae bench``). ``channels_last``: keep the model's
    weights and activations in NHWC memory order (same numbers up to float rounding; faster
    convolutions on CPU). ``compile``: run the training step through ``torch.compile`` (a
    one-time compile, then faster steps; needs a C++ compiler on CPU, Triton on CUDA).
    """

    steps: int = length(1_500_000)
    batch_size: int = identity(16)
    lr: float = identity(3e-4)
    lr_warmup: int = identity(0)
    lr_decay_steps: int = identity(0)
    lr_final: float = identity(0.0)
    adam_beta1: float = identity(0.9)
    adam_beta2: float = identity(0.999)
    adam_eps: float = identity(1e-8)
    seed: int = identity(0)
    log_every: int = bookkeeping(100, "how often the training loss is logged")
    eval_every: int = bookkeeping(5000, "how often the validation error is logged (its own fixed set)")
    checkpoint_every: int = bookkeeping(5000, "how often a checkpoint is saved")
    mig_every: int = bookkeeping(0, "how often MIG is logged (its own seeded draws)")
    mig_samples: int = bookkeeping(10_000, "the samples of the MIG logged during training")
    fidelity_every: int = bookkeeping(0, "how often fidelity is logged (its own probe and seeded draws)")
    fidelity_samples: int = bookkeeping(2_000, "the samples of the fidelity logged during training")
    threads: int = execution(0, "CPU threads: the same computation, split differently")
    micro_batch: int = execution(0, "gradients of chunks summed: the same update up to float rounding")
    channels_last: bool = execution(True, "memory order: the same numbers up to float rounding")
    compile: bool = execution(False, "torch.compile: the same step, fused")


@dataclass
class Config:
    """A whole run: saved as ``config.yaml`` in every run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "objective": ObjectiveConfig,
    "train": TrainConfig,
}


def field_roles() -> dict[tuple[str, str], str]:
    """The role of every config field, keyed by ``(section, field)``."""
    return {
        (section, f.name): f.metadata.get("role", "")
        for section, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }


def fields_of_roles(config: dict[str, Any], kept: Collection[str]) -> dict[str, Any]:
    """A config as :meth:`Config.to_dict` gives it, with only the fields whose role is in
    ``kept`` (a key no section declares counts as :data:`IDENTITY`)."""
    roles = field_roles()
    return {
        section: {k: v for k, v in values.items() if roles.get((section, k), IDENTITY) in kept}
        for section, values in config.items()
    }


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """What makes two runs the same (a config as :meth:`Config.to_dict` gives it): its
    :data:`IDENTITY` fields; its length, execution and bookkeeping fields left out."""
    return fields_of_roles(config, (IDENTITY,))


def preset_names() -> list[str]:
    """Names of the YAML presets shipped inside the package."""
    folder = resources.files("sbvae") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{source} must hold a mapping of sections, not {type(loaded).__name__}")
    return loaded


def load_raw(name_or_path: str | None, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a preset by name (``default``, ``paper``, ...) or a YAML file by path. A top-level
    ``extends: PRESET`` starts from that built-in preset and applies the file's sections over it
    (key by key)."""
    if name_or_path is None:
        name_or_path = "default"
    if name_or_path in preset_names() and not Path(name_or_path).exists():
        text = (resources.files("sbvae") / "configs" / f"{name_or_path}.yaml").read_text()
        raw = _read_yaml(text, f"preset '{name_or_path}'")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (built-in presets: {', '.join(preset_names())})")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        raw = _read_yaml(text, str(path))
    if "extends" not in raw:
        return raw
    base = raw.pop("extends")
    if base not in preset_names() or base in _seen or base == name_or_path:
        raise ConfigError(f"{name_or_path}: extends must name another built-in preset ({', '.join(preset_names())})")
    merged = load_raw(base, (*_seen, name_or_path))
    for section, values in raw.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``section.key=value``; the value is parsed as YAML (``3e-4``, ``true``, ``sbd``)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' needs the form section.key=value")
    key, text = item.split("=", 1)
    key = key.strip()
    if key.count(".") != 1:
        raise ConfigError(f"override key '{key}' needs the form section.key (e.g. train.steps)")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``section.key=value`` applied."""
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for item in overrides:
        key, value = parse_override(item)
        section, name = key.split(".")
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"config section '{section}' must be a mapping")
        target[name] = value
    return merged


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""``1e-3``: PyYAML (YAML 1.1) reads a float without a dot as a string."""
_NOT_FINITE = re.compile(r"[-+]?(nan|inf|infinity)", re.IGNORECASE)
"""``nan``, ``-inf``: PyYAML reads these as strings (only ``.nan``, ``-.inf`` as floats)."""
FLOAT32_MAX = 3.4028234663852886e38
"""The largest float32: every float of a config becomes one in a tensor."""


def _float(where: str, value: Any) -> Any:
    """``value`` as a float when it is a number or spells one; a :class:`ConfigError` when that
    number is not finite or past float32's range."""
    if isinstance(value, str) and (_SCIENTIFIC.fullmatch(value.strip()) or _NOT_FINITE.fullmatch(value.strip())):
        value = float(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    try:
        number = float(value)
    except OverflowError:  # an int past every float
        number = math.inf
    if not abs(number) <= FLOAT32_MAX:
        within = f"within float32's range (at most {FLOAT32_MAX:.2g} in size)"
        raise ConfigError(f"{where} must be a finite number {within}, not {number:g}")
    return number


def _coerce(where: str, value: Any, annotation: Any) -> Any:
    """Check ``value`` against a field's type; ints are accepted where floats are expected, and
    ``None`` where the type allows it."""
    options = typing.get_args(annotation)
    if type(None) in options and typing.get_origin(annotation) is not Literal:
        if value is None:
            return None
        annotation = next(option for option in options if option is not type(None))
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, choices))}, not {value!r}")
        return value
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        value = _float(where, value)
        ok = isinstance(value, float)
    elif annotation is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - every field type is listed above
        raise TypeError(annotation)
    if not ok:
        raise ConfigError(f"{where} must be {annotation.__name__}, not {value!r}")
    return value


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config section '{name}' must be a mapping, not {raw!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown config key '{name}.{key}' (known: {', '.join(sorted(known))})")
    values = {key: _coerce(f"{name}.{key}", raw[key], hints[key]) for key in raw}
    return cls(**values)


def _check_missing(objective: ObjectiveConfig, raw: dict[str, Any]) -> None:
    """A hyperparameter of the chosen method given as null (no value) is refused; left out, it
    takes the method's default."""
    for key, default in OBJECTIVES[objective.name].items():
        if key in raw and raw[key] is None:
            raise ConfigError(
                f"objective.{key} has no value; {objective.name} needs one (its default is {default:g}, "
                f"used when the key is left out)"
            )


def build_config(raw: dict[str, Any]) -> Config:
    """Turn a nested dict into a validated :class:`Config`."""
    for section in raw:
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section '{section}' (known: {', '.join(SECTIONS)})")
    sections = {name: _build_section(name, cls, raw.get(name)) for name, cls in SECTIONS.items()}
    _check_missing(sections["objective"], raw.get("objective") or {})
    config = Config(**sections)
    validate(config)
    return config


def load_config(name_or_path: str | None = None, overrides: list[str] | None = None) -> Config:
    """Load a preset or YAML file, apply dotted overrides, validate."""
    raw = apply_overrides(load_raw(name_or_path), overrides or [])
    return build_config(raw)


# Upper bounds for counts: far above any real run, below what overflows or exhausts the machine.
MAX_SEED = 2**31
MAX_THREADS = 1024
MAX_STEPS = 10**12
MAX_LATENTS = 1024  # every figure draws a row per latent
MIN_LATENTS = 2  # the metrics compare latents (MIG: the gap between a factor's best two)
MAX_LAYERS = 64
MAX_SUPERSAMPLE = 16
# Channels or units of a layer, pixels, kernel: with these, any model's weights and activations
# stay far below 2**63 elements, so even the largest is built on the meta device and refused
# by its memory estimate instead of overflowing.
MAX_WIDTH = 2**16
MAX_IMAGE_SIZE = 2**14
MAX_KERNEL = 2**8
MAX_LOGVAR_BIAS = 20.0  # a posterior's first noise between exp(-10) and exp(10)


def _positive(where: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{where} must be positive, not {value}")


def _at_most(where: str, value: int, most: int) -> None:
    if value > most:
        raise ConfigError(f"{where} must be at most {most:,}, not {value:,}")


def _validate_objective(o: ObjectiveConfig) -> None:
    """Every hyperparameter set belongs to the chosen method; weights are >= 0; the capacity
    schedule has steps."""
    own = OBJECTIVES[o.name]
    for key in sorted({k for keys in OBJECTIVES.values() for k in keys} - set(own) - {"kl_warmup"}):
        if getattr(o, key) is not None:
            owners = " and ".join(name for name, keys in OBJECTIVES.items() if key in keys)
            raise ConfigError(
                f"objective.{key} belongs to {owners}, not to objective.name={o.name} "
                f"(whose keys are {', '.join(f'objective.{k}' for k in own)})"
            )
    for key in ("beta", "gamma", "lambda_od", "lambda_d_factor", "c_max"):
        value = getattr(o, key)
        if value is not None and value < 0:
            raise ConfigError(f"objective.{key} must be >= 0, not {value}")
    if o.kl_warmup is not None and o.kl_warmup < 0:
        raise ConfigError(f"objective.kl_warmup must be >= 0 (0 = off), not {o.kl_warmup}")
    if o.c_steps is not None and o.c_steps <= 0:
        raise ConfigError(f"objective.c_steps must be positive (C rises to c_max over so many steps), not {o.c_steps}")
    if o.c_steps is not None and o.c_steps > MAX_STEPS:
        raise ConfigError(f"objective.c_steps must be at most {MAX_STEPS:,}, not {o.c_steps:,}")


def validate(config: Config) -> None:
    """Check values that types alone cannot (sizes, ranges, presets)."""
    from sbvae.data.presets import PRESETS  # late import: data depends on nothing here

    d, m, o, t = config.data, config.model, config.objective, config.train
    if d.preset not in PRESETS:
        raise ConfigError(f"data.preset '{d.preset}' is unknown (known: {', '.join(PRESETS)})")
    for key in ("path", "cache"):
        if getattr(d, key) is not None and not getattr(d, key).strip():
            raise ConfigError(f"data.{key} is empty; leave it out (or null) instead")
    if d.format is not None and d.path is None:
        raise ConfigError("data.format says how to read data.path, which is not set")
    _positive("data.image_size", d.image_size)
    _at_most("data.image_size", d.image_size, MAX_IMAGE_SIZE)
    if d.image_size % 16:
        raise ConfigError(f"data.image_size must be divisible by 16, not {d.image_size}")
    _positive("data.val_size", d.val_size)
    _positive("data.supersample", d.supersample)
    for key in ("latent_dim", "encoder_channels", "encoder_hidden", "sbd_layers", "sbd_channels", "deconv_channels"):
        _positive(f"model.{key}", getattr(m, key))
    _positive("model.sbd_kernel", m.sbd_kernel)
    bounds = [("latent_dim", MAX_LATENTS), ("sbd_layers", MAX_LAYERS), ("sbd_kernel", MAX_KERNEL)]
    bounds += [(key, MAX_WIDTH) for key in ("encoder_channels", "encoder_hidden", "sbd_channels", "deconv_channels")]
    for key, most in bounds:
        _at_most(f"model.{key}", getattr(m, key), most)
    if abs(m.logvar_bias) > MAX_LOGVAR_BIAS:
        raise ConfigError(
            f"model.logvar_bias must be in [-{MAX_LOGVAR_BIAS:g}, {MAX_LOGVAR_BIAS:g}], not {m.logvar_bias}"
        )
    if m.latent_dim < MIN_LATENTS:
        why = "the metrics and figures compare latents"
        raise ConfigError(f"model.latent_dim must be at least {MIN_LATENTS} ({why}), not {m.latent_dim}")
    _at_most("data.supersample", d.supersample, MAX_SUPERSAMPLE)
    if m.sbd_kernel > d.image_size:
        raise ConfigError(f"model.sbd_kernel must be at most data.image_size ({d.image_size}), not {m.sbd_kernel}")
    if m.broadcast == "same" and m.sbd_kernel % 2 == 0:
        raise ConfigError("model.sbd_kernel must be odd with model.broadcast=same")
    _positive("objective.sigma", o.sigma)
    _validate_objective(o)
    for key in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every"):
        _positive(f"train.{key}", getattr(t, key))
    _positive("train.lr", t.lr)
    if t.lr_warmup < 0:
        raise ConfigError(f"train.lr_warmup must be >= 0 (0 = off), not {t.lr_warmup}")
    if t.lr_decay_steps < 0 or (t.lr_decay_steps and t.lr_decay_steps <= t.lr_warmup):
        raise ConfigError(
            f"train.lr_decay_steps must be 0 (off) or more than train.lr_warmup ({t.lr_warmup}), not {t.lr_decay_steps}"
        )
    if not 0 <= t.lr_final <= 1:
        raise ConfigError(f"train.lr_final is a fraction of train.lr in [0, 1], not {t.lr_final}")
    for key in ("adam_beta1", "adam_beta2"):
        if not 0 <= getattr(t, key) < 1:
            raise ConfigError(f"train.{key} must be in [0, 1), not {getattr(t, key)}")
    _positive("train.adam_eps", t.adam_eps)
    if t.mig_every < 0:
        raise ConfigError(f"train.mig_every must be >= 0 (0 = off), not {t.mig_every}")
    if t.mig_samples < 2:
        raise ConfigError(f"train.mig_samples must be at least 2, not {t.mig_samples}")
    if t.fidelity_every < 0:
        raise ConfigError(f"train.fidelity_every must be >= 0 (0 = off), not {t.fidelity_every}")
    if t.fidelity_samples < 2:
        raise ConfigError(f"train.fidelity_samples must be at least 2, not {t.fidelity_samples}")
    if not 0 <= t.seed < MAX_SEED:
        raise ConfigError(f"train.seed must be in [0, {MAX_SEED}), not {t.seed}")
    if not 0 <= t.threads <= MAX_THREADS:
        raise ConfigError(f"train.threads must be in [0, {MAX_THREADS}] (0 = automatic), not {t.threads}")
    if t.steps > MAX_STEPS:
        raise ConfigError(f"train.steps must be at most {MAX_STEPS:,}, not {t.steps:,}")
    if t.micro_batch < 0 or (0 < t.micro_batch < t.batch_size and t.batch_size % t.micro_batch):
        raise ConfigError(
            f"train.micro_batch must divide train.batch_size ({t.batch_size}), or be 0 "
            f"or at least the batch (whole batch at once), not {t.micro_batch}"
        )


def config_yaml(config: Config) -> str:
    """The resolved config as YAML (what a run folder's ``config.yaml`` holds)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as YAML."""
    path.write_text(config_yaml(config))
