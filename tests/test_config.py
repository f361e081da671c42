"""Configs: presets, dotted overrides with YAML typing, one clear error per bad input, and which
fields make a run's identity."""

from __future__ import annotations

import dataclasses

import pytest

from sbvae.config import (
    BOOKKEEPING,
    EXECUTION,
    IDENTITY,
    LENGTH,
    ROLES,
    SECTIONS,
    Config,
    build_config,
    field_roles,
    load_config,
    parse_override,
    preset_names,
    run_identity,
    save_config,
)
from sbvae.errors import ConfigError, UserError


def test_presets_are_listed():
    assert {"default", "paper"} <= set(preset_names())


def test_default_preset_is_cpu_sized():
    config = load_config("default")
    assert load_config(None) == config  # no name: the default
    assert config.data.preset == "colored_sprites"
    assert config.data.image_size == 32
    assert config.model.decoder == "sbd"
    assert config.objective.likelihood == "gaussian"


def test_paper_preset():
    c = load_config("paper")
    assert c.data.preset == "colored_sprites"
    assert c.data.image_size == 64
    assert c.train.batch_size == 16
    assert c.train.lr == pytest.approx(3e-4) and isinstance(c.train.lr, float)
    assert c.train.steps == 1_500_000
    assert c.model.latent_dim == 10
    assert c.objective.beta == 1.0


def test_overrides_apply_with_yaml_typing():
    c = load_config(
        "default",
        [
            "train.steps=2000",
            "train.lr=3e-4",
            "objective.sigma=0.05",
            "objective.beta=4",
            "model.decoder=deconv",
            "data.preset=dsprites",
            "model.broadcast=valid",
            "data.image_size=48",
            "train.seed=7",
        ],
    )
    assert c.train.steps == 2000 and type(c.train.steps) is int
    assert c.train.lr == pytest.approx(3e-4) and type(c.train.lr) is float
    assert c.objective.sigma == 0.05
    assert c.objective.beta == 4.0 and type(c.objective.beta) is float  # int accepted as float
    assert c.model.decoder == "deconv"
    assert c.data.preset == "dsprites"
    assert c.model.broadcast == "valid"
    assert c.data.image_size == 48
    assert c.train.seed == 7
    # Untouched values keep the preset's.
    assert c.train.batch_size == load_config("default").train.batch_size


def test_later_override_wins_and_spaces_are_tolerated():
    c = load_config("default", ["train.steps=10", " train.steps = 20"])
    assert c.train.steps == 20


def test_parse_override():
    assert parse_override("train.lr=1.0e-3") == ("train.lr", 1.0e-3)
    assert parse_override("model.decoder=sbd") == ("model.decoder", "sbd")
    assert parse_override("a.b=true") == ("a.b", True)
    assert parse_override("a.b=x=y") == ("a.b", "x=y")  # split at the first '='


def test_yaml_file_and_round_trip(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("train:\n  steps: 12\n  lr: 1e-3\nmodel:\n  decoder: deconv\n")
    c = load_config(str(path))
    assert c.train.steps == 12 and c.train.lr == pytest.approx(1e-3)
    assert c.model.decoder == "deconv"
    assert c.data == Config().data  # missing sections take the dataclass defaults
    saved = tmp_path / "saved.yaml"
    save_config(c, saved)
    assert load_config(str(saved)) == c
    assert build_config(c.to_dict()) == c


def test_empty_yaml_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config(str(path)) == Config()


def _error(*overrides: str, config: str | None = "default") -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config, list(overrides))
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.stepz=5", ["unknown config key", "train.stepz"]),
        ("model.layers=3", ["unknown config key", "model.layers"]),
        ("trian.steps=5", ["unknown config section", "trian"]),
        ("train.steps=abc", ["train.steps", "int", "abc"]),
        ("train.steps=true", ["train.steps", "int", "True"]),
        ("train.steps=2.5", ["train.steps", "int"]),
        ("train.lr=fast", ["train.lr", "float", "fast"]),
        ("objective.sigma=yes", ["objective.sigma", "float"]),
        ("data.preset=5", ["data.preset", "str"]),
        ("model.decoder=mlp", ["model.decoder", "sbd", "deconv", "mlp"]),
        ("objective.likelihood=laplace", ["objective.likelihood", "laplace"]),
        ("data.preset=mnist", ["data.preset", "mnist", "unknown"]),
        ("data.image_size=40", ["data.image_size", "divisible by 16", "40"]),
        ("data.image_size=0", ["data.image_size", "positive"]),
        ("data.image_size=-32", ["data.image_size", "positive"]),
        ("data.val_size=0", ["data.val_size", "positive"]),
        ("model.latent_dim=0", ["model.latent_dim", "positive"]),
        ("model.sbd_layers=-1", ["model.sbd_layers", "positive"]),
        ("train.steps=0", ["train.steps", "positive"]),
        ("train.steps=-5", ["train.steps", "positive"]),
        ("train.batch_size=0", ["train.batch_size", "positive"]),
        ("train.lr=0", ["train.lr", "positive"]),
        ("objective.sigma=0", ["objective.sigma", "positive"]),
        ("objective.sigma=-0.1", ["objective.sigma", "positive"]),
        ("objective.beta=-1", ["objective.beta", ">= 0"]),
        ("objective.kl_warmup=-5", ["objective.kl_warmup", ">= 0"]),
        ("train.lr_warmup=-1", ["train.lr_warmup", ">= 0"]),
        ("train.lr_decay_steps=-1", ["train.lr_decay_steps", "train.lr_warmup"]),
        ("train.lr_final=1.5", ["train.lr_final", "[0, 1]"]),
        ("train.adam_beta2=1", ["train.adam_beta2", "[0, 1)"]),
        ("train.adam_eps=0", ["train.adam_eps", "positive"]),
        ("train.seed=-1", ["train.seed"]),
        ("train.threads=-2", ["train.threads"]),
        ("train.micro_batch=-1", ["train.micro_batch"]),
        ("train.micro_batch=5", ["train.micro_batch", "divide", "32"]),
        ("foo", ["'foo'", "section.key=value"]),
        ("steps=5", ["steps", "section.key"]),
        ("a.b.c=5", ["a.b.c", "section.key"]),
    ],
)
def test_bad_override_raises_config_error(override, words):
    message = _error(override)
    for word in words:
        assert word in message, (word, message)


def test_lr_decay_must_end_after_the_warm_up():
    with pytest.raises(ConfigError, match=r"lr_decay_steps must be 0 \(off\) or more than train.lr_warmup \(10\)"):
        load_config("default", ["train.lr_warmup=10", "train.lr_decay_steps=10"])
    assert load_config("default", ["train.lr_warmup=10", "train.lr_decay_steps=11"]).train.lr_decay_steps == 11


def test_micro_batch_at_least_the_batch_means_the_whole_batch():
    assert load_config("default", ["train.batch_size=8"]).train.micro_batch == 16  # preset's 16 > 8: fine
    assert load_config("default", ["train.micro_batch=64"]).train.micro_batch == 64


def test_even_kernel_needs_valid_broadcast():
    message = _error("model.sbd_kernel=4", "model.broadcast=same")
    assert "model.sbd_kernel" in message and "odd" in message
    assert load_config("default", ["model.sbd_kernel=4", "model.broadcast=valid"]).model.sbd_kernel == 4


def test_missing_config_file(tmp_path):
    message = _error(config=str(tmp_path / "nope.yaml"))
    assert "config file not found" in message and "nope.yaml" in message
    assert "default" in message and "paper" in message  # names the presets


def test_unknown_preset_name_is_a_missing_file():
    assert "config file not found" in _error(config="papr")


@pytest.mark.parametrize(
    "text, words",
    [
        ("- 1\n- 2\n", ["must hold a mapping", "list"]),
        ("just a string\n", ["must hold a mapping", "str"]),
        ("train: [unclosed\n", ["not valid YAML"]),
        ("train:\n  steps: 5\n   lr: 1\n", ["not valid YAML"]),
        ("train: 5\n", ["section 'train'", "mapping"]),
        ("optim:\n  lr: 1\n", ["unknown config section", "optim"]),
        ("train:\n  epochs: 5\n", ["unknown config key", "train.epochs"]),
    ],
)
def test_bad_yaml_file(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    message = _error(config=str(path))
    for word in words:
        assert word in message, (word, message)


def test_override_into_non_mapping_section(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: 5\n")
    message = _error("train.steps=3", config=str(path))
    assert "train" in message and "mapping" in message


def test_build_config_rejects_non_mapping_section():
    with pytest.raises(ConfigError, match="model"):
        build_config({"model": [1, 2]})


# The config fields that change neither what a run computes nor its length, as listed by hand
# before they were marked where they are defined: every committed run keeps its identity.
EXECUTION_KEYS = ("threads", "channels_last", "compile", "micro_batch")
BOOKKEEPING_KEYS = (
    "log_every",
    "eval_every",
    "checkpoint_every",
    "mig_every",
    "mig_samples",
    "fidelity_every",
    "fidelity_samples",
)


def test_every_config_field_says_whether_it_is_part_of_a_runs_identity():
    assert {f.name for f in dataclasses.fields(Config)} == set(SECTIONS)  # every section is listed
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            role = f.metadata.get("role")
            assert role in ROLES, f"{section}.{f.name} is not classified (use identity(), length(), ...)"
            assert role in (IDENTITY, LENGTH) or f.metadata.get("why"), f"{section}.{f.name} needs a why"


def test_the_fields_outside_a_runs_identity_are_the_ones_listed_before():
    roles = field_roles()
    execution_keys = {("train", k) for k in EXECUTION_KEYS} | {("data", "cache")}  # data.cache: issue 18
    assert {key for key, role in roles.items() if role == EXECUTION} == execution_keys
    assert {key for key, role in roles.items() if role == BOOKKEEPING} == {("train", k) for k in BOOKKEEPING_KEYS}
    assert {key for key, role in roles.items() if role == LENGTH} == {("train", "steps")}


def test_run_identity_ignores_length_execution_and_bookkeeping_only():
    base = load_config("default").to_dict()
    same = load_config(
        "default",
        [
            "train.steps=7",
            "train.threads=3",
            "train.compile=true",
            "train.log_every=5",
            "train.mig_every=2",
            "train.micro_batch=8",
        ],
    ).to_dict()
    assert base != same and run_identity(base) == run_identity(same)
    for override in ("train.seed=3", "objective.beta=4", "model.decoder=deconv", "data.val_size=8", "train.lr=2e-4"):
        assert run_identity(load_config("default", [override]).to_dict()) != run_identity(base), override


def test_a_preset_extends_another_key_by_key():
    long, default = load_config("long"), load_config("default")
    assert long.train.steps > default.train.steps and long.train.lr_decay_steps == long.train.steps
    assert (long.model, long.objective, long.data) == (default.model, default.objective, default.data)
    assert long.train.lr == default.train.lr and long.train.micro_batch == default.train.micro_batch


def test_the_scenes_preset_is_the_default_with_a_deeper_sbd_on_a_3d_scene():
    scenes, default = load_config("scenes"), load_config("default")
    assert scenes.data.preset == "objects_room" and scenes.model.sbd_layers > default.model.sbd_layers
    assert scenes.train == default.train and scenes.objective == default.objective
    assert dataclasses.replace(scenes.model, sbd_layers=default.model.sbd_layers) == default.model
    assert load_config("scenes", ["data.preset=chairs"]).data.preset == "chairs"


@pytest.mark.parametrize("target", ["nonsense", "mine"])
def test_extends_must_name_another_built_in_preset(target, tmp_path):
    path = tmp_path / "mine"
    path.write_text(f"extends: {target}\ntrain: {{steps: 5}}\n")
    with pytest.raises(ConfigError, match="extends must name another built-in preset"):
        load_config(str(path))
    path.write_text("extends: default\ntrain: {steps: 5}\n")
    assert load_config(str(path)).train.steps == 5 and load_config(str(path)).model.sbd_channels == 32
