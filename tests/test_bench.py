"""The benchmark's baselines are faithful, so its ratios mean what they say."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sbvae.bench import (
    PAPER_SBD,
    ReferenceSBD,
    TrainCase,
    bench_config,
    forward_flops,
    pillow_render,
    recipe_benchmark,
    recipe_config,
    train_cases,
)
from sbvae.data import make_dataset, make_generator
from sbvae.models import build_vae


def test_reference_sbd_computes_the_same_function():
    torch.manual_seed(0)
    model = build_vae(PAPER_SBD, 32, 3)
    z = torch.randn(3, PAPER_SBD.latent_dim)
    torch.testing.assert_close(ReferenceSBD(model.decoder)(z), model.decoder(z), rtol=1e-4, atol=1e-4)


def test_forward_flops_counts_multiply_adds_twice():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    expected = 2 * (8 * 6 * 6 * 3 * 9) + 2 * (8 * 6 * 6 * 5)
    assert forward_flops(net, torch.zeros(1, 3, 8, 8)) == expected


def test_pillow_baseline_draws_the_same_sprites():
    data = make_dataset("colored_sprites", 64)
    values = data.factors.sample(12, make_generator(0, "pillow"))
    ours = data.render(values).permute(0, 2, 3, 1).numpy()
    pillow = pillow_render(values, data.factor_names, 64) / 255.0
    for a, b in zip(ours, pillow):
        mass_a, mass_b = a.sum(-1), b.sum(-1)
        assert abs(mass_a.sum() - mass_b.sum()) < 0.15 * mass_a.sum()  # same area and colour
        grid = np.arange(64)
        for axis in (0, 1):  # same centre of mass, within a pixel
            centre_a = (mass_a.sum(1 - axis) * grid).sum() / mass_a.sum()
            centre_b = (mass_b.sum(1 - axis) * grid).sum() / mass_b.sum()
            assert abs(centre_a - centre_b) < 1.0


def test_a_case_times_the_training_step_of_sbvae_train():
    case = next(c for c in train_cases([32], [16]) if c.name == "deconv 32px b16")
    assert case.config.train.batch_size == 16 and case.config.model.decoder == "deconv"
    before = [p.detach().clone() for p in case.trainer.model.parameters()]
    case.step()
    assert case.trainer.step == 1  # Trainer.train_step ran: a fresh batch, one Adam step
    assert any(not torch.equal(a, b) for a, b in zip(before, case.trainer.model.parameters()))


def test_the_reference_case_trains_the_same_model_through_the_same_step():
    """The straightforward SBD swapped into the Trainer takes the same step as ours."""
    config = bench_config(PAPER_SBD, 32, 4, channels_last=False)  # as the reference case runs
    reference, ours = TrainCase("reference", config, reference=True), TrainCase("ours", config)
    assert isinstance(reference.trainer.model.decoder, ReferenceSBD)
    assert not isinstance(ours.trainer.model.decoder, ReferenceSBD)
    reference.step()
    ours.step()
    for a, b in zip(reference.trainer.model.parameters(), ours.trainer.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_recipe_is_a_preset_with_overrides_timed_beside_the_default():
    config = recipe_config("default model.sbd_channels=8 train.batch_size=4")
    assert (config.model.sbd_channels, config.train.batch_size, config.data.preset) == (8, 4, "colored_sprites")
    result = recipe_benchmark(["default model.deconv_channels=8 model.decoder=deconv train.batch_size=4"], repeats=1)
    assert list(result) == ["default", "default model.deconv_channels=8 model.decoder=deconv train.batch_size=4"]
    assert result["default"]["vs_default"] == 1.0
    assert all(row["images_per_sec"] > 0 for row in result.values())
