"""Time every stage of ``sbvae evaluate`` on a trained run against its floor, and print a table.

    .venv/bin/python benchmarks/evaluate_timing.py RUN_DIR [--metrics all] [--num-train 10000]

Runs exactly what ``sbvae evaluate RUN_DIR`` runs (same defaults, same code path) but writes
nothing into the run folder. The floor of a stage is what it cannot do without: the encoder's
forward pass over every image the stage encodes, at the batch size that runs fastest (measured
in the same run, before the evaluation), and for DCI its tree fits (as timed in the processes
that ran them) spread over every core. Each stage's line and the total's give the seconds, the
floor and their ratio (``ratio to floor``). It also prints peak resident memory after encoding
a small and a large sample (equal peaks show that encoding streams in bounded batches).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable

import numpy as np
import torch
from joblib import effective_n_jobs

from sbvae.data import make_dataset, make_generator
from sbvae.evaluation.evaluate import evaluate_model, images_encoded, parse_metric_names
from sbvae.evaluation.fidelity import FIDELITY_SAMPLES
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.training.device import select_device
from sbvae.training.run_folder import load_model

BATCH_SIZES = (64, 128, 256, 512, 1024)
TEST_IMAGES = 2_000
"""Images of the reconstruction stage (``evaluate_model``'s default)."""


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def median_seconds(runs: dict[str, Callable[[], object]], rounds: int = 5) -> dict[str, float]:
    """Median seconds of each callable over ``rounds`` rounds that run every one in turn (after
    a warm-up round), so a change in the machine's load touches all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(rounds + 1):
        for name, run in runs.items():
            tick = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - tick)
    return {name: float(np.median(t)) for name, t in times.items()}


def forward_rates(sampler: GroundTruthSampler, count: int = 2048) -> dict[str, float]:
    """Images/s, side by side: the encoder's forward pass alone at each of ``BATCH_SIZES``, the
    renderer alone, and the sampler's render-and-encode."""
    values = sampler.sample_values(count, make_generator(0, "benchmark"))
    images = sampler.dataset.render(values, sampler.device)

    def forward(batch: int) -> Callable[[], object]:
        return lambda: [sampler.model.encoder(images[s : s + batch]) for s in range(0, count, batch)]

    size = sampler.batch
    runs = {f"forward {b}": forward(b) for b in BATCH_SIZES}
    runs[f"render {size}"] = lambda: [sampler.dataset.render(values[s : s + size]) for s in range(0, count, size)]
    runs[f"render+encode {size}"] = lambda: sampler.encode_values(values)
    with torch.inference_mode():
        return {name: count / seconds for name, seconds in median_seconds(runs).items()}


def stage_floors(
    timings: dict[str, float], images: dict[str, int], forward_rate: float, cores: int
) -> dict[str, float]:
    """Floor seconds of each timed stage (0 where the floor counts nothing)."""
    floors = {stage: images.get(stage, 0) / forward_rate for stage in timings}
    if "dci" in timings:
        floors["dci"] = timings["dci_trees"] / cores
    return floors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--metrics", default="all")
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-test", type=int, default=5_000)
    parser.add_argument("--fidelity-samples", type=int, default=FIDELITY_SAMPLES)
    parser.add_argument("--device")
    args = parser.parse_args()
    device = select_device(args.device)
    config, model, state = load_model(args.run_dir, device)
    data = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
    cores = effective_n_jobs(-1)
    print(
        f"run {args.run_dir} (step {state['step']}), {config.data.preset} at {config.data.image_size} px, "
        f"device {device}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f} on {cores} cores"
    )

    sampler = GroundTruthSampler(data, model, device)
    generator = make_generator(0, "benchmark")
    for n in (1_000, 20_000):
        tick = time.perf_counter()
        sampler.codes_and_labels(n, generator)
        print(f"encode {n:>6,} samples: {time.perf_counter() - tick:6.1f} s, peak RSS so far {peak_rss_gb():.2f} GB")
    rates = forward_rates(sampler)
    print("images/s, medians side by side: " + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items()))

    names = parse_metric_names(args.metrics)
    result = evaluate_model(
        config,
        model,
        device,
        names,
        num_train=args.num_train,
        num_test=args.num_test,
        log=lambda line: print("  " + line, flush=True),
        fidelity_samples=args.fidelity_samples,
    )
    after = forward_rates(sampler)  # again: the floor takes the fastest forward pass of either
    print("\nimages/s after the evaluation: " + ", ".join(f"{name} {rate:,.0f}" for name, rate in after.items()))
    forward_rate = max(rate for name, rate in [*rates.items(), *after.items()] if name.startswith("forward"))
    timings = dict(result["timings"])
    images = {"reconstruction": TEST_IMAGES, **images_encoded(names, args.num_train, args.num_test)}
    if "fidelity" in names:
        images["fidelity"] = args.fidelity_samples
    floors = stage_floors(timings, images, forward_rate, cores)
    timings.pop("dci_trees", None)  # the fits' own seconds, inside the dci stage
    print(f"\nfloor: the encoder alone at {forward_rate:,.0f} images/s; DCI's fits over {cores} cores")
    print(f"{'stage':<16}{'seconds':>10}{'images':>12}{'floor s':>10}")
    for stage, seconds in timings.items():
        ratio = f"  ratio to floor {seconds / floors[stage]:.2f}" if floors[stage] else ""
        print(f"{stage:<16}{seconds:>10.1f}{images.get(stage, ''):>12}{floors[stage]:>10.1f}{ratio}")
    total, floor = sum(timings.values()), sum(floors[stage] for stage in timings)
    print(
        f"{'total':<16}{total:>10.1f}{'':>12}{floor:>10.1f}  ratio to floor {total / floor:.2f} "
        f"({total / 60:.1f} min); peak RSS {peak_rss_gb():.2f} GB"
    )
    print("\n" + "\n".join(f"{k:<40}{v:.4f}" for k, v in result["scores"].items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
