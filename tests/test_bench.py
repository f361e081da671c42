"""The benchmark's baselines are faithful, so its ratios mean what they say."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sbvae.bench import PAPER_SBD, ReferenceSBD, forward_flops, pillow_render
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
