"""What each long metric would add to a run of ``sbvae reproduce``, measured on one thread.

    .venv/bin/python benchmarks/study_evaluation_cost.py [--config cpu] [--num-train 10000]

``sbvae reproduce --jobs 2`` trains and evaluates every run on one thread. This times on one
thread, interleaved round by round, a training step of the preset's SBD and of its DeConv (the
step ``sbvae train`` runs) and the evaluation's render-and-encode, and times a short fit of DCI's
trees on encoded samples; then it prints, for each long metric at disentanglement_lib's counts
and for the FactorVAE score at the votes a study uses, its minutes per run and their share of
each decoder's training time. Minutes are this machine's at
this load; the shares hold whatever the load, as training and encoding are timed side by side
(DCI's fit just after them).
"""

from __future__ import annotations

import argparse

import torch
from evaluate_timing import median_seconds

from sbvae.bench import TrainCase, recipe_config
from sbvae.data import make_dataset, make_generator
from sbvae.evaluation.evaluate import SAMPLER_METRICS, images_encoded
from sbvae.evaluation.metrics import estimate_fit_seconds
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.study.runner import study_votes

STEPS = 4
"""Training steps per timed round."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cpu", help="the preset the study trains (default cpu)")
    parser.add_argument("--num-train", type=int, default=10_000, help="as sbvae reproduce takes it (test: half)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = {d: TrainCase(d, recipe_config(f"{args.config} model.decoder={d}")) for d in ("sbd", "deconv")}
    config = cases["sbd"].config
    data = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
    model = cases["sbd"].trainer.model
    sampler = GroundTruthSampler(data, model, torch.device("cpu"))
    values = sampler.sample_values(1024, make_generator(0, "benchmark"))

    def encode() -> None:
        model.eval()
        sampler.encode_values(values)

    runs = {d: lambda case=case: [case.step() for _ in range(STEPS)] for d, case in cases.items()}
    seconds = median_seconds({**runs, "encode": encode})
    train_minutes = {d: config.train.steps * seconds[d] / STEPS / 60 for d in cases}
    num_test, votes = max(2, args.num_train // 2), study_votes(args.num_train)
    counts = images_encoded(SAMPLER_METRICS, args.num_train, num_test)
    study = images_encoded(["factor_vae"], args.num_train, num_test, votes)["factor_vae"]
    counts[f"factor_vae at {votes[0]:,} + {votes[1]:,} votes"] = study
    minutes = {name: count * seconds["encode"] / len(values) / 60 for name, count in counts.items()}
    codes, labels = sampler.codes_and_labels(args.num_train, make_generator(0, "benchmark"))
    minutes["dci"] = estimate_fit_seconds(codes, labels, n_jobs=1) / 60
    print(
        f"{config.data.preset} at {config.data.image_size} px, one thread; training {config.train.steps:,} steps: "
        + ", ".join(f"{d} {m:.1f} min" for d, m in train_minutes.items())
    )
    for name, value in minutes.items():
        shares = ", ".join(f"{100 * value / train_minutes[d]:.0f}% of a {d} run's training" for d in cases)
        print(f"{name:<32}{value:6.1f} min per run: {shares}")


if __name__ == "__main__":
    main()
