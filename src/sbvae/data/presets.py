"""Named datasets. Each preset is a function of the image size returning a :class:`SpriteDataset`.

* ``dsprites``: dSprites' factor grid (shape 3, scale 6 in [0.5, 1], orientation 40 in
  [0, 2 pi] with both ends included as in dSprites, x 32 and y 32 in [0, 1]), white sprites,
  one channel.
* ``colored_sprites``: the paper's coloured sprites: the same grid, with a colour drawn
  uniformly from an HSV box: hue [0, 1), saturation [0.5, 1), value [0.5, 1). The paper's
  exact ranges are in an appendix we could not read; this box avoids grey and dark sprites
  that would be invisible on the black background. Colour factors are labelled over 20 bins.
"""

from __future__ import annotations

from collections.abc import Callable

from sbvae.data.dataset import SpriteDataset
from sbvae.data.factors import TWO_PI, Continuous, Discrete, Product, grid
from sbvae.data.sprites import SpriteRenderer


def dsprites_factors() -> Product:
    """The dSprites grid: 3 x 6 x 40 x 32 x 32 = 737,280 combinations."""
    return Product(
        Discrete("shape", [0, 1, 2]),
        Discrete("scale", grid(0.5, 1.0, 6)),
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


PRESETS: dict[str, Callable[..., SpriteDataset]] = {
    "dsprites": dsprites,
    "colored_sprites": colored_sprites,
}


def make_dataset(preset: str, image_size: int, supersample: int = 4) -> SpriteDataset:
    """Build a preset by name; raises ``KeyError`` for an unknown name."""
    return PRESETS[preset](image_size, supersample)
