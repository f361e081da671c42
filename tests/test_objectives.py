"""The VAE objective against closed forms and torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from conftest import small_trainer
from sbvae.models import VAEOutput
from sbvae.objectives import kl_per_dimension, reconstruction_nll, to_image, vae_loss


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.mark.parametrize("sigma", [0.05, 0.1, 1.0, 2.5])
def test_gaussian_nll_is_the_normal_log_density(gen, sigma):
    images = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    decoded = torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    nll = reconstruction_nll(images, decoded, "gaussian", sigma)
    expected = -Normal(decoded, sigma).log_prob(images).sum(dim=(1, 2, 3))
    assert nll.shape == (4,)
    assert torch.allclose(nll, expected, rtol=1e-10, atol=1e-8)
    # Closed form, written out: 0.5 r^2 / s^2 + log s + 0.5 log 2 pi per pixel.
    closed = (0.5 * ((images - decoded) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    assert torch.allclose(nll, closed, rtol=1e-12)


def test_gaussian_nll_is_minimal_at_the_image(gen):
    images = torch.rand(2, 1, 8, 8, generator=gen, dtype=torch.float64)
    best = reconstruction_nll(images, images, "gaussian", 0.1)
    assert torch.allclose(
        best, torch.full((2,), 64 * (math.log(0.1) + 0.5 * math.log(2 * math.pi)), dtype=torch.float64)
    )
    worse = reconstruction_nll(images, images + 0.01, "gaussian", 0.1)
    assert (worse > best).all()


def test_bernoulli_nll_is_bce_with_logits(gen):
    images = torch.rand(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    logits = 3 * torch.randn(4, 3, 8, 8, generator=gen, dtype=torch.float64)
    nll = reconstruction_nll(images, logits, "bernoulli", sigma=0.1)  # sigma is ignored
    bce = F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(1)
    assert torch.allclose(nll, bce, rtol=1e-12)
    p = torch.sigmoid(logits)
    closed = -(images * torch.log(p) + (1 - images) * torch.log1p(-p)).flatten(1).sum(1)
    assert torch.allclose(nll, closed, rtol=1e-8)
    assert torch.equal(nll, reconstruction_nll(images, logits, "bernoulli", sigma=7.0))


def test_bernoulli_nll_on_binary_images_is_the_log_probability(gen):
    images = (torch.rand(3, 1, 8, 8, generator=gen, dtype=torch.float64) > 0.5).double()
    logits = 2 * torch.randn(3, 1, 8, 8, generator=gen, dtype=torch.float64)
    expected = -Bernoulli(logits=logits).log_prob(images).flatten(1).sum(1)
    assert torch.allclose(reconstruction_nll(images, logits, "bernoulli", 0.1), expected, rtol=1e-10)


def test_unknown_likelihood_raises():
    with pytest.raises(ValueError, match="likelihood"):
        reconstruction_nll(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), "laplace", 0.1)


def test_kl_per_dim_matches_torch_distributions(gen):
    mean = 2 * torch.randn(5, 7, generator=gen, dtype=torch.float64)
    logvar = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    kl = kl_per_dimension(mean, logvar)
    expected = kl_divergence(
        Normal(mean, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mean), torch.ones_like(mean))
    )
    assert kl.shape == (5, 7)
    assert torch.allclose(kl, expected, rtol=1e-10, atol=1e-12)
    assert (kl >= 0).all()
    assert torch.equal(kl_per_dimension(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2, 3))


def _output(gen, n=6, k=4):
    images = torch.rand(n, 3, 8, 8, generator=gen, dtype=torch.float64)
    decoded = torch.rand(n, 3, 8, 8, generator=gen, dtype=torch.float64)
    mean = torch.randn(n, k, generator=gen, dtype=torch.float64)
    logvar = torch.randn(n, k, generator=gen, dtype=torch.float64)
    return images, VAEOutput(mean, logvar, mean, decoded)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_loss_terms_are_batch_means(gen, likelihood):
    images, out = _output(gen)
    terms = vae_loss(images, out, likelihood, sigma=0.2, beta=1.0)
    per_dim = kl_per_dimension(out.mean, out.logvar)
    assert torch.allclose(terms.recon, reconstruction_nll(images, out.decoded, likelihood, 0.2).mean())
    assert terms.kl_per_dim.shape == (4,)
    assert torch.allclose(terms.kl_per_dim, per_dim.mean(0))
    assert torch.allclose(terms.kl, terms.kl_per_dim.sum())
    assert torch.allclose(terms.kl, per_dim.sum(1).mean())
    assert torch.allclose(terms.loss, terms.recon + terms.kl)


def test_beta_scales_only_the_kl(gen):
    images, out = _output(gen)
    base = vae_loss(images, out, "gaussian", sigma=0.1, beta=1.0)
    assert base.kl > 0
    for beta in (0.0, 0.5, 4.0, 250.0):
        terms = vae_loss(images, out, "gaussian", sigma=0.1, beta=beta)
        assert torch.equal(terms.recon, base.recon)
        assert torch.equal(terms.kl, base.kl)
        assert torch.equal(terms.kl_per_dim, base.kl_per_dim)
        assert torch.allclose(terms.loss, base.recon + beta * base.kl, rtol=1e-12)
    zero = vae_loss(images, out, "gaussian", sigma=0.1, beta=0.0)
    assert torch.allclose(zero.loss, zero.recon)


def test_to_image():
    decoded = torch.tensor([-2.0, -0.1, 0.0, 0.4, 1.0, 3.0])
    assert torch.equal(to_image(decoded, "gaussian"), decoded.clamp(0, 1))
    assert torch.allclose(to_image(decoded, "bernoulli"), 1 / (1 + torch.exp(-decoded)))


def _first_step(tmp_path, decoder: str, *overrides: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Loss terms and accumulated gradient of a fresh Trainer's first step (no update)."""
    trainer = small_trainer(
        tmp_path / "-".join(overrides), "train.micro_batch=0", f"model.decoder={decoder}", *overrides
    )
    trainer.optimizer.step = lambda: None  # keep the accumulated gradient, skip the update
    losses = list(trainer.train_step())
    return losses, [p.grad.clone() for p in trainer.model.parameters()]


def _assert_same_step(a, b) -> None:
    for whole, other in zip(a[0], b[0]):
        torch.testing.assert_close(whole, other, rtol=1e-5, atol=1e-3)
    for whole, other in zip(a[1], b[1]):
        torch.testing.assert_close(whole, other, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("decoder", ["sbd", "deconv"])
def test_micro_batches_accumulate_the_whole_batch_gradient(tmp_path, decoder):
    _assert_same_step(_first_step(tmp_path, decoder), _first_step(tmp_path, decoder, "train.micro_batch=4"))


@pytest.mark.parametrize("decoder", ["sbd", "deconv"])
def test_channels_last_gives_the_same_step(tmp_path, decoder):
    plain = _first_step(tmp_path, decoder, "train.channels_last=false")
    fast = _first_step(tmp_path, decoder, "train.channels_last=true")
    _assert_same_step(plain, fast)
    convs = [g for g in fast[1] if g.dim() == 4]
    assert convs and all(g.is_contiguous(memory_format=torch.channels_last) for g in convs)


def test_compiled_step_gives_the_same_step(tmp_path):
    _assert_same_step(
        _first_step(tmp_path, "sbd", "train.micro_batch=4"),
        _first_step(tmp_path, "sbd", "train.micro_batch=4", "train.compile=true"),
    )


def test_kl_warmup_raises_the_kl_weight_linearly_to_beta(tmp_path):
    from sbvae.config import load_config
    from sbvae.training.loop import Trainer

    config = load_config("default", ["model.sbd_channels=8", "objective.beta=4", "objective.kl_warmup=10"])
    trainer = Trainer(config, tmp_path / "run", torch.device("cpu"))
    weights = [trainer.objective.regulariser_weight(step) for step in (0, 4, 9, 50)]
    assert weights == pytest.approx([0.1, 0.5, 1.0, 1.0])
    loss, recon, kl, *_ = trainer.train_step()  # the first step weighs the KL by beta / 10
    torch.testing.assert_close(loss, recon + 0.4 * kl)
    plain = Trainer(
        load_config("default", ["model.sbd_channels=8", "objective.beta=4", "objective.kl_warmup=0"]),
        tmp_path / "b",
        torch.device("cpu"),
    )
    assert plain.objective.regulariser_weight(0) == 1.0


def test_kl_warmup_weighs_every_methods_regulariser(tmp_path):
    """Under another method the warm-up weighs its KL and penalty together: the first step
    trains on recon + (KL + penalty) / 4, and its gradient is the warmed loss's."""
    from sbvae.config import load_config
    from sbvae.training.loop import Trainer

    overrides = ["model.sbd_channels=8", "objective.name=dip_vae_i", "objective.kl_warmup=4", "train.micro_batch=0"]
    trainer = Trainer(load_config("default", overrides), tmp_path / "run", torch.device("cpu"))
    terms = trainer.train_step()
    penalty = 10 * terms.extra["cov_off_diag"] + 100 * terms.extra["cov_diag"]  # lambda_od 10, lambda_d 10 x 10
    torch.testing.assert_close(terms.loss, terms.recon + 0.25 * (terms.kl + penalty))
    assert "kl_warmup 4" in trainer.config.objective.summary()


def test_lr_warmup_scales_the_first_adam_steps(tmp_path):
    from sbvae.config import load_config
    from sbvae.training.loop import Trainer

    def first_update(*overrides: str) -> float:
        base = ["model.sbd_channels=8", "train.lr=1e-3", "train.lr_warmup=0", "train.lr_decay_steps=0"]
        config = load_config("default", [*base, *overrides])
        trainer = Trainer(config, tmp_path / str(len(list(tmp_path.iterdir()))), torch.device("cpu"))
        before = [p.detach().clone() for p in trainer.model.parameters()]
        trainer.train_step()
        return max((p.detach() - b).abs().max().item() for p, b in zip(trainer.model.parameters(), before))

    # Adam's first update moves a weight by about the learning rate: lr / 10 under a 10-step warm-up
    assert first_update() == pytest.approx(1e-3, rel=0.01)
    assert first_update("train.lr_warmup=10") == pytest.approx(1e-4, rel=0.01)
    config = load_config("default", ["model.sbd_channels=8", "train.lr_warmup=10", "train.lr_decay_steps=0"])
    trainer = Trainer(config, tmp_path / "schedule", torch.device("cpu"))
    rates = []
    for step in (0, 4, 9, 50):
        trainer.step = step
        rates.append(trainer.learning_rate())
    assert rates == pytest.approx([config.train.lr * f for f in (0.1, 0.5, 1.0, 1.0)])


def test_lr_decay_follows_a_half_cosine_after_the_warm_up_and_stays_at_its_floor(tmp_path):
    from sbvae.config import load_config
    from sbvae.training.loop import Trainer

    overrides = ["model.sbd_channels=8", "train.lr=1e-3", "train.lr_warmup=10", "train.lr_decay_steps=110"]
    trainer = Trainer(load_config("default", [*overrides, "train.lr_final=0.1"]), tmp_path, torch.device("cpu"))
    rates = {}
    for step in (4, 9, 59, 109, 500):  # trainer.step counts steps taken: the next one is step + 1
        trainer.step = step
        rates[step + 1] = trainer.learning_rate()
    # warm-up to 1e-3 at step 10; half-way through the decay (step 60) the mean of 1e-3 and the floor 1e-4
    assert rates == pytest.approx({5: 5e-4, 10: 1e-3, 60: 5.5e-4, 110: 1e-4, 501: 1e-4})


def test_adam_takes_its_betas_and_epsilon_from_the_config(tmp_path):
    from sbvae.config import load_config
    from sbvae.training.loop import Trainer

    config = load_config("default", ["train.adam_beta1=0.5", "train.adam_beta2=0.99", "train.adam_eps=1e-6"])
    group = Trainer(config, tmp_path, torch.device("cpu")).optimizer.param_groups[0]
    assert (group["betas"], group["eps"]) == ((0.5, 0.99), 1e-6)
