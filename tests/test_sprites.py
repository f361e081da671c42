"""The sprite renderer samples only the pixels on a sprite's edge: the same images as sampling
every pixel, bit for bit, and within stated bounds of 16x16 supersampling."""

from __future__ import annotations

import math

import pytest
import torch

from sbvae.data import PRESETS, SHAPES, SpriteRenderer, make_dataset, make_generator
from sbvae.data import sprites as S
from sbvae.data.dataset import SpriteDataset

SPRITE_PRESETS = [name for name in PRESETS if isinstance(make_dataset(name, 8), SpriteDataset)]


def columns(data: SpriteDataset, values: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: values[:, i] for i, name in enumerate(data.factor_names)}


def sample(preset: str, size: int, n: int, seed: int = 0) -> tuple[SpriteDataset, dict[str, torch.Tensor]]:
    data = make_dataset(preset, size)
    assert isinstance(data, SpriteDataset)
    return data, columns(data, data.factors.sample(n, make_generator(seed, "sprites test")))


@pytest.mark.parametrize("shape", range(len(SHAPES)), ids=SHAPES)
def test_the_edge_bound_decides_every_point_within_it(shape):
    """Every point closer to a pixel centre than the bound there is on the same side of the
    edge as the centre: what lets the renderer skip sampling those pixels."""
    gen = torch.Generator().manual_seed(shape)
    centre = torch.rand(20_000, 2, generator=gen) * 5 - 2.5
    bound = S._EDGE[shape](centre[:, 0], centre[:, 1])
    angle = torch.rand(20_000, 32, generator=gen) * 2 * math.pi
    reach = bound.abs()[:, None] * torch.rand(20_000, 32, generator=gen) * 0.999
    u = centre[:, :1] + reach * torch.cos(angle)
    v = centre[:, 1:] + reach * torch.sin(angle)
    inside = S._INSIDE[shape](u, v)
    assert torch.equal(inside, (bound < 0)[:, None].expand_as(inside))
    assert (bound < 0).any() and (bound > 0).any()


@pytest.mark.parametrize("shape", range(len(SHAPES)), ids=SHAPES)
def test_each_shape_reaches_its_stated_reach(shape):
    line = torch.linspace(-2, 2, 1601)
    v, u = torch.meshgrid(line, line, indexing="ij")
    radius = torch.hypot(u, v)[S._INSIDE[shape](u, v)]
    assert S._REACHES[shape] * 0.995 <= radius.max() <= S._REACHES[shape]


@pytest.mark.parametrize(
    "preset, size", [(p, 32) for p in SPRITE_PRESETS] + [("dsprites", 64), ("colored_sprites", 16)]
)
def test_images_equal_sampling_every_pixel_of_the_image(preset, size, monkeypatch):
    """Bit for bit, including sprites at the image's corners at the largest scale."""
    data, factors = sample(preset, size, 150)
    factors["x"][:8] = torch.tensor([0.0, 1.0] * 4, dtype=torch.float64)
    factors["y"][:8] = torch.tensor([0.0, 0.0, 1.0, 1.0] * 2, dtype=torch.float64)
    factors["scale"][:8] = factors["scale"].max()
    images = data.render(torch.stack(list(factors.values()), dim=1))
    sprites = S._Sprites.of({k: v.float() for k, v in factors.items()}, size)
    assert all(len(sprites.window(reach)[0][0]) < size for reach in S._REACHES)  # windows smaller than the image
    monkeypatch.setattr(S, "REACH", 100.0)  # the reference's window: the whole image
    every = SpriteRenderer(size, data.channels, 4, sample_all=True)
    assert torch.equal(images, every.render(factors))


@pytest.mark.parametrize("size, supersample", [(64, 1), (64, 3), (64, 8), (16, 4), (8, 2)])
def test_every_size_and_supersampling_equals_sampling_every_pixel(size, supersample):
    _, factors = sample("colored_sprites", size, 100, seed=1)
    fast = SpriteRenderer(size, 3, supersample)
    every = SpriteRenderer(size, 3, supersample, sample_all=True)
    assert torch.equal(fast.render(factors), every.render(factors))


# The sprites' inside samples (4 x 4 per pixel) as the renderer before issue 28 counted them.
TODAY = torch.tensor(
    [  # shape, scale, orientation, x, y
        (0, 1.0, 0.0, 0.5, 0.5),
        (0, 0.7, 0.6, 0.1, 0.9),
        (1, 0.5, 1.3, 0.8, 0.2),
        (1, 1.0, 2.9, 0.0, 1.0),
        (2, 0.9, 0.0, 0.35, 0.65),
        (2, 0.6, 4.4, 1.0, 0.0),
        (2, 0.25, 5.5, 0.6, 0.4),
        (1, 0.3, 0.2, 0.45, 0.55),
    ],
    dtype=torch.float64,
)
TODAY_SAMPLES = {
    32: [1156, 542, 275, 1107, 898, 400, 76, 99],
    64: [4356, 2169, 1106, 4434, 3597, 1594, 272, 400],
}


@pytest.mark.parametrize("size", sorted(TODAY_SAMPLES))
def test_same_samples_as_the_renderer_before(size):
    factors = dict(zip(["shape", "scale", "orientation", "x", "y"], TODAY.T))
    cover = SpriteRenderer(size, 1, 4).coverage(factors, "cpu")
    assert (cover * 16).sum((1, 2)).tolist() == TODAY_SAMPLES[size]


def centre_of_mass(cover: torch.Tensor) -> torch.Tensor:
    """Column and row of each coverage map's centre of mass, in pixels: ``[N, 2]``."""
    centres = torch.arange(cover.shape[-1], dtype=cover.dtype) + 0.5
    mass = cover.sum((1, 2))
    return torch.stack([(cover.sum(1) * centres).sum(1), (cover.sum(2) * centres).sum(1)], dim=1) / mass[:, None]


@pytest.mark.parametrize("preset, size, n", [(p, 32, 250) for p in SPRITE_PRESETS] + [("colored_sprites", 64, 100)])
def test_antialiasing_within_its_bounds_of_16x16_supersampling(preset, size, n):
    """The bounds docs/performance.md states (measured on 5,000 sprites a preset by
    benchmarks/sprite_renderer.py): per pixel, a mean absolute error under 0.001 and none over
    0.25; each sprite's area within 10% (20% for sprites under half the dSprites scale, whose
    4 x 4 samples set each side to a quarter pixel) and its centre of mass within 0.2 px."""
    data, factors = sample(preset, size, n)
    cover = data.renderer.coverage(factors, "cpu")
    reference = SpriteRenderer(size, 1, 16, sample_all=True).coverage(factors, "cpu")
    error = (cover - reference).abs()
    assert error.mean() < 1e-3 and error.max() < 0.25
    area = cover.sum((1, 2)) / reference.sum((1, 2))
    assert (area - 1).abs().max() < (0.2 if factors["scale"].max() < 0.5 else 0.1)
    assert (centre_of_mass(cover) - centre_of_mass(reference)).norm(dim=1).max() < 0.2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_renders_on_cuda():
    data, factors = sample("colored_sprites", 64, 200)
    values = torch.stack(list(factors.values()), dim=1)
    images = data.render(values, "cuda")
    assert images.device.type == "cuda"
    every = SpriteRenderer(64, 3, 4, sample_all=True).render(factors, "cuda")
    assert torch.equal(images, every)
    # the CPU's sines and cosines may differ in the last bit: at most a sample a pixel flips
    assert (images.cpu() - data.render(values)).abs().max() <= 1 / 16 + 1e-6
