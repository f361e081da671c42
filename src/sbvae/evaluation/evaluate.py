"""Evaluate a trained run: reconstruction and ELBO on a test set, per-latent KL, the
disentanglement metrics and the fidelity of reconstructions (:mod:`sbvae.evaluation.fidelity`),
written to ``RUN_DIR/metrics.json``.

Sample counts default to disentanglement_lib's study defaults: 10,000 training and 5,000
test points for the array metrics; for the FactorVAE score 10,000 samples for the global
variances and 10,000 + 5,000 votes; for the BetaVAE score 10,000 + 5,000 points. The one
``num_train`` / ``num_test`` pair sets all of them unless ``votes`` sets the votes and points
of the two sampler scores apart (``sbvae reproduce`` uses fewer).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbvae.config import Config
from sbvae.data import GroundTruthDataset, build_dataset, make_generator, require_ground_truth
from sbvae.errors import UserError
from sbvae.evaluation import metrics
from sbvae.evaluation.fidelity import FIDELITY_SAMPLES, parse_factors, run_fidelity
from sbvae.evaluation.probe import PROBE_SEED, PROBE_VERSION
from sbvae.evaluation.sampling import EncodeValues, GroundTruthSampler, Representation
from sbvae.models import VAE
from sbvae.training.device import select_device
from sbvae.training.run_folder import RunPaths, atomic_write_json, load_model
from sbvae.training.validation import elbo_statistics

ARRAY_METRICS = ("mig", "dci", "sap", "modularity", "unsupervised")
SAMPLER_METRICS = ("factor_vae", "beta_vae")
MODEL_METRICS = ("fidelity",)
"""Scores that need the decoder too, not only codes."""
ALL_METRICS = ARRAY_METRICS + SAMPLER_METRICS + MODEL_METRICS
TEST_IMAGES = 2_000
"""The test images whose reconstruction ``metrics.json`` reports."""


def parse_metric_names(text: str | Sequence[str] | None) -> list[str]:
    """``"mig,dci"`` or a list -> validated names; ``None`` or ``"all"`` -> every metric."""
    if text is None or text == "all":
        return list(ALL_METRICS)
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [n for n in names if n not in ALL_METRICS]
    if unknown or not names:
        raise UserError(f"unknown metric {', '.join(unknown) or '(none given)'} (known: {', '.join(ALL_METRICS)})")
    return names


def library_versions() -> dict[str, str]:
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }


VOTE_BATCH = 64
"""Images per FactorVAE vote and per half of a BetaVAE point (disentanglement_lib's default)."""
LONG_METRICS = ("dci", *SAMPLER_METRICS)
"""Metrics that take minutes at disentanglement_lib's counts: ``compute_metrics`` estimates
their time before it starts and logs their progress."""


def _needs_test(names: Sequence[str]) -> bool:
    return any(n in ("dci", "sap", "modularity") for n in names)


def images_encoded(
    names: Sequence[str], num_train: int, num_test: int, votes: tuple[int, int] | None = None
) -> dict[str, int]:
    """Images each stage of ``compute_metrics`` renders and encodes (see the metric modules)."""
    counts = {}
    if any(n in ARRAY_METRICS for n in names):
        counts["encode"] = num_train + (num_test if _needs_test(names) else 0)
    all_votes = sum(votes or (num_train, num_test))
    if "factor_vae" in names:
        counts["factor_vae"] = num_train + all_votes * VOTE_BATCH
    if "beta_vae" in names:
        counts["beta_vae"] = all_votes * 2 * VOTE_BATCH
    return counts


def _quiet(_: str) -> None:
    """The log of a caller that gave none."""


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _array_metric(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    seed: int,
    log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, float]]:
    """The metric's scores, and for DCI the seconds its tree fits took in all (``dci_trees``)."""
    (c_train, l_train), (c_test, l_test) = train, test
    if name == "mig":
        return metrics.mig(c_train, l_train), {}
    if name == "dci":
        total = l_train.shape[1]
        progress = lambda done: log(f"dci: {done} of {total} factors fitted")
        fits = metrics.fit_factors(c_train, l_train, c_test, l_test, seed, n_jobs=-1, on_fit=progress)
        return metrics.dci_from_fits(fits), {"dci_trees": sum(f.seconds for f in fits)}
    if name == "sap":
        return metrics.sap(c_train, l_train, c_test, l_test), {}
    if name == "modularity":
        return metrics.modularity_explicitness(c_train, l_train, c_test, l_test), {}
    if name == "unsupervised":
        return metrics.unsupervised_scores(c_train), {}
    raise KeyError(name)


def _with_progress(encode: EncodeValues, name: str, total: int, log: Callable[[str], None]) -> EncodeValues:
    """``encode`` that logs, at every quarter of ``total`` images, how far ``name`` is."""
    start, done = time.perf_counter(), 0

    def counted(values: torch.Tensor) -> np.ndarray:
        nonlocal done
        codes = encode(values)
        before, done = done, done + len(values)
        if done < total and 4 * done // total > 4 * before // total:
            left = (time.perf_counter() - start) * (total - done) / done
            log(f"{name}: {done / total:.0%} of {total:,} images, about {_duration(left)} left")
        return codes

    return counted


def estimate_seconds(
    names: Sequence[str],
    num_train: int,
    num_test: int,
    images_per_second: float,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    votes: tuple[int, int] | None = None,
) -> dict[str, float]:
    """Seconds each long stage of ``compute_metrics`` should take: its images at
    ``images_per_second`` (rendered and encoded) and, given the train codes and labels, DCI's
    trees on every core (from a short timed fit)."""
    counts = images_encoded(names, num_train, num_test, votes)
    estimate = {name: counts[name] / images_per_second for name in SAMPLER_METRICS if name in names}
    if "dci" in names and train is not None:
        estimate["dci"] = metrics.estimate_fit_seconds(*train, n_jobs=-1)
    return estimate


def compute_metrics(
    sampler: GroundTruthSampler,
    names: Sequence[str],
    seed: int = 0,
    num_train: int = 10_000,
    num_test: int = 5_000,
    log: Callable[[str], None] | None = None,
    votes: tuple[int, int] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Run the named metrics on fresh ground-truth samples; returns (scores, seconds per stage;
    ``dci_trees``: the seconds of DCI's fits added up, inside the ``dci`` stage).

    Sampler-based scores are prefixed (``factor_vae_eval_accuracy``); the array metrics keep
    disentanglement_lib's names (``discrete_mig``, ``dci_disentanglement``, ...). Given a
    ``log`` and a long metric among ``names``, it logs an estimate of their time first (from a
    short measurement), then their progress. ``votes``: the training and evaluation votes of the
    FactorVAE score and points of the BetaVAE score (default ``num_train`` and ``num_test``).
    """
    log = log or _quiet
    scores: dict[str, Any] = {}
    timings: dict[str, float] = {}
    generator = make_generator(seed, "metrics")
    num_factors = len(sampler.dataset.factor_names)
    array_names = [n for n in names if n in ARRAY_METRICS]
    train = test = None
    if array_names:
        tick = time.perf_counter()
        train = sampler.codes_and_labels(num_train, generator)
        test = sampler.codes_and_labels(num_test, generator) if _needs_test(array_names) else train
        timings["encode"] = time.perf_counter() - tick
        log(f"encoded {num_train:,} + {num_test:,} samples in {timings['encode']:.1f} s")
    if log is not _quiet and any(n in LONG_METRICS for n in names):
        rate = sampler.images_per_second(make_generator(seed, "estimate"))
        estimate = estimate_seconds(names, num_train, num_test, rate, train, votes)
        parts = ", ".join(f"{name} {_duration(seconds)}" for name, seconds in estimate.items())
        log(f"estimated time: about {_duration(sum(estimate.values()))} ({parts}; {rate:,.0f} images/s)")
    for name in array_names:
        assert train is not None and test is not None
        tick = time.perf_counter()
        try:
            result, extra = _array_metric(name, train, test, seed, log)
        except ValueError as exc:
            raise UserError(f"metric {name}: {exc}") from None
        timings[name] = time.perf_counter() - tick
        scores.update(result)
        timings.update(extra)
        log(f"{name} done in {timings[name]:.1f} s")
    counts = images_encoded(names, num_train, num_test, votes)
    train_votes, eval_votes = votes or (num_train, num_test)
    for name in (n for n in names if n in SAMPLER_METRICS):
        tick = time.perf_counter()
        encode = _with_progress(sampler.encode_values, name, counts[name], log)
        common = (sampler.sample_values, encode, generator, num_factors)
        if name == "factor_vae":
            result = metrics.factor_vae_score(
                *common, VOTE_BATCH, num_train=train_votes, num_eval=eval_votes, num_variance_estimate=num_train
            )
        else:
            result = metrics.beta_vae_score(*common, VOTE_BATCH, num_train=train_votes, num_eval=eval_votes, seed=seed)
        scores.update({f"{name}_{k}": v for k, v in result.items()})
        timings[name] = time.perf_counter() - tick
        log(f"{name} done in {timings[name]:.1f} s")
    return scores, timings


def evaluate_model(
    config: Config,
    model: VAE,
    device: torch.device,
    names: Sequence[str] | None = None,
    representation: Representation = "mean",
    seed: int = 0,
    num_train: int = 10_000,
    num_test: int = 5_000,
    num_test_images: int = TEST_IMAGES,
    log: Callable[[str], None] | None = None,
    fidelity_samples: int = FIDELITY_SAMPLES,
    fidelity_factors: Sequence[str] | None = None,
    votes: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds, for an in-memory model. With the ``fidelity`` metric
    it also holds ``fidelity``: its samples, its probe, and each factor's measure. ``log`` and
    ``votes``: as for ``compute_metrics``."""
    names = parse_metric_names(names)
    data = build_dataset(config.data)
    tick = time.perf_counter()
    test_images = data.fixed_set(num_test_images, config.train.seed, "test", device).images
    reconstruction = elbo_statistics(model, test_images, config.objective, seed)
    timings = {"reconstruction": time.perf_counter() - tick}
    extra: dict[str, Any] = {}
    if isinstance(data, GroundTruthDataset):
        sampler = GroundTruthSampler(data, model, device, representation, noise_seed=seed)
        scores, metric_timings = compute_metrics(sampler, names, seed, num_train, num_test, log, votes)
        factor_names = list(data.factor_names)
        if "fidelity" in names:
            log = log or _quiet
            tick = time.perf_counter()
            fidelity, measures = run_fidelity(config, model, device, fidelity_samples, seed, fidelity_factors, log)
            scores.update(fidelity)
            metric_timings["fidelity"] = time.perf_counter() - tick
            probe = {"seed": PROBE_SEED, "version": PROBE_VERSION}
            extra["fidelity"] = {"samples": fidelity_samples, "probe": probe, "measures": measures}
            log(f"fidelity done in {metric_timings['fidelity']:.1f} s")
    else:  # images without factors: the reconstruction only (`sbvae evaluate` refuses such data)
        names, scores, metric_timings, factor_names = [], {}, {}, []
    return {
        "metrics": names,
        "scores": scores,
        **extra,
        "reconstruction": {"test_images": num_test_images, **reconstruction},
        "factor_names": factor_names,
        "representation": representation,
        "seed": seed,
        "num_train": num_train,
        "num_test": num_test,
        "votes": list(votes or (num_train, num_test)),
        "timings": {**timings, **metric_timings},
        "versions": library_versions(),
    }


def evaluate_run(
    run_dir: str | Path,
    names: Sequence[str] | str | None = None,
    representation: Representation = "mean",
    seed: int = 0,
    num_train: int = 10_000,
    num_test: int = 5_000,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = None,
    fidelity_samples: int | None = None,
    fidelity_factors: str | Sequence[str] | None = None,
    votes: tuple[int, int] | None = None,
    num_test_images: int = TEST_IMAGES,
) -> dict[str, Any]:
    """Evaluate the run's checkpoint and write ``RUN_DIR/metrics.json``; returns its content.
    ``fidelity_samples``: default :data:`FIDELITY_SAMPLES`; ``fidelity_factors`` (``"shape,x"``)
    restricts the fidelity scores to those factors; ``votes``: as for ``compute_metrics``;
    ``num_test_images``: the test images whose reconstruction is measured."""
    fidelity_samples = FIDELITY_SAMPLES if fidelity_samples is None else fidelity_samples
    names = parse_metric_names(names)
    if representation not in ("mean", "sampled"):
        raise UserError(f"representation must be mean or sampled, not {representation!r}")
    if num_train < 2 or num_test < 2:
        raise UserError("--num-train and --num-test must be at least 2")
    if fidelity_samples < 2:
        raise UserError(f"--fidelity-samples must be at least 2, not {fidelity_samples}")
    if fidelity_factors is not None and "fidelity" not in names:
        raise UserError("--fidelity-factors needs the fidelity metric (--metrics fidelity, or all)")
    device = device if isinstance(device, torch.device) else select_device(device)
    config, model, state = load_model(run_dir, device)
    purpose = "the fidelity of reconstructions" if names == ["fidelity"] else "the disentanglement metrics"
    data = require_ground_truth(build_dataset(config.data), purpose)
    factors = parse_factors(fidelity_factors, data)
    result = evaluate_model(
        config,
        model,
        device,
        names,
        representation,
        seed,
        num_train,
        num_test,
        log=log,
        num_test_images=num_test_images,
        fidelity_samples=fidelity_samples,
        fidelity_factors=factors,
        votes=votes,
    )
    result = {"run": str(run_dir), "step": int(state["step"]), **result}
    atomic_write_json(RunPaths(Path(run_dir)).scores, result)
    return result


def format_table(result: dict[str, Any]) -> str:
    """A compact two-column table of every scalar score and the reconstruction."""
    rows = [(k, v) for k, v in result["scores"].items() if isinstance(v, (int, float))]
    rec = result["reconstruction"]
    rows += [
        ("test recon (nats/image)", rec["recon"]),
        ("test KL (nats/image)", rec["kl"]),
        ("test squared error/image", rec["sse"]),
        ("active latents", rec["active_latents"]),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)
