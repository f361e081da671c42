"""What the evaluation's speed work added keeps its numbers: the rate it measures, the image
counts behind its floor and estimate, its progress lines, and the same codes on a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbvae.config import load_config
from sbvae.data import make_dataset, make_generator
from sbvae.evaluation.evaluate import compute_metrics, images_encoded
from sbvae.evaluation.metrics import beta_vae_score, factor_vae_score
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.models import build_vae

DATA = make_dataset("colored_sprites", 32)


def sampler(device: str = "cpu", **options) -> GroundTruthSampler:
    torch.manual_seed(0)
    model = build_vae(load_config("default").model, 32, 3).eval().to(device)
    return GroundTruthSampler(DATA, model, torch.device(device), **{"batch_size": 64, **options})


def test_measuring_the_rate_draws_no_posterior_noise():
    values = DATA.factors.sample(100, make_generator(0, "test"))
    plain, probed = sampler(representation="sampled"), sampler(representation="sampled")
    assert probed.images_per_second(make_generator(0, "rate"), batches=2) > 0
    assert np.array_equal(plain.encode_values(values), probed.encode_values(values))


@pytest.mark.parametrize("representation", ["mean", "sampled"])
def test_codes_do_not_depend_on_the_batch_size(representation):
    """The default batch (128 on a CPU) was chosen for speed alone: every batch size gives the
    same codes and posterior samples, bit for bit, so no score changes with it."""
    values = DATA.factors.sample(300, make_generator(0, "batches"))
    default = sampler(representation=representation, batch_size=None)
    assert default.batch == 128
    codes = default.encode_values(values)
    for batch in (64, 256, 300):
        other = sampler(representation=representation, batch_size=batch).encode_values(values)
        assert np.array_equal(codes, other), batch


@pytest.mark.parametrize("num_train, num_test", [(40, 20), (33, 7)])
def test_image_counts_are_what_the_sampler_scores_encode(num_train, num_test):
    encoded = {"factor_vae": 0, "beta_vae": 0}

    def counting(name):
        def encode(values: torch.Tensor) -> np.ndarray:
            encoded[name] += len(values)
            return np.random.default_rng(len(values)).normal(size=(len(values), 4))

        return encode

    common = (DATA.factors.sample, make_generator(0, "test"), 8)
    factor_vae_score(common[0], counting("factor_vae"), *common[1:], 64, num_train, num_test, num_train)
    beta_vae_score(common[0], counting("beta_vae"), *common[1:], 64, num_train, num_test)
    counts = images_encoded(["mig", "factor_vae", "beta_vae"], num_train, num_test)
    assert counts == {"encode": num_train, **encoded}
    assert images_encoded(["dci"], num_train, num_test) == {"encode": num_train + num_test}


def test_long_metrics_log_an_estimate_then_their_progress():
    lines: list[str] = []
    names = ["mig", "dci", "beta_vae"]
    scores, timings = compute_metrics(sampler(), names, num_train=64, num_test=32, log=lines.append)
    estimate = next(i for i, line in enumerate(lines) if line.startswith("estimated time: about"))
    assert "dci" in lines[estimate] and "beta_vae" in lines[estimate] and "images/s" in lines[estimate]
    assert estimate < lines.index(next(line for line in lines if line.startswith("dci done")))
    assert [line for line in lines if line.startswith("dci: ")][-1] == "dci: 8 of 8 factors fitted"
    # 96 points of 2 x 64 images, encoded 16 points at a time: a line as each quarter is passed
    progress = [line.split(" images")[0] for line in lines if line.startswith("beta_vae: ")]
    assert progress == ["beta_vae: 33% of 12,288", "beta_vae: 50% of 12,288", "beta_vae: 83% of 12,288"]
    assert timings["dci_trees"] > 0 and set(timings) >= {"encode", "dci", "beta_vae"}
    assert 0 <= scores["beta_vae_eval_accuracy"] <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_encoding_and_the_sampler_scores_run_on_cuda():
    values = DATA.factors.sample(200, make_generator(0, "test"))
    cpu, cuda = sampler("cpu"), sampler("cuda")
    assert np.abs(cpu.encode_values(values) - cuda.encode_values(values)).max() < 1e-4
    scores, _ = compute_metrics(cuda, ["mig", "factor_vae", "beta_vae"], num_train=64, num_test=32)
    assert 0 <= scores["factor_vae_eval_accuracy"] <= 1 and 0 <= scores["beta_vae_eval_accuracy"] <= 1
