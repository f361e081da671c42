"""Freed memory kept in the process (``sbvae.allocator``) against glibc's defaults, side by side.

    .venv/bin/python benchmarks/freed_memory.py [--rounds 3] [--repeats 15] [--threads N]

Each case runs in a fresh process, once with sbvae's setting and once with
``SBVAE_KEEP_FREED_MEMORY=0`` (glibc's defaults), alternating for ``--rounds`` rounds. A process
warms up, then times ``--repeats`` calls and counts the page faults (minor faults, from
``getrusage``) they took. Printed per case: the median seconds of a call under each setting
over every round, their ratio, and the page faults per call. The cases are what sbvae spends
its time in: the ``default`` preset's training step (SBD and DeConv), the sprite renderer at
64 px (256 images, as ``sbvae bench``), a fresh batch of 64 ``chairs`` and ``objects_room``
images at 32 px, and encoding 256 sprites at 64 px for the evaluation (the paper's SBD model).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

CASES = ("train sbd", "train deconv", "render 64px", "cast chairs 32px", "cast objects_room 32px", "encode 64px")


def workload(case: str) -> Callable[[], object]:
    """The call a case times (imports here, after the worker's environment is set)."""
    import torch

    from sbvae.bench import PAPER_SBD, SceneCase, TrainCase
    from sbvae.config import load_config
    from sbvae.data import make_dataset, make_generator
    from sbvae.evaluation.sampling import GroundTruthSampler
    from sbvae.models import build_vae

    if case.startswith("train"):
        decoder = case.split()[1]
        return TrainCase(case, load_config("default", [f"model.decoder={decoder}"])).step
    if case.startswith("cast"):
        return SceneCase(case.split()[1], 32).cast
    data = make_dataset("colored_sprites", 64)
    values = data.factors.sample(256, make_generator(0, "bench-render"))
    if case == "render 64px":
        return lambda: data.render(values)
    sampler = GroundTruthSampler(data, build_vae(PAPER_SBD, 64, 3).eval(), torch.device("cpu"))
    return lambda: sampler.encode_values(values)


def worker(case: str, repeats: int, threads: int) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    call = workload(case)
    for _ in range(3):
        call()
    seconds = []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / repeats
    print(json.dumps({"seconds": seconds, "faults": faults}))


def run(case: str, keep: bool, repeats: int, threads: int) -> dict:
    env = dict(os.environ, SBVAE_KEEP_FREED_MEMORY="1" if keep else "0")
    command = [sys.executable, __file__, "--worker", case, "--repeats", str(repeats), "--threads", str(threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.repeats, args.threads)
        return
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.rounds} rounds of {args.repeats} calls")
    print("| case | kept, s | glibc default, s | speed-up | page faults a call, kept | glibc default |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for case in CASES:
        results: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(args.rounds):
            for keep in (True, False):
                results[keep].append(run(case, keep, args.repeats, args.threads))
        median = {k: statistics.median(s for r in v for s in r["seconds"]) for k, v in results.items()}
        faults = {k: statistics.median(r["faults"] for r in v) for k, v in results.items()}
        print(
            f"| {case} | {median[True]:.4f} | {median[False]:.4f} | {median[False] / median[True]:.2f}x "
            f"| {faults[True]:,.0f} | {faults[False]:,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
