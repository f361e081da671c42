"""Expected wall time of every `sbvae reproduce` experiment with `--jobs 2`, from training rates
measured side by side.

    .venv/bin/python benchmarks/study_wall_time.py [--repeats 15] [--sbd-rate 329 --deconv-rate 500]

Every distinct recipe the experiments train (a run's config without its seed) has its training
step timed on one thread, interleaved round by round with the others (`sbvae.bench`'s
`recipe_benchmark`), after the 3D scenes' lookup tables are filled: a run ray-casts each
combination once, which is timed here and added to each run on that scene. A recipe's rate is
read as a ratio to the cpu preset's run of the same decoder, then scaled to the rate given for
that decoder (default: as measured here), so a busy machine predicts a quiet one from its
ratios. An experiment's runs then go, in the study's order, each to the first free of two slots
(what `--jobs 2` does); a run that another experiment makes with the same config is counted
again "alone" and as free "after colored-sprites", whose runs beta-sweep, factor-vae and
sbd-capacity use where they lie; an experiment whose claims need equal-time snapshots
(held-out) then trains each SBD again for as long as its DeConv twin trained. Evaluation is not
counted.
"""

from __future__ import annotations

import argparse
import heapq
import json
import time
from collections.abc import Sequence
from typing import Any

import torch

from sbvae.bench import format_recipes, recipe_benchmark
from sbvae.config import Config, load_config, run_identity
from sbvae.data import SceneDataset, build_dataset
from sbvae.study.equal_time import CHECKPOINT_METRICS
from sbvae.study.experiments import Experiment, RunSpec, experiment_names, load_experiment, plan

BASE = "cpu"
REFERENCE = "colored-sprites"


def _flat(config: Config) -> dict[str, Any]:
    identity = run_identity(config.to_dict())
    identity["train"].pop("seed")
    return {f"{section}.{key}": value for section, values in identity.items() for key, value in values.items()}


def recipe(config: Config) -> str:
    """A run's config as `sbvae bench --recipe` takes it: the cpu preset and what differs."""
    base = _flat(load_config(BASE))
    changed = [f"{k}={v}" for k, v in _flat(config).items() if v is not None and base.get(k) != v]
    return " ".join([BASE, *changed])


def distinct_runs(experiment: Experiment) -> list[RunSpec]:
    """The experiment's runs, each once (a run shared by several sweep values is planned under each)."""
    return list({spec.name: spec for spec in plan(experiment)}.values())


def fill_scene_tables(configs: Sequence[Config]) -> dict[str, float]:
    """Ray-cast every combination of each 3D scene the configs train on; seconds per scene."""
    seconds = {}
    for config in configs:
        data = build_dataset(config.data)
        if isinstance(data, SceneDataset) and config.data.preset not in seconds:
            memo = data.renderer.memo
            tick = time.perf_counter()
            memo(torch.arange(memo.size))
            seconds[config.data.preset] = spent = time.perf_counter() - tick
            print(f"{config.data.preset}: every combination ray-cast in {spent:.0f} s", flush=True)
    return seconds


def two_slots(minutes: Sequence[float]) -> float:
    """The wall time of runs of these lengths, in this order, each to the first free of two slots."""
    slots = [0.0, 0.0]
    for length in minutes:
        heapq.heappush(slots, heapq.heappop(slots) + length)
    return max(slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per recipe")
    parser.add_argument("--sbd-rate", type=float, help="images/s of the cpu preset's SBD run (default: as measured)")
    parser.add_argument("--deconv-rate", type=float, help="the same for its DeConv run")
    parser.add_argument("--json", help="also write the rates and ray-casting times to this file")
    parser.add_argument("--measured", help="a file --json wrote: use its rates instead of measuring again")
    args = parser.parse_args()
    torch.set_num_threads(1)

    experiments = {name: load_experiment(name) for name in experiment_names()}
    runs = {name: distinct_runs(e) for name, e in experiments.items()}
    recipes = {recipe(spec.config): spec.config for specs in runs.values() for spec in specs}
    if args.measured:
        with open(args.measured) as handle:
            saved = json.load(handle)
        rates, cast = saved["rates"], saved["ray_cast_seconds"]
    else:
        cast = fill_scene_tables(list(recipes.values()))
        rates = recipe_benchmark(list(recipes), args.repeats, log=lambda line: print(line, flush=True))
    print(format_recipes(rates))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rates": rates, "ray_cast_seconds": cast}, handle, indent=2)

    bases = {d: recipe(load_config(BASE, [f"model.decoder={d}"])) for d in ("sbd", "deconv")}
    measured = {d: rates[spec]["images_per_sec"] for d, spec in bases.items()}
    wanted = {"sbd": args.sbd_rate or measured["sbd"], "deconv": args.deconv_rate or measured["deconv"]}
    faster = wanted["sbd"] / measured["sbd"]  # the machine predicted for, against this one

    def minutes(spec: RunSpec) -> float:
        c = spec.config
        rate = rates[recipe(c)]["images_per_sec"] / measured[spec.decoder] * wanted[spec.decoder]
        return (c.train.steps * c.train.batch_size / rate + cast.get(c.data.preset, 0.0) / faster) / 60

    reference = {json.dumps(run_identity(s.config.to_dict()), sort_keys=True) for s in runs[REFERENCE]}
    print(f"\nrates used: SBD {wanted['sbd']:.0f}, DeConv {wanted['deconv']:.0f} images/s (cpu preset, one thread)\n")
    print(f"| experiment | runs | thread-minutes | wall min, --jobs 2, alone | after {REFERENCE} |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, specs in runs.items():
        alone = [minutes(s) for s in specs]
        shared = [json.dumps(run_identity(s.config.to_dict()), sort_keys=True) in reference for s in specs]
        after = [0.0 if is_shared and name != REFERENCE else m for m, is_shared in zip(alone, shared)]
        snapshots = []  # each SBD trained again for as long as its DeConv twin trained
        if any(c.metric in CHECKPOINT_METRICS for c in experiments[name].claims):
            snapshots = [m for s, m in zip(specs, alone) if s.decoder == "deconv"]
        extra = two_slots(snapshots)
        print(
            f"| {name} | {len(specs)} | {sum(alone) + sum(snapshots):.0f} | {two_slots(alone) + extra:.0f} "
            f"| {two_slots(after) + extra:.0f} |"
        )


if __name__ == "__main__":
    main()
