"""Time every stage of ``sbvae evaluate`` on a trained run and print a table.

    .venv/bin/python benchmarks/evaluate_timing.py RUN_DIR [--metrics all] [--num-train 10000]

Runs exactly what ``sbvae evaluate RUN_DIR`` runs (same defaults, same code path) but writes
nothing into the run folder. Besides each metric's seconds it prints how many images each
stage rendered and encoded, the encoder's own forward throughput measured in the same run
(the floor for the sampler metrics, which render and encode about 3 million images at
disentanglement_lib's defaults), and peak resident memory after encoding a small and a large
sample (equal peaks show that encoding streams in bounded batches).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable

import numpy as np
import torch

from sbvae.data import make_dataset, make_generator
from sbvae.evaluation.evaluate import evaluate_model, parse_metric_names
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.training.device import select_device
from sbvae.training.run_folder import load_model


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def images_per_stage(num_train: int, num_test: int, batch: int = 64) -> dict[str, int]:
    """Images each stage renders and encodes at these sample counts (see the metric modules)."""
    return {
        "encode": num_train + num_test,
        "factor_vae": num_train + (num_train + num_test) * batch,
        "beta_vae": (num_train + num_test) * 2 * batch,
    }


def median_rate(count: int, run: Callable[[], object], repeats: int = 5) -> float:
    """Items/s of ``run`` (which handles ``count`` items): median of ``repeats`` after a warm-up."""
    run()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        run()
        times.append(time.perf_counter() - tick)
    return count / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--metrics", default="all")
    parser.add_argument("--num-train", type=int, default=10_000)
    parser.add_argument("--num-test", type=int, default=5_000)
    parser.add_argument("--device")
    args = parser.parse_args()
    device = select_device(args.device)
    config, model, state = load_model(args.run_dir, device)
    data = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
    print(
        f"run {args.run_dir} (step {state['step']}), {config.data.preset} at {config.data.image_size} px, "
        f"device {device}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )

    sampler = GroundTruthSampler(data, model, device)
    generator = make_generator(0, "benchmark")
    for n in (1_000, 20_000):
        tick = time.perf_counter()
        sampler.codes_and_labels(n, generator)
        print(f"encode {n:>6,} samples: {time.perf_counter() - tick:6.1f} s, peak RSS so far {peak_rss_gb():.2f} GB")
    values = data.factors.sample(sampler.batch_size, generator)
    batch = data.render(values, device)
    with torch.inference_mode():
        forward = median_rate(len(batch), lambda: model.encoder(batch))
    render = median_rate(len(values), lambda: data.render(values, device))
    print(
        f"batches of {sampler.batch_size}: encoder forward alone {forward:,.0f} img/s, "
        f"renderer alone {render:,.0f} img/s"
    )

    names = parse_metric_names(args.metrics)
    result = evaluate_model(
        config,
        model,
        device,
        names,
        num_train=args.num_train,
        num_test=args.num_test,
        log=lambda line: print("  " + line, flush=True),
    )
    images = images_per_stage(args.num_train, args.num_test)
    print(f"\n{'stage':<16}{'seconds':>10}{'images':>12}{'img/s':>10}")
    for stage, seconds in result["timings"].items():
        count = images.get(stage)
        rate = f"{count / seconds:,.0f}" if count else ""
        print(f"{stage:<16}{seconds:>10.1f}{count or '':>12}{rate:>10}")
    total = sum(result["timings"].values())
    print(f"{'total':<16}{total:>10.1f}   ({total / 60:.1f} min); peak RSS {peak_rss_gb():.2f} GB")
    print("\n" + "\n".join(f"{k:<40}{v:.4f}" for k, v in result["scores"].items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
