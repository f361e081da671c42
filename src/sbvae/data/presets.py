"""Named datasets. Each preset is a function of the image size (and supersampling) returning a
:class:`GroundTruthDataset`: sprites, or a 3D scene.

* ``dsprites``: dSprites' factor grid (shape 3, scale 6 in [0.5, 1], orientation 40 in
  [0, 2 pi] with both ends included as in dSprites, x 32 and y 32 in [0, 1]), white sprites,
  one channel.
* ``colored_sprites``: the paper's coloured sprites: the same grid, with a colour drawn
  uniformly from an HSV box: hue [0, 1), saturation [0.5, 1), value [0.5, 1). The paper's
  exact ranges are in an appendix we could not read; this box avoids grey and dark sprites
  that would be invisible on the black background. Colour factors are labelled over 20 bins.

The reproduction's datasets (the paper's exact ones are unknown; each choice is ours):

* ``colored_sprites_heldout``: ``colored_sprites`` without the block x >= 0.6 and y >= 0.6
  (13 of 32 positions on each axis, 16.5% of the positions); ``make_heldout_dataset`` gives
  the block alone, the held-out test set.
* ``small_sprites``: ``colored_sprites`` with scales 0.25 to 0.4, sprites 2 to 3.3 pixels
  across at 32 px (``scale * 2 * UNIT * size`` for the square, the same area for the others).
* ``small_dsprites``: ``dsprites`` at the scales of ``small_sprites``: white sprites 2 to 3.3
  pixels across, one channel. Neither decoder reliably learns the colour of a sprite that small
  at the CPU scale (docs/reproduction.md, "small-objects: why white sprites"), so claim 4 is
  tested here.
* ``dependent_sprites``: ``colored_sprites`` with positions inside the disc of radius 0.5
  around the centre and the hue within 0.15 of x: position and colour depend on each other.

The paper's datasets without positional variation, ray-cast (:mod:`sbvae.data.room`,
:mod:`sbvae.data.chairs` document every choice):

* ``objects_room``: 3D Object-in-Room on the 3D Shapes grid (480,000 combinations). Its
  latent-geometry plot shows orientation against scale: both are ordered and change the picture
  smoothly, while the hues are circular (0.9 is next to 0.0), so a model may lay a hue out on a
  ring that one latent per factor cannot show flat, and shape is a category.
* ``chairs``: parametric chairs from 62 views (17,856 combinations). Its plot shows seat width
  against leg length: both are ordered and stretch the chair in perpendicular directions, while
  azimuth is circular (the full turn) and elevation has two values.

A scene's renderer keeps what it has ray-cast, so the presets build one renderer per image size
and supersampling and share it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sbvae.data.chairs import RENDERER_VERSION as CHAIRS_RENDERER
from sbvae.data.chairs import ChairRenderer
from sbvae.data.dataset import GroundTruthDataset, SceneDataset, SpriteDataset
from sbvae.data.factors import (
    TWO_PI,
    Band,
    Continuous,
    Disc,
    Discrete,
    FactorDistribution,
    Intersection,
    Product,
    SetMinus,
    grid,
)
from sbvae.data.room import RENDERER_VERSION as ROOM_RENDERER
from sbvae.data.room import RoomRenderer
from sbvae.data.sprites import SHAPES, SpriteRenderer


def dsprites_factors(scales: list[float] | None = None) -> Product:
    """The dSprites grid: 3 x 6 x 40 x 32 x 32 = 737,280 combinations (other ``scales`` if given)."""
    return Product(
        Discrete("shape", [0, 1, 2], value_names=SHAPES),
        Discrete("scale", scales or grid(0.5, 1.0, 6)),
        Discrete("orientation", grid(0.0, TWO_PI, 40)),
        Discrete("x", grid(0.0, 1.0, 32)),
        Discrete("y", grid(0.0, 1.0, 32)),
    )


def colour_factors() -> Product:
    """The HSV box of ``colored_sprites``."""
    return Product(
        Continuous("hue", 0.0, 1.0),
        Continuous("saturation", 0.5, 1.0),
        Continuous("value", 0.5, 1.0),
    )


def dsprites(image_size: int, supersample: int = 4) -> SpriteDataset:
    return SpriteDataset("dsprites", dsprites_factors(), SpriteRenderer(image_size, 1, supersample))


def colored_sprites(image_size: int, supersample: int = 4) -> SpriteDataset:
    factors = Product(dsprites_factors(), colour_factors())
    return SpriteDataset("colored_sprites", factors, SpriteRenderer(image_size, 3, supersample))


HELD_OUT_BLOCK = Product(Continuous("x", 0.6, 1.01), Continuous("y", 0.6, 1.01))
"""The region ``colored_sprites_heldout`` never shows in training (x and y both >= 0.6)."""
SMALL_SCALES = grid(0.25, 0.4, 4)


def _coloured(name: str, factors: FactorDistribution, image_size: int, supersample: int) -> SpriteDataset:
    return SpriteDataset(name, factors, SpriteRenderer(image_size, 3, supersample))


def colored_sprites_heldout(image_size: int, supersample: int = 4) -> SpriteDataset:
    base = Product(dsprites_factors(), colour_factors())
    return _coloured("colored_sprites_heldout", SetMinus(base, HELD_OUT_BLOCK), image_size, supersample)


def small_sprites(image_size: int, supersample: int = 4) -> SpriteDataset:
    return _coloured(
        "small_sprites", Product(dsprites_factors(SMALL_SCALES), colour_factors()), image_size, supersample
    )


def small_dsprites(image_size: int, supersample: int = 4) -> SpriteDataset:
    return SpriteDataset("small_dsprites", dsprites_factors(SMALL_SCALES), SpriteRenderer(image_size, 1, supersample))


def dependent_sprites(image_size: int, supersample: int = 4) -> SpriteDataset:
    base = Product(dsprites_factors(), colour_factors())
    inside = Intersection(Intersection(base, Disc("x", "y", (0.5, 0.5), 0.5)), Band("hue", "x", 0.15))
    return _coloured("dependent_sprites", inside, image_size, supersample)


@functools.cache
def _room(image_size: int, supersample: int) -> RoomRenderer:
    return RoomRenderer(image_size, supersample)


@functools.cache
def _chairs(image_size: int, supersample: int) -> ChairRenderer:
    return ChairRenderer(image_size, supersample)


def objects_room(image_size: int, supersample: int = 4) -> SceneDataset:
    renderer = _room(image_size, supersample)
    return SceneDataset("objects_room", renderer.factors, renderer, ("orientation", "scale"))


def chairs(image_size: int, supersample: int = 4) -> SceneDataset:
    renderer = _chairs(image_size, supersample)
    return SceneDataset("chairs", renderer.factors, renderer, ("seat_width", "leg_length"))


PRESETS: dict[str, Callable[..., GroundTruthDataset]] = {
    "dsprites": dsprites,
    "colored_sprites": colored_sprites,
    "colored_sprites_heldout": colored_sprites_heldout,
    "small_sprites": small_sprites,
    "small_dsprites": small_dsprites,
    "dependent_sprites": dependent_sprites,
    "objects_room": objects_room,
    "chairs": chairs,
}


RENDERER_VERSIONS = {"objects_room": ROOM_RENDERER, "chairs": CHAIRS_RENDERER}
"""The version of the renderer of each preset that has one (the others: 1)."""


def renderer_version(preset: str) -> int:
    """The version of a preset's renderer, raised whenever its images change."""
    return RENDERER_VERSIONS.get(preset, 1)


def make_dataset(preset: str, image_size: int, supersample: int = 4) -> GroundTruthDataset:
    """Build a preset by name; raises ``KeyError`` for an unknown name."""
    return PRESETS[preset](image_size, supersample)


def make_heldout_dataset(preset: str, image_size: int, supersample: int = 4) -> GroundTruthDataset | None:
    """The held-out test set of a preset that holds a region out of training, else None."""
    if preset != "colored_sprites_heldout":
        return None
    base = Product(dsprites_factors(), colour_factors())
    return _coloured("colored_sprites_heldout:test", Intersection(base, HELD_OUT_BLOCK), image_size, supersample)
