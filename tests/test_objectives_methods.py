"""The disentangling objectives (FactorVAE, beta-TCVAE, DIP-VAE-I/II, AnnealedVAE) against their
formulas written out by hand, closed forms of known distributions, and the training machinery
(micro-batches, resume, processes, logging, bad input)."""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, invoke, small_trainer
from sbvae.config import OBJECTIVES, ConfigError, ObjectiveConfig, load_config
from sbvae.errors import UserError
from sbvae.models import VAE
from sbvae.objectives import Runtime, capacity, make_objective, permute_dims, total_correlation
from sbvae.objectives.dip_vae import off_diagonal_and_diagonal, posterior_covariance
from sbvae.objectives.factor_vae import Discriminator, tc_estimate

NAMES = list(OBJECTIVES)
METHODS = [n for n in NAMES if n != "beta_vae"]


# -- each loss on a fixed small batch, against its formula written out (float64) ----------


def _normal(x: float, mean: float, logvar: float) -> float:
    return math.exp(-0.5 * (x - mean) ** 2 / math.exp(logvar)) / math.sqrt(2 * math.pi * math.exp(logvar))


def _hand_tc(z: list[list[float]], mean: list[list[float]], logvar: list[list[float]]) -> float:
    """Total correlation of the batch's mixture of posteriors at its samples, loop by loop."""
    m, k = len(z), len(z[0])
    total = 0.0
    for j in range(m):
        joint = sum(math.prod(_normal(z[j][d], mean[i][d], logvar[i][d]) for d in range(k)) for i in range(m)) / m
        marginals = [sum(_normal(z[j][d], mean[i][d], logvar[i][d]) for i in range(m)) / m for d in range(k)]
        total += math.log(joint) - sum(math.log(q) for q in marginals)
    return total / m


def _hand_covariance(mean: list[list[float]], logvar: list[list[float]] | None) -> list[list[float]]:
    m, k = len(mean), len(mean[0])
    avg = [sum(row[a] for row in mean) / m for a in range(k)]
    cov = [[sum(row[a] * row[b] for row in mean) / m - avg[a] * avg[b] for b in range(k)] for a in range(k)]
    if logvar is not None:  # DIP-VAE-II: plus the mean posterior variance on the diagonal
        for a in range(k):
            cov[a][a] += sum(math.exp(row[a]) for row in logvar) / m
    return cov


def _hand_dip(cov: list[list[float]], lambda_od: float, lambda_d: float) -> float:
    k = len(cov)
    off = sum(cov[a][b] ** 2 for a in range(k) for b in range(k) if a != b)
    return lambda_od * off + lambda_d * sum((cov[a][a] - 1) ** 2 for a in range(k))


def _hand_tc_estimate(net: Discriminator, z: list[list[float]]) -> float:
    """The mean difference of the discriminator's two logits, its layers applied one by one."""
    h = torch.tensor(z, dtype=torch.float64)
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(linear):
        h = h @ layer.weight.T + layer.bias
        if i < len(linear) - 1:
            h = torch.where(h > 0, h, 0.2 * h)
    return (h[:, 0] - h[:, 1]).mean().item()


SETTINGS = {
    "beta_vae": ["objective.beta=4"],
    "factor_vae": ["objective.gamma=7"],
    "beta_tcvae": ["objective.beta=6"],
    "dip_vae_i": ["objective.lambda_od=3", "objective.lambda_d_factor=10"],
    "dip_vae_ii": ["objective.lambda_od=3", "objective.lambda_d_factor=1"],
    "annealed_vae": ["objective.gamma=100", "objective.c_max=0.5", "objective.c_steps=10"],
}
STEP = 3  # the step the losses are taken at (the capacity is 3/10 of c_max)


class _Encoder(torch.nn.Module):
    """A linear encoder of 8x8 images, so that the posteriors differ from image to image."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.fc = torch.nn.Linear(3 * 8 * 8, 2 * latent_dim)
        with torch.no_grad():
            self.fc.weight[:latent_dim].mul_(10)  # means spread over about one unit, variances near 1

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.fc(images.flatten(1)).chunk(2, dim=1)
        return mean, logvar


class _Decoder(torch.nn.Linear):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(z).view(-1, 3, 8, 8)


def _tiny_vae(latent_dim: int = 3) -> VAE:
    torch.manual_seed(0)
    return VAE(_Encoder(latent_dim), _Decoder(latent_dim, 3 * 8 * 8)).double()


def _objective(name: str, *overrides: str, latent_dim: int = 3):
    config = load_config("default", [f"objective.name={name}", "objective.sigma=0.3", *SETTINGS[name], *overrides])
    objective = make_objective(config.objective, Runtime(latent_dim=latent_dim))
    for module in objective.modules().values():
        module.double()
    return objective


def _batch(n: int = 5, latent_dim: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    images = torch.rand(n, 3, 8, 8, generator=gen, dtype=torch.float64)
    return images, torch.randn(n, latent_dim, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("name", NAMES)
def test_each_loss_is_its_formula_written_out(name):
    model, (images, noise) = _tiny_vae(), _batch()
    objective = _objective(name)
    objective.begin_batch(model, images, noise, STEP)
    terms = objective.loss(model, images, noise, STEP)
    with torch.no_grad():
        out = model(images, noise)
    x, d = images.flatten(1).tolist(), out.decoded.flatten(1).tolist()
    mean, logvar, z = out.mean.tolist(), out.logvar.tolist(), out.z.tolist()
    n, sigma = len(x), 0.3
    recon = (
        sum(
            0.5 * ((xi - di) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
            for xr, dr in zip(x, d)
            for xi, di in zip(xr, dr)
        )
        / n
    )
    kl = sum(0.5 * (mu**2 + math.exp(lv) - 1 - lv) for mr, lr in zip(mean, logvar) for mu, lv in zip(mr, lr)) / n
    expected = {
        "beta_vae": lambda: recon + 4 * kl,
        "beta_tcvae": lambda: recon + kl + 5 * _hand_tc(z, mean, logvar),
        "dip_vae_i": lambda: recon + kl + _hand_dip(_hand_covariance(mean, None), 3, 30),
        "dip_vae_ii": lambda: recon + kl + _hand_dip(_hand_covariance(mean, logvar), 3, 3),
        "annealed_vae": lambda: recon + 100 * abs(kl - 0.5 * STEP / 10),
        "factor_vae": lambda: recon + kl + 7 * _hand_tc_estimate(objective.discriminator, z),
    }[name]()
    assert terms.recon.item() == pytest.approx(recon, rel=1e-12)
    assert terms.kl.item() == pytest.approx(kl, rel=1e-12)
    assert terms.loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-10)
    assert abs(expected - (recon + kl)) > 1e-3 or name == "beta_vae"  # the penalty is really there


def _direct_penalty(objective, out) -> torch.Tensor:
    """The penalty taken on the whole batch in one graph (what the two-pass estimate must match)."""
    config = objective.config
    if config.name == "beta_tcvae":
        return (config.beta - 1) * total_correlation(out.z, out.mean, out.logvar)
    if config.name == "factor_vae":
        return config.gamma * tc_estimate(objective.discriminator(out.z))
    if config.name == "annealed_vae":
        kl = (0.5 * (out.mean**2 + out.logvar.exp() - 1 - out.logvar)).sum(1).mean()
        return config.gamma * (kl - config.c_max * STEP / config.c_steps).abs()
    off, diag = off_diagonal_and_diagonal(posterior_covariance(out.mean, out.logvar, objective.kind))
    return config.lambda_od * off + config.lambda_d_factor * config.lambda_od * diag


@pytest.mark.parametrize("name", ["factor_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii", "annealed_vae"])
def test_a_batch_penalty_has_the_gradient_of_the_whole_batch_in_one_graph(name):
    """The two passes (penalty on the gathered rows, then a linear term per chunk) give the
    gradient of the penalty computed on the whole batch at once, also chunk by chunk."""
    model, (images, noise) = _tiny_vae(), _batch(n=6)
    objective = _objective(name)
    objective.begin_batch(model, images, noise, STEP)
    for chunk in (6, 2):  # the whole batch, then three chunks weighted by their shares
        model.zero_grad()
        for first in range(0, 6, chunk):
            rows = slice(first, first + chunk)
            (objective.loss(model, images[rows], noise[rows], STEP, rows).loss * chunk / 6).backward()
        two_pass = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        out = model(images, noise)
        recon = 0.5 * ((images - out.decoded) / 0.3) ** 2 + math.log(0.3) + 0.5 * math.log(2 * math.pi)
        kl = (0.5 * (out.mean**2 + out.logvar.exp() - 1 - out.logvar)).sum(1).mean()
        (recon.flatten(1).sum(1).mean() + objective.kl_weight * kl + _direct_penalty(objective, out)).backward()
        for a, b in zip(two_pass, (p.grad for p in model.parameters())):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


# -- the estimators against closed forms --------------------------------------------------


def test_minibatch_total_correlation_approaches_the_closed_form_of_a_correlated_gaussian():
    """Posteriors N(mu_x, s^2 I) with mu_x ~ N(0, S): q(z) = N(0, S + s^2 I), whose total
    correlation is (sum_l log C_ll - log det C) / 2. Tolerance: 0.035 nats (13% of the TC) for
    each of four batches of 2,048, and the mean error there a third of that at 64 or less."""
    rho, s = 0.8, 0.5
    prior = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    total = prior + s**2 * torch.eye(2, dtype=torch.float64)
    closed = 0.5 * (torch.log(torch.diagonal(total)).sum() - torch.logdet(total)).item()
    gen = torch.Generator().manual_seed(0)
    root = torch.linalg.cholesky(prior)

    def errors(m: int) -> list[float]:
        out = []
        for _ in range(4):
            mean = torch.randn(m, 2, generator=gen, dtype=torch.float64) @ root.T
            z = mean + s * torch.randn(m, 2, generator=gen, dtype=torch.float64)
            logvar = torch.full((m, 2), 2 * math.log(s), dtype=torch.float64)
            out.append(abs(total_correlation(z, mean, logvar).item() - closed))
        return out

    small, large = errors(64), errors(2048)
    assert max(large) < 0.035, (closed, large)
    assert sum(large) < sum(small) / 3, (small, large)


def test_total_correlation_of_independent_posteriors_is_near_zero():
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(1024, 3, generator=gen, dtype=torch.float64)
    z = mean + 0.5 * torch.randn(1024, 3, generator=gen, dtype=torch.float64)
    assert abs(total_correlation(z, mean, torch.full_like(mean, 2 * math.log(0.5))).item()) < 0.03


def test_beta_tcvae_loss_carries_the_constant_disentanglement_lib_drops():
    """docs/model-and-data.md: the TC, and so the loss, is (k - 1) log M, times (beta - 1),
    above disentanglement_lib's estimate (the same sums without the 1/M of each mixture)."""
    m, k = 16, 5
    gen = torch.Generator().manual_seed(2)
    mean, logvar, noise = (torch.randn(m, k, generator=gen, dtype=torch.float64) for _ in range(3))
    z = mean + torch.exp(0.5 * logvar) * noise
    log_q = -0.5 * ((z[:, None] - mean[None]) ** 2 * torch.exp(-logvar[None]) + logvar[None] + math.log(2 * math.pi))
    dlib = (torch.logsumexp(log_q.sum(2), 1) - torch.logsumexp(log_q, 1).sum(1)).mean()
    tc = total_correlation(z, mean, logvar)
    assert tc.item() == pytest.approx(dlib.item() + (k - 1) * math.log(m), abs=1e-9)
    objective = _objective("beta_tcvae", "objective.beta=10", latent_dim=k)
    penalty, logged = objective.penalty(z, mean, logvar, STEP)
    assert logged["tc"].item() == tc.item()
    assert penalty.item() == pytest.approx(9 * (dlib.item() + (k - 1) * math.log(m)), abs=1e-8)


def _with_covariance(target: torch.Tensor, m: int = 50) -> torch.Tensor:
    """``m`` rows whose covariance (normalised by m) is exactly ``target``."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(m, len(target), generator=gen, dtype=torch.float64)
    x = x - x.mean(0)
    white = x @ torch.linalg.inv(torch.linalg.cholesky(x.T @ x / m)).T  # covariance exactly I
    return white @ torch.linalg.cholesky(target).T + torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)


def test_dip_penalty_of_codes_with_a_known_covariance_is_its_closed_form():
    target = torch.tensor([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]], dtype=torch.float64)
    mean = _with_covariance(target)
    logvar = torch.log(torch.tensor([0.1, 0.2, 0.4], dtype=torch.float64)).expand(len(mean), 3)
    config = load_config("default", ["objective.name=dip_vae_i", "objective.lambda_od=2"]).objective
    objective = make_objective(config, Runtime(latent_dim=3))
    # DIP-VAE-I: off-diagonal 2 (0.6^2 + 0.3^2) = 0.9; diagonal (1^2 + 0 + 0.5^2) = 1.25
    value, parts = objective.penalty(mean, mean, logvar, 0)
    assert parts["cov_off_diag"].item() == pytest.approx(0.9, rel=1e-12)
    assert parts["cov_diag"].item() == pytest.approx(1.25, rel=1e-12)
    assert value.item() == pytest.approx(2 * 0.9 + 20 * 1.25, rel=1e-12)
    # DIP-VAE-II: the diagonal gains the posterior variances (2.1, 1.2, 0.9)
    config = load_config("default", ["objective.name=dip_vae_ii", "objective.lambda_od=2"]).objective
    value, parts = make_objective(config, Runtime(latent_dim=3)).penalty(mean, mean, logvar, 0)
    assert parts["cov_off_diag"].item() == pytest.approx(0.9, rel=1e-12)
    assert parts["cov_diag"].item() == pytest.approx(1.1**2 + 0.2**2 + 0.1**2, rel=1e-12)
    assert value.item() == pytest.approx(2 * 0.9 + 2 * (1.1**2 + 0.2**2 + 0.1**2), rel=1e-12)


def test_dip_penalty_of_identity_covariance_is_zero():
    mean = _with_covariance(torch.eye(3, dtype=torch.float64))
    off, diag = off_diagonal_and_diagonal(posterior_covariance(mean, torch.zeros_like(mean), "i"))
    assert off.item() == pytest.approx(0, abs=1e-20) and diag.item() == pytest.approx(0, abs=1e-20)


# -- FactorVAE's discriminator ------------------------------------------------------------


def test_permute_dims_permutes_each_dimension_on_its_own():
    n = 1000
    z = torch.arange(n, dtype=torch.float64)[:, None] + 10_000 * torch.arange(4)  # row r, column l: r + 10000 l
    shuffled = permute_dims(z, torch.Generator().manual_seed(0))
    rows = (shuffled - 10_000 * torch.arange(4)).long()  # which row each entry came from
    for column in rows.T:
        assert sorted(column.tolist()) == list(range(n))  # a permutation of the column
        assert (column != torch.arange(n)).float().mean() > 0.95  # that moves almost every row
    for a, b in itertools.combinations(rows.T, 2):  # and different columns move independently
        assert (a == b).sum() < 10
    again = permute_dims(z, torch.Generator().manual_seed(0))
    assert torch.equal(again, shuffled)  # the generator decides


def _discriminator_accuracy(dependent: bool) -> float:
    """Train a fresh FactorVAE discriminator for 40 steps of 64 codes; its accuracy on 2,048."""
    torch.manual_seed(0)
    objective = make_objective(ObjectiveConfig(name="factor_vae"), Runtime(latent_dim=3))
    gen = torch.Generator().manual_seed(1)

    def codes(n: int) -> torch.Tensor:
        x = torch.randn(n, 3, generator=gen)
        if dependent:
            x[:, 1] = x[:, 0] + 0.1 * x[:, 1]
        return x

    for _ in range(40):
        objective.optimizer.zero_grad()
        objective.discriminator_backward(codes(64))
        objective.apply_updates()
    return objective.discriminator_backward(codes(2048))[1]["disc_accuracy"].item()


def test_the_discriminator_tells_dependent_codes_from_their_permutation():
    assert _discriminator_accuracy(dependent=True) > 0.8


def test_the_discriminator_cannot_tell_independent_codes_from_their_permutation():
    assert _discriminator_accuracy(dependent=False) == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("sure", [False, True])
def test_the_tc_gradient_from_the_discriminators_backward_is_the_gaps_own(sure):
    """The TC gradient recovered from the cross-entropy's backward equals the logit gap's
    gradient taken directly; also where the discriminator is so sure (gap about 100) that the
    separate pass takes over, in float32 as in training, where the first way would underflow.
    The weights' gradient is the cross-entropy's either way."""
    dtype, tolerance = (
        (torch.float32, {"rtol": 1e-5, "atol": 1e-6}) if sure else (torch.float64, {"rtol": 1e-9, "atol": 1e-12})
    )
    torch.manual_seed(0)
    objective = make_objective(ObjectiveConfig(name="factor_vae"), Runtime(latent_dim=4))
    objective.discriminator.to(dtype)
    if sure:
        with torch.no_grad():
            objective.discriminator[-1].bias.copy_(torch.tensor([100.0, 0.0], dtype=dtype))
    codes = torch.randn(16, 4, dtype=dtype)
    state = objective.permute_rng.get_state()
    tc_grad, logged = objective.discriminator_backward(codes)
    weights = [p.grad.clone() for p in objective.discriminator.parameters()]
    objective.permute_rng.set_state(state)
    leaf = codes.clone().requires_grad_()
    logits = objective.discriminator(torch.cat([leaf, permute_dims(codes, objective.permute_rng)]))
    gap = logits[:16, 0] - logits[:16, 1]
    (expected,) = torch.autograd.grad(gap.sum(), leaf, retain_graph=True)
    torch.testing.assert_close(tc_grad, expected, **tolerance)
    assert logged["tc"].item() == pytest.approx(gap.mean().item(), rel=1e-6)
    assert (logged["tc"].item() > 90) == sure
    labels = torch.cat([torch.zeros(16), torch.ones(16)]).long()
    objective.discriminator.zero_grad()
    F.cross_entropy(logits, labels).backward()
    assert logged["disc_loss"].item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5, abs=1e-7)
    for a, p in zip(weights, objective.discriminator.parameters()):
        torch.testing.assert_close(a, p.grad, **tolerance)


def test_the_discriminator_is_the_one_of_kim_and_mnih():
    net = Discriminator(10)
    linear = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
    assert all(m.negative_slope == 0.2 for m in net if isinstance(m, torch.nn.LeakyReLU))
    objective = make_objective(ObjectiveConfig(name="factor_vae"), Runtime(latent_dim=10))
    group = objective.optimizer.param_groups[0]
    assert (group["lr"], group["betas"]) == (1e-4, (0.5, 0.9))


# -- AnnealedVAE's capacity ---------------------------------------------------------------


def test_the_capacity_rises_linearly_to_c_max_then_stays():
    assert [capacity(step, 25.0, 100) for step in (0, 1, 50, 99, 100, 101, 10_000)] == pytest.approx(
        [0.0, 0.25, 12.5, 24.75, 25.0, 25.0, 25.0]
    )
    objective = _objective("annealed_vae")
    assert [objective.capacity(step) for step in (0, 3, 10, 20)] == pytest.approx([0.0, 0.15, 0.5, 0.5])


# -- the training step --------------------------------------------------------------------


def _trainer(tmp_path: Path, name: str, *overrides: str):
    return small_trainer(tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}", f"objective.name={name}", *overrides)


def _first_step(tmp_path: Path, name: str, *overrides: str):
    """Loss terms and gradients (VAE and objective modules) of a fresh Trainer's first step."""
    trainer = _trainer(tmp_path, name, *overrides)
    trainer.optimizer.step = lambda: None  # keep the accumulated gradients, skip the updates
    trainer.objective.apply_updates = lambda: None
    terms = trainer.train_step()
    return terms, [p.grad.clone() for p in trainer.trained_parameters()]


@pytest.mark.parametrize("name", METHODS)
def test_micro_batches_give_the_whole_batch_step(tmp_path, name):
    whole_terms, whole = _first_step(tmp_path, name, "train.micro_batch=0")
    chunked_terms, chunked = _first_step(tmp_path, name, "train.micro_batch=4")
    torch.testing.assert_close(chunked_terms.named(), whole_terms.named(), rtol=1e-5, atol=1e-3)
    assert set(whole_terms.extra) >= {"tc"} or name != "factor_vae"
    for a, b in zip(chunked, whole):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("decoder", ["sbd", "deconv"])
@pytest.mark.parametrize("name", NAMES)
def test_every_objective_trains_with_both_decoders(tmp_path, name, decoder):
    trainer = _trainer(tmp_path, name, f"model.decoder={decoder}", "train.micro_batch=0")
    before = [p.detach().clone() for p in trainer.trained_parameters()]
    terms = [trainer.train_step() for _ in range(2)]
    assert all(torch.isfinite(t).all() for step in terms for t in step.named().values())
    moved = [not torch.equal(p, b) for p, b in zip(trainer.trained_parameters(), before)]
    assert all(moved[: len(list(trainer.model.parameters()))]) or decoder == "deconv"
    assert all(moved[len(list(trainer.model.parameters())) :])  # the discriminator trains too


def test_validation_reports_the_elbo_for_every_method(tmp_path):
    trainer = _trainer(tmp_path, "factor_vae", "data.val_size=16")
    stats = trainer.validate()
    assert stats["loss"] == pytest.approx(stats["recon"] + stats["kl"], rel=1e-5)
    assert {"recon", "kl", "sse", "kl_per_dim", "active_latents"} <= set(stats)
    beta = _trainer(tmp_path, "beta_vae", "data.val_size=16", "objective.beta=4").validate()
    assert beta["loss"] == pytest.approx(beta["recon"] + 4 * beta["kl"], rel=1e-5)


# -- config: bad input is one line naming the key, exit 2, nothing written -----------------


BAD = {
    "unknown name": (["objective.name=vae_gan"], ["objective.name", "vae_gan", "factor_vae"]),
    "another's key": (["objective.gamma=10"], ["objective.gamma", "factor_vae", "beta_vae"]),
    "another's key, named": (["objective.name=factor_vae", "objective.beta=4"], ["objective.beta", "factor_vae"]),
    "negative gamma": (["objective.name=factor_vae", "objective.gamma=-1"], ["objective.gamma", ">= 0"]),
    "negative beta": (["objective.name=beta_tcvae", "objective.beta=-2"], ["objective.beta", ">= 0"]),
    "negative lambda": (["objective.name=dip_vae_i", "objective.lambda_od=-1"], ["objective.lambda_od", ">= 0"]),
    "negative factor": (["objective.name=dip_vae_ii", "objective.lambda_d_factor=-1"], ["lambda_d_factor"]),
    "negative c_max": (["objective.name=annealed_vae", "objective.c_max=-5"], ["objective.c_max", ">= 0"]),
    "missing gamma": (["objective.name=factor_vae", "objective.gamma=null"], ["objective.gamma", "no value"]),
    "empty lambda": (["objective.name=dip_vae_i", "objective.lambda_od="], ["objective.lambda_od", "float"]),
    "zero-step capacity": (["objective.name=annealed_vae", "objective.c_steps=0"], ["objective.c_steps", "positive"]),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_objective_input_is_one_line_and_writes_nothing(case, tmp_path, run_cli):
    overrides, words = BAD[case]
    with pytest.raises(ConfigError) as info:
        load_config("default", overrides)
    assert isinstance(info.value, UserError)
    out = tmp_path / "run"
    code, _, err = run_cli("train", "--set", *TINY, *overrides, "--out", out, "--quiet")
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("sbvae: error:"), err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists()


def test_each_method_takes_the_defaults_of_disentanglement_lib():
    defaults = {name: load_config("default", [f"objective.name={name}"]).objective for name in NAMES}
    assert defaults["beta_vae"].beta == 1.0
    assert {d.kl_warmup for d in defaults.values()} == {10000}  # the default preset's warm-up, for every method
    assert ObjectiveConfig().kl_warmup == 0 and ObjectiveConfig(name="factor_vae").kl_warmup is None  # off
    assert defaults["factor_vae"].gamma == 10.0
    assert defaults["beta_tcvae"].beta == 10.0
    assert (defaults["dip_vae_i"].lambda_od, defaults["dip_vae_i"].lambda_d_factor) == (10.0, 10.0)
    assert (defaults["dip_vae_ii"].lambda_od, defaults["dip_vae_ii"].lambda_d_factor) == (10.0, 1.0)
    annealed = defaults["annealed_vae"]
    assert (annealed.gamma, annealed.c_max, annealed.c_steps) == (1000.0, 25.0, 100_000)
    for name, config in defaults.items():  # every other method's key is unset
        unused = {k for keys in OBJECTIVES.values() for k in keys} - set(OBJECTIVES[name]) - {"kl_warmup"}
        assert all(getattr(config, key) is None for key in unused), name


def test_a_method_and_its_hyperparameter_are_a_sweep_axis():
    from sbvae.study.experiments import Experiment, plan

    experiment = Experiment(
        "factor",
        "FactorVAE at two gammas",
        "cpu",
        ["objective.name=factor_vae"],
        2,
        {"objective.gamma": [10, 40]},
        [],
        [],
    )
    specs = plan(experiment, steps=100)
    assert len(specs) == 2 * 2 * 2  # gammas x decoders x seeds
    assert {(s.config.objective.name, s.config.objective.gamma) for s in specs} == {
        ("factor_vae", 10.0),
        ("factor_vae", 40.0),
    }
    assert "gamma40" in specs[-1].name


# -- a whole FactorVAE run: checkpoints, resume, processes, logs, pictures ------------------


FACTOR = [*TINY, "objective.name=factor_vae", "objective.kl_warmup=0"]  # the method's loss as it is


@pytest.fixture(scope="module")
def factor_run(tmp_path_factory) -> Path:
    """A finished 6-step FactorVAE run (checkpoints at steps 3 and 6). Tests must not modify it."""
    out = tmp_path_factory.mktemp("factor") / "run"
    assert invoke(["train", "--set", *FACTOR, "--out", str(out), "--quiet"]) == 0
    return out


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_beta_vae_rows_keep_their_keys(trained_run):
    keys = ["step", "split", "loss", "recon", "kl", "kl_per_dim", "images_per_sec", "elapsed"]
    assert all(list(r) == keys for r in _rows(trained_run) if r["split"] == "train")


def test_a_factor_vae_run_logs_every_term_and_saves_its_discriminator(factor_run):
    train = [r for r in _rows(factor_run) if r["split"] == "train"]
    assert list(train[0])[:4] == ["step", "split", "loss", "recon"]
    for row in train:
        assert {"kl", "kl_per_dim", "tc", "disc_loss", "disc_accuracy", "images_per_sec"} <= set(row)
        assert 0 <= row["disc_accuracy"] <= 1
        assert row["loss"] == pytest.approx(row["recon"] + row["kl"] + 10 * row["tc"], rel=1e-4, abs=1e-3)
    state = torch.load(factor_run / "checkpoint.pt", weights_only=True)
    assert {"discriminator", "optimizer", "permute_rng"} <= set(state["objective"])
    assert (factor_run / "curves.png").is_file()
    report = (factor_run / "report.html").read_text()
    assert "factor_vae (gamma 10, kl_warmup 0, gaussian likelihood, sigma 0.05)" in report


def test_the_parameter_line_counts_the_discriminator(tmp_path):
    from sbvae.training.loop import parameter_report

    trainer = _trainer(tmp_path, "factor_vae")
    line = parameter_report(trainer.config, trainer.model, trainer.data, trainer.objective.modules())
    count = (10 * 1000 + 1000) + 5 * (1000 * 1000 + 1000) + (1000 * 2 + 2)
    assert f"| discriminator {count:,} (training: sbd, factor_vae)" in line


def _assert_identical(a, b, where: str) -> None:
    """Nested checkpoint contents equal bit for bit."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_factor_vae_resumes_bit_exactly(tmp_path, factor_run, run_cli):
    run = tmp_path / "half"
    code, _, err = run_cli("train", "--set", *FACTOR, "train.steps=3", "--out", run, "--quiet")
    assert code == 0, err
    code, _, err = run_cli("train", "--resume", run, "--set", "train.steps=6", "--quiet")
    assert code == 0, err
    resumed = torch.load(run / "checkpoint.pt", weights_only=True)
    straight = torch.load(factor_run / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == straight["step"] == 6
    for part in ("model", "optimizer", "objective"):  # the discriminator, its Adam and its permutations too
        _assert_identical(resumed[part], straight[part], part)
    assert all("disc_loss" in r for r in _rows(run) if r["split"] == "train")


def test_two_processes_train_the_same_factor_vae_as_one(tmp_path, factor_run):
    from test_distributed import torchrun

    run = tmp_path / "ddp"
    done = torchrun("train", "--set", *FACTOR, "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    one = torch.load(factor_run / "checkpoint.pt", weights_only=True)
    two = torch.load(run / "checkpoint.pt", weights_only=True)
    assert one["step"] == two["step"] == 6
    torch.testing.assert_close(two["model"], one["model"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        two["objective"]["discriminator"], one["objective"]["discriminator"], rtol=1e-4, atol=1e-5
    )
    single = {r["step"]: r for r in _rows(factor_run) if r["split"] == "train"}
    for row in (r for r in _rows(run) if r["split"] == "train"):
        for key in ("loss", "tc", "disc_loss", "disc_accuracy"):
            assert row[key] == pytest.approx(single[row["step"]][key], rel=1e-4, abs=1e-5), key


def test_compare_shows_each_runs_objective(tmp_path, factor_run, trained_run, run_cli):
    code, _, err = run_cli("compare", trained_run, factor_run, "--out", tmp_path / "cmp")
    assert code == 0, err
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "factor_vae (gamma 10, kl_warmup 0, gaussian likelihood, sigma 0.05)" in page
    assert "beta_vae (beta 1, kl_warmup 10000, gaussian likelihood, sigma 0.05)" in page
    assert "objective.name=factor_vae" in page  # the groups are told apart by their objective


def test_the_benchmark_times_every_objective_at_the_default_preset():
    from sbvae.bench import objective_cases

    cases = objective_cases()
    assert [c.name for c in cases][:2] == ["beta_vae default", "factor_vae default"]
    default = load_config("default")
    for case in cases:  # the same model and data; only the objective differs
        assert case.config.model == default.model and case.config.train == default.train
        assert case.config.objective.name == case.name.split()[0]


def test_evaluate_visualize_and_report_read_a_factor_vae_run(tmp_path, factor_run, run_cli):
    run = tmp_path / "run"
    shutil.copytree(factor_run, run)
    code, _, err = run_cli("evaluate", run, "--metrics", "mig,sap", "--num-train", "100", "--num-test", "50")
    assert code == 0, err
    assert "discrete_mig" in json.loads((run / "metrics.json").read_text())["scores"]
    code, _, err = run_cli("visualize", run, "--only", "curves")
    assert code == 0, err
    code, _, err = run_cli("report", run)
    assert code == 0, err
    assert "Objective: factor_vae (gamma 10" in (run / "report.html").read_text()


def test_the_curves_add_a_panel_per_term_of_the_method(factor_run, trained_run):
    from sbvae.viz.curves import FIDELITY_PANEL, PANELS, panels

    # beta-VAE's figure: the plain panels, then fidelity (the default preset logs it)
    assert panels({"beta": _rows(trained_run)}) == [*PANELS, FIDELITY_PANEL]
    keys = [key for key, _ in panels({"factor": _rows(factor_run), "beta": _rows(trained_run)})]
    assert keys == ["loss", "recon", "kl", "tc", "disc_loss", "disc_accuracy", "discrete_mig", "fidelity"]
