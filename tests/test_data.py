"""The sprite renderer, factor distributions and presets: exact, reproducible ground truth."""

from __future__ import annotations

import colorsys
import math

import pytest
import torch

from sbvae.data import (
    PRESETS,
    SHAPES,
    Continuous,
    Discrete,
    ImageDataset,
    Intersection,
    Product,
    SetMinus,
    SpriteRenderer,
    derive_seed,
    hsv_to_rgb,
    make_dataset,
    make_generator,
    require_ground_truth,
)
from sbvae.data.factors import TWO_PI
from sbvae.data.sprites import MARGIN, UNIT
from sbvae.errors import UserError
from sbvae.evaluation.sampling import GroundTruthSampler


def central(n: int = 1, **factors: float) -> dict[str, torch.Tensor]:
    """Factors for ``n`` identical sprites, centred unless ``x``/``y`` are given."""
    base = {"shape": 0.0, "scale": 1.0, "orientation": 0.0, "x": 0.5, "y": 0.5}
    base.update(factors)
    return {k: torch.full((n,), float(v), dtype=torch.float64) for k, v in base.items()}


# -- reproducibility ----------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["dsprites", "colored_sprites"])
def test_same_seed_same_batch_different_seed_different_batch(preset):
    data = make_dataset(preset, 32)
    a = data.sample(8, make_generator(3, "train"))
    b = data.sample(8, make_generator(3, "train"))
    assert torch.equal(a.images, b.images)
    assert torch.equal(a.values, b.values)
    assert torch.equal(a.labels, b.labels)
    c = data.sample(8, make_generator(4, "train"))
    assert not torch.equal(a.values, c.values)
    assert not torch.equal(a.images, c.images)
    d = data.sample(8, make_generator(3, "val"))  # another purpose, another stream
    assert not torch.equal(a.values, d.values)


def test_stream_continues_the_generator_and_fixed_set_is_reproducible():
    data = make_dataset("colored_sprites", 32)
    stream = data.stream(4, make_generator(0, "train"))
    first, second = next(stream), next(stream)
    assert not torch.equal(first.values, second.values)
    gen = make_generator(0, "train")
    assert torch.equal(data.sample(4, gen).values, first.values)
    assert torch.equal(data.sample(4, gen).values, second.values)
    assert torch.equal(data.fixed_set(6, 1, "val").images, data.fixed_set(6, 1, "val").images)
    assert derive_seed(0, "train") != derive_seed(0, "val")
    assert derive_seed(0, "train") != derive_seed(1, "train")


# -- geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", range(len(SHAPES)), ids=SHAPES)
@pytest.mark.parametrize("orientation", [0.0, 0.7, math.pi / 2, 2.5, 4.0])
@pytest.mark.parametrize("axis", ["x", "y"])
def test_centroid_follows_position(shape, orientation, axis):
    size = 64
    renderer = SpriteRenderer(size, 1, 4)
    positions = torch.linspace(0, 1, 11, dtype=torch.float64)
    factors = central(len(positions), shape=shape, orientation=orientation, scale=0.75)
    factors[axis] = positions
    images = renderer.render(factors)[:, 0]
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    mass = images.sum(dim=(1, 2))
    if axis == "x":
        centroid = (images.sum(dim=1) * centres).sum(1) / mass  # column: along the width
        other = (images.sum(dim=2) * centres).sum(1) / mass
    else:
        centroid = (images.sum(dim=2) * centres).sum(1) / mass  # row: y grows downwards
        other = (images.sum(dim=1) * centres).sum(1) / mass
    expected = (MARGIN + (1 - 2 * MARGIN) * positions) * size
    assert (centroid.diff() > 0).all(), centroid
    assert (centroid - expected).abs().max() < 0.5, (centroid, expected)
    # The other coordinate stays at the centre.
    assert (other - size / 2).abs().max() < 0.5


@pytest.mark.parametrize("shape", range(len(SHAPES)), ids=SHAPES)
def test_larger_scale_covers_more_pixels(shape):
    renderer = SpriteRenderer(64, 1, 4)
    scales = torch.linspace(0.5, 1.0, 6, dtype=torch.float64)
    factors = central(len(scales), shape=shape, orientation=0.3)
    factors["scale"] = scales
    area = renderer.coverage(factors, "cpu").sum(dim=(1, 2))
    assert (area.diff() > 0).all(), area
    # Every shape has the area of the square of side 2 * UNIT * size * scale.
    expected = (2 * UNIT * 64 * scales.float()) ** 2
    assert torch.allclose(area, expected, rtol=0.03), (area, expected)


def test_orientation_rotates_the_sprite():
    renderer = SpriteRenderer(64, 1, 4)
    images = renderer.render(
        central(3, shape=0, orientation=0.0) | {"orientation": torch.tensor([0.0, math.pi / 4, math.pi / 2])}
    )
    assert not torch.allclose(images[0], images[1], atol=0.05)
    assert torch.allclose(images[0], images[2], atol=1e-5)  # a square is 90-degree symmetric


# -- colour -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hsv, rgb",
    [
        ((0.0, 1.0, 1.0), (1.0, 0.0, 0.0)),  # red
        ((1 / 3, 1.0, 1.0), (0.0, 1.0, 0.0)),  # green
        ((2 / 3, 1.0, 1.0), (0.0, 0.0, 1.0)),  # blue
        ((1 / 6, 1.0, 1.0), (1.0, 1.0, 0.0)),  # yellow
        ((0.5, 1.0, 1.0), (0.0, 1.0, 1.0)),  # cyan
        ((5 / 6, 1.0, 1.0), (1.0, 0.0, 1.0)),  # magenta
        ((0.3, 0.0, 1.0), (1.0, 1.0, 1.0)),  # white
        ((0.7, 0.0, 0.5), (0.5, 0.5, 0.5)),  # grey at s = 0
        ((0.2, 0.8, 0.0), (0.0, 0.0, 0.0)),  # black at v = 0
        ((0.0, 0.5, 0.8), (0.8, 0.4, 0.4)),  # a light red
    ],
)
def test_hsv_to_rgb_known_colours(hsv, rgb):
    h, s, v = (torch.tensor([c], dtype=torch.float64) for c in hsv)
    assert torch.allclose(hsv_to_rgb(h, s, v)[0], torch.tensor(rgb, dtype=torch.float64), atol=1e-12)


def test_hsv_to_rgb_matches_colorsys():
    gen = torch.Generator().manual_seed(7)
    hsv = torch.rand(500, 3, generator=gen, dtype=torch.float64)
    rgb = hsv_to_rgb(hsv[:, 0], hsv[:, 1], hsv[:, 2])
    expected = torch.tensor([colorsys.hsv_to_rgb(*row) for row in hsv.tolist()], dtype=torch.float64)
    assert rgb.shape == (500, 3)
    assert torch.allclose(rgb, expected, atol=1e-12)


def test_sprite_interior_has_its_hsv_colour():
    data = make_dataset("colored_sprites", 64)
    batch = data.sample(12, make_generator(5, "colour"))
    names = data.factor_names
    hsv = batch.values[:, [names.index(n) for n in ("hue", "saturation", "value")]]
    rgb = hsv_to_rgb(hsv[:, 0], hsv[:, 1], hsv[:, 2]).float()
    for image, colour in zip(batch.images, rgb):
        flat = image.flatten(1)  # [3, pixels]
        brightest = flat[:, flat.sum(0).argmax()]
        assert torch.allclose(brightest, colour, atol=1e-5), (brightest, colour)
        # The interior is flat: many pixels carry exactly that colour.
        full = ((flat - colour[:, None]).abs().max(0).values < 1e-5).sum()
        assert full >= 20


def test_dsprites_is_white_and_grey_levels_are_coverage():
    data = make_dataset("dsprites", 64)
    images = data.sample(8, make_generator(0, "white")).images
    assert images.shape[1] == 1
    assert torch.allclose(images.amax(dim=(1, 2, 3)), torch.ones(8))


# -- factors: labels and values -----------------------------------------------------------


def test_discrete_labels_index_the_values():
    factor = Discrete("orientation", [TWO_PI * i / 39 for i in range(40)])
    values = factor.sample(1000, torch.Generator().manual_seed(0))
    labels = factor.labels(values)
    assert labels.shape == (1000, 1) and labels.dtype == torch.int64
    assert torch.equal(factor.values[labels[:, 0]], values[:, 0])
    assert set(labels[:, 0].tolist()) == set(range(40))  # every value drawn
    assert factor.contains(values).all()
    assert not factor.contains(torch.tensor([[0.05], [7.0]], dtype=torch.float64)).any()
    assert factor.num_classes == (40,)


def test_continuous_labels_are_bins():
    factor = Continuous("c", 0.0, 1.0, bins=4)
    values = torch.tensor([[0.0], [0.2499999], [0.25], [0.5], [0.7499], [0.75], [0.999999]], dtype=torch.float64)
    assert factor.labels(values)[:, 0].tolist() == [0, 0, 1, 2, 2, 3, 3]
    edge = torch.tensor([[math.nextafter(0.5, 0.0)]], dtype=torch.float64)
    assert factor.labels(edge).item() == 1
    assert factor.num_classes == (4,)

    shifted = Continuous("s", 0.5, 1.0, bins=20)
    width = 0.5 / 20
    middles = torch.tensor([[0.5 + (k + 0.5) * width] for k in range(20)], dtype=torch.float64)
    assert shifted.labels(middles)[:, 0].tolist() == list(range(20))

    sample = shifted.sample(5000, torch.Generator().manual_seed(1))
    assert ((sample >= 0.5) & (sample < 1.0)).all()
    labels = shifted.labels(sample)
    assert ((labels >= 0) & (labels < 20)).all()
    expected = ((sample - 0.5) / width).floor().long()
    assert torch.equal(labels, expected)
    assert shifted.contains(sample).all()
    assert not shifted.contains(torch.tensor([[0.49], [1.0]], dtype=torch.float64)).any()


@pytest.mark.parametrize(
    "preset, classes",
    [("dsprites", (3, 6, 40, 32, 32)), ("colored_sprites", (3, 6, 40, 32, 32, 20, 20, 20))],
)
def test_preset_factors_round_trip(preset, classes):
    data = make_dataset(preset, 32)
    assert data.factors.num_classes == classes
    batch = data.sample(400, make_generator(0, "labels"))
    assert batch.values.shape == (400, len(classes)) and batch.values.dtype == torch.float64
    assert batch.labels.shape == (400, len(classes)) and batch.labels.dtype == torch.int64
    assert (batch.labels >= 0).all()
    assert (batch.labels < torch.tensor(classes)).all()
    assert data.factors.contains(batch.values).all()
    for i, leaf in enumerate(_leaves(data.factors)):
        assert leaf.names == (data.factor_names[i],)
        if isinstance(leaf, Discrete):  # the dSprites grid: labels index the values
            assert torch.equal(leaf.values[batch.labels[:, i]], batch.values[:, i])
        else:  # the colour box: labels are bins
            width = (leaf.high - leaf.low) / leaf.bins
            lower = leaf.low + batch.labels[:, i] * width
            assert ((lower <= batch.values[:, i] + 1e-12) & (batch.values[:, i] < lower + width + 1e-12)).all()
    assert sum(isinstance(leaf, Discrete) for leaf in _leaves(data.factors)) == 5


def _leaves(dist):
    return [leaf for part in dist.parts for leaf in _leaves(part)] if isinstance(dist, Product) else [dist]


def test_dsprites_grid_values():
    data = make_dataset("dsprites", 32)
    parts = dict(zip(data.factor_names, data.factors.parts))
    assert data.factor_names == ("shape", "scale", "orientation", "x", "y")
    assert torch.allclose(parts["scale"].values, torch.linspace(0.5, 1.0, 6, dtype=torch.float64))
    assert parts["orientation"].values[0] == 0 and math.isclose(parts["orientation"].values[-1], TWO_PI)
    assert torch.allclose(parts["x"].values, torch.linspace(0, 1, 32, dtype=torch.float64))


# -- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("preset, channels", [("dsprites", 1), ("colored_sprites", 3)])
@pytest.mark.parametrize("size", [32, 48, 64])
def test_images_in_unit_range_with_black_background(preset, channels, size):
    data = make_dataset(preset, size)
    assert data.channels == channels and data.image_size == size
    batch = data.sample(16, make_generator(size, "range"))
    images = batch.images
    assert images.shape == (16, channels, size, size) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert images.max() > 0.4  # something is drawn
    # With the sprite in the middle, the corners are black.
    values = batch.values.clone()
    values[:, data.factor_names.index("x")] = 0.5
    values[:, data.factor_names.index("y")] = 0.5
    centred = data.render(values)
    corners = centred[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.equal(corners, torch.zeros_like(corners))
    # Every image draws something: the sprite never vanishes.
    assert (centred.flatten(1).sum(1) > 0).all()


def test_render_is_chunk_independent():
    data = make_dataset("colored_sprites", 32)
    batch = data.sample(10, make_generator(0, "chunks"))
    small = SpriteRenderer(32, 3, 4, max_points=3 * 128 * 128)  # three images per chunk
    columns = {n: batch.values[:, i] for i, n in enumerate(data.factor_names)}
    assert torch.equal(small.render(columns), batch.images)


# -- restricted distributions -------------------------------------------------------------


def _space() -> Product:
    return Product(Discrete("shape", [0, 1, 2]), Continuous("x", 0.0, 1.0), Continuous("y", 0.0, 1.0))


def _square() -> Product:
    return Product(Continuous("x", 0.25, 0.75), Continuous("y", 0.25, 0.75))


def _in_square(values: torch.Tensor) -> torch.Tensor:
    x, y = values[:, 1], values[:, 2]
    return (x >= 0.25) & (x < 0.75) & (y >= 0.25) & (y < 0.75)


def test_set_minus_never_samples_the_removed_region():
    dist = SetMinus(_space(), _square())
    values = dist.sample(3000, torch.Generator().manual_seed(0))
    assert values.shape == (3000, 3)
    assert not _in_square(values).any()
    assert dist.contains(values).all()
    # It still covers the rest of the space, e.g. both sides of the hole.
    assert (values[:, 1] < 0.25).any() and (values[:, 1] >= 0.75).any()
    assert ((values[:, 1] > 0.25) & (values[:, 1] < 0.75)).any()  # beside the hole in y


def test_intersection_only_samples_inside_its_region():
    dist = Intersection(_space(), _square())
    values = dist.sample(3000, torch.Generator().manual_seed(1))
    assert _in_square(values).all()
    assert dist.contains(values).all()
    hearts = Intersection(_space(), Discrete("shape", [2]))
    assert (hearts.sample(500, torch.Generator().manual_seed(2))[:, 0] == 2).all()


def test_contains_agrees_with_the_region():
    base = _space()
    values = base.sample(3000, torch.Generator().manual_seed(3))
    inside = _in_square(values)
    assert inside.any() and (~inside).any()
    assert torch.equal(SetMinus(base, _square()).contains(values), ~inside)
    assert torch.equal(Intersection(base, _square()).contains(values), inside)
    outside_base = torch.tensor([[0.0, 1.5, 0.1], [0.5, 0.5, 0.5]], dtype=torch.float64)
    assert not SetMinus(base, _square()).contains(outside_base).any()
    assert not Intersection(base, _square()).contains(outside_base).any()
    # Labels and classes are the base's.
    dist = SetMinus(base, _square())
    assert dist.num_classes == base.num_classes
    assert torch.equal(dist.labels(values), base.labels(values))


def test_region_must_name_base_factors():
    with pytest.raises(ValueError, match="not factors"):
        SetMinus(_space(), Continuous("hue", 0.0, 0.5))


def test_presets_registry():
    assert set(PRESETS) == {
        "dsprites",
        "colored_sprites",
        "colored_sprites_heldout",
        "small_sprites",
        "small_dsprites",
        "dependent_sprites",
        "objects_room",
        "chairs",
    }
    with pytest.raises(KeyError):
        make_dataset("nonsense", 32)


def test_every_shape_stays_within_the_render_window_reach():
    from sbvae.data import sprites

    line = torch.linspace(-3, 3, 1201)
    v, u = torch.meshgrid(line, line, indexing="ij")
    for inside in sprites._INSIDE:
        mask = inside(u, v)
        assert mask.any() and torch.sqrt(u**2 + v**2)[mask].max() <= sprites.REACH


def _column(data, values, name):
    return values[:, data.factor_names.index(name)]


def test_held_out_stream_never_yields_the_block_and_the_test_set_only_does():
    from sbvae.data import make_heldout_dataset

    train = make_dataset("colored_sprites_heldout", 32)
    test = make_heldout_dataset("colored_sprites_heldout", 32)
    stream = torch.cat([b.values for _, b in zip(range(20), train.stream(1000, make_generator(0, "held")))])
    in_block = (_column(train, stream, "x") >= 0.6) & (_column(train, stream, "y") >= 0.6)
    assert len(stream) == 20_000 and not in_block.any()
    assert (_column(train, stream, "x") >= 0.6).any() and (_column(train, stream, "y") >= 0.6).any()
    held = test.sample(2_000, make_generator(0, "held-test")).values
    assert ((_column(test, held, "x") >= 0.6) & (_column(test, held, "y") >= 0.6)).all()
    assert make_heldout_dataset("colored_sprites", 32) is None


@pytest.mark.parametrize("preset, channels", [("small_sprites", 3), ("small_dsprites", 1)])
def test_small_sprites_are_a_few_pixels_across(preset, channels):
    data = make_dataset(preset, 32)
    assert data.channels == channels
    batch = data.sample(500, make_generator(0, "small"))
    lit_area = batch.images.max(dim=1).values.gt(0).float().sum((1, 2))  # pixels the sprite touches
    coverage = (batch.images.max(dim=1).values / batch.images.flatten(1).max(1).values[:, None, None]).sum((1, 2))
    assert coverage.min() > 3 and coverage.max() < 12  # sides 2.1 to 3.3 px: areas 4.3 to 11.1 px^2
    assert lit_area.max() <= 25  # no sprite spans more than about 5 x 5 pixels


def test_dependent_sprites_tie_colour_to_position_inside_a_disc():
    data = make_dataset("dependent_sprites", 32)
    values = data.factors.sample(5_000, make_generator(0, "dep"))
    x, y, hue = (_column(data, values, n) for n in ("x", "y", "hue"))
    assert (((x - 0.5) ** 2 + (y - 0.5) ** 2) <= 0.25 + 1e-12).all()
    assert ((hue - x).abs() <= 0.15).all()
    assert torch.corrcoef(torch.stack([x, hue]))[0, 1] > 0.9
    assert abs(float(torch.corrcoef(torch.stack([x, y]))[0, 1])) < 0.1  # the disc is symmetric


def test_a_set_of_images_is_a_dataset_without_ground_truth():
    stack = make_dataset("colored_sprites", 16).sample(10, make_generator(0, "stack")).images
    images = ImageDataset("mine", stack)
    assert (images.image_size, images.channels, images.has_ground_truth) == (16, 3, False)
    a, b = images.fixed_set(6, seed=3, split="val"), images.fixed_set(6, seed=3, split="val")
    assert torch.equal(a.images, b.images) and a.values.shape == a.labels.shape == (6, 0)
    assert all(any(torch.equal(image, s) for s in stack) for image in a.images)  # drawn from the stack
    with pytest.raises(ValueError, match="square images"):
        ImageDataset("wide", torch.zeros(2, 3, 16, 32))


def test_metrics_decline_data_without_ground_truth_in_one_line():
    sprites = make_dataset("colored_sprites", 16)
    assert require_ground_truth(sprites, "the metrics") is sprites
    images = ImageDataset("mine", sprites.sample(4, make_generator(0, "x")).images)
    with pytest.raises(UserError, match="need ground-truth factors, and dataset mine has none") as caught:
        GroundTruthSampler(images, None, torch.device("cpu"))
    assert "\n" not in str(caught.value)


def test_training_draws_through_the_dataset_interface(tmp_path, monkeypatch):
    """The training step asks the dataset for keys and their images only, so a set of images trains."""
    from sbvae.config import load_config
    from sbvae.training import loop

    stack = make_dataset("colored_sprites", 32).sample(20, make_generator(0, "stack")).images
    monkeypatch.setattr(loop, "make_dataset", lambda *args: ImageDataset("mine", stack))
    trainer = loop.Trainer(
        load_config("default", ["model.sbd_channels=8", "train.batch_size=4"]), tmp_path, torch.device("cpu")
    )
    before = [p.detach().clone() for p in trainer.model.parameters()]
    terms = [trainer.train_step() for _ in range(2)]
    assert all(torch.isfinite(t.loss) for t in terms) and trainer.step == 2
    assert any(not torch.equal(p, b) for p, b in zip(trainer.model.parameters(), before))
