"""A vectorized, anti-aliased renderer of one sprite per image on a black background.

Geometry (documented because tests and metrics rely on it):

* ``x`` and ``y`` in [0, 1] place the sprite's centre of mass at pixel coordinates
  ``(MARGIN + (1 - 2 MARGIN) x) * size`` along the width (x grows to the right, column index)
  and the same along the height (y grows *downwards*, row index, as in the image array).
* ``scale`` multiplies the sprite's size; every shape has the same area at the same scale
  (the square at scale 1 has side ``2 * UNIT * size``).
* ``orientation`` (radians) rotates the sprite about its centre of mass.
* ``hue``, ``saturation``, ``value`` give its colour in HSV; without them the sprite is white.

Anti-aliasing: each pixel is the mean of the shape's inside test over ``supersample x
supersample`` points of it. Only the pixels on the sprite's edge are sampled: a lower bound on
each pixel centre's distance to the edge (``_EDGE``) tells which pixels lie wholly inside or
outside, and those are 1 or 0 without sampling, so the images equal sampling every pixel bit
for bit (``SpriteRenderer(sample_all=True)``, how the renderer worked before issue 28). All of
it runs with tensor ops over the whole batch (no Python loop per image), on the CPU or a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SHAPES = ("square", "ellipse", "heart")
SYMMETRY = (4, 2, 1)
"""For each of :data:`SHAPES`, the turns after which it looks the same again in a whole turn."""
MARGIN = 0.21
UNIT = 0.13

# Unit shapes have area 4 (a square of half-side 1) and their centre of mass at the origin.
_ELLIPSE_B = math.sqrt(2 / math.pi)  # semi-axes (2b, b): area 2*pi*b^2 = 4
_ELLIPSE_A = 2 * _ELLIPSE_B
_HEART_D = math.sqrt(4 / (2 + math.pi / 2))  # half-diagonal of the heart's tilted square
_HEART_R = _HEART_D / math.sqrt(2)  # radius of its two lobes
# The lobes add two half-discs whose centres of mass sit 0.5 d + 4 r / (3 pi sqrt 2) above
# the square's centre; the heart's centre of mass is their area-weighted mean.
_HEART_SHIFT = (math.pi / 2 * _HEART_D**2) * (0.5 * _HEART_D + 4 * _HEART_R / (3 * math.pi * math.sqrt(2))) / 4

ShapeFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # of unit-shape coordinates u, v


def angle_as_seen(shapes: torch.Tensor, radians: torch.Tensor) -> torch.Tensor:
    """``[N, 2]``: the angle each sprite's picture shows, as the cosine and sine of ``k`` times
    its orientation, ``k`` its shape's :data:`SYMMETRY` (a square turned by a quarter looks
    unturned). ``shapes`` ``[N]`` are indices into :data:`SHAPES`."""
    turns = torch.tensor(SYMMETRY, dtype=torch.float64, device=shapes.device)[shapes.long()]
    angle = radians.double() * turns
    return torch.stack([angle.cos(), angle.sin()], dim=1).float()


def seen_angles(values: torch.Tensor, factor_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The shapes ``[N]`` of sprite factor ``values`` ``[N, K]`` (columns named by
    ``factor_names``) and the angles their pictures show ``[N, 2]`` (:func:`angle_as_seen`)."""
    names = list(factor_names)
    shapes = values[:, names.index("shape")].round().long()
    return shapes, angle_as_seen(shapes, values[:, names.index("orientation")])


def _inside_square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u.abs() <= 1) & (v.abs() <= 1)


def _inside_ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u / _ELLIPSE_A) ** 2 + (v / _ELLIPSE_B) ** 2 <= 1


def _inside_heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A heart pointing down (+v): a square tilted 45 degrees plus two round lobes on top."""
    v = v - _HEART_SHIFT  # move the centre of mass to the origin
    d, r = _HEART_D, _HEART_R
    body = u.abs() + v.abs() <= d
    lobe_left = (u + d / 2) ** 2 + (v + d / 2) ** 2 <= r**2
    lobe_right = (u - d / 2) ** 2 + (v + d / 2) ** 2 <= r**2
    return body | lobe_left | lobe_right


def _edge_square(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``max(|u|, |v|) - 1``: exact inside, at most the distance outside (equal but near the
    corners)."""
    return torch.maximum(u.abs(), v.abs()) - 1


def _edge_ellipse(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``b (|(u/a, v/b)| - 1)``: the point lies on the ellipse scaled by ``t = 1 + that/b``
    about its centre, and an ellipse that holds the disc of radius b lies at least ``|t - 1| b``
    from its scaled copy, inside or out."""
    return (torch.hypot(u * (1 / _ELLIPSE_A), v * (1 / _ELLIPSE_B)) - 1) * _ELLIPSE_B


def _edge_heart(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The least of the body's (as for the square, in its tilted frame) and the lobes' (exact)
    values: at most the distance outside the heart, and at most the depth inside."""
    v = v - _HEART_SHIFT
    body = (u.abs() + v.abs()) * math.sqrt(0.5) - _HEART_R
    lobes = torch.hypot(u.abs() - _HEART_D / 2, v + _HEART_D / 2) - _HEART_R
    return torch.minimum(body, lobes)


_INSIDE: tuple[ShapeFn, ...] = (_inside_square, _inside_ellipse, _inside_heart)
_EDGE: tuple[ShapeFn, ...] = (_edge_square, _edge_ellipse, _edge_heart)
"""Per shape, in unit-shape coordinates: a lower bound on the distance to the shape's edge,
negative inside."""
_REACHES = (math.sqrt(2), _ELLIPSE_A, _HEART_D + _HEART_SHIFT)  # the corner, the long axis, the tip
REACH = max(_REACHES)
"""The farthest any unit shape reaches from its centre of mass (the ellipse's semi-major
axis; the square reaches sqrt(2), the heart about 1.39)."""


def hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Convert ``[N]`` HSV values in [0, 1] to ``[N, 3]`` RGB in [0, 1]."""
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hue.dtype, device=hue.device)
    k = (n[None, :] + hue[:, None] * 6) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value[:, None] - value[:, None] * saturation[:, None] * ramp


@dataclass(frozen=True)
class _Sprites:
    """``M`` sprites in a ``size`` px image: ``shape`` ``[M]`` (indices into ``SHAPES``) and
    ``placement`` ``[M, 5]``: the centre's column and row in pixels, the pixels per unit-shape
    length, and the cosine and sine of the orientation."""

    size: int
    shape: torch.Tensor
    placement: torch.Tensor

    @classmethod
    def of(cls, factors: dict[str, torch.Tensor], size: int) -> _Sprites:
        """From float32 ``factors`` (name -> ``[M]``), as the module's docstring places them."""
        x = factors["x"]
        scale = factors.get("scale", torch.ones_like(x))
        angle = factors.get("orientation", torch.zeros_like(x))
        cx = (MARGIN + (1 - 2 * MARGIN) * x) * size
        cy = (MARGIN + (1 - 2 * MARGIN) * factors["y"]) * size
        placement = torch.stack([cx, cy, scale * UNIT * size, torch.cos(angle), torch.sin(angle)], dim=1)
        return cls(size, factors.get("shape", torch.zeros_like(x)).round().long(), placement)

    def take(self, rows: torch.Tensor) -> _Sprites:
        return _Sprites(self.size, self.shape[rows], self.placement[rows])

    def window(self, reach: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel columns ``[M, side]`` and rows ``[M, side]`` of a square around each sprite that
        holds every unit shape reaching at most ``reach`` at its scale, plus a pixel on each
        side; capped at the image."""
        cx, cy, pixels_per_unit = self.placement[:, :3].unbind(1)
        side = min(self.size, math.ceil(2 * reach * float(pixels_per_unit.max())) + 2)
        steps = torch.arange(side, device=cx.device)
        left = (cx - side / 2).round().long().clamp(0, self.size - side)
        top = (cy - side / 2).round().long().clamp(0, self.size - side)
        return left[:, None] + steps, top[:, None] + steps

    def unit(self, px: torch.Tensor, py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points ``px`` (``[M, 1, W]``) and ``py`` (``[M, H, 1]``) in pixels, in each sprite's
        unit-shape frame (rotated by minus its orientation): ``u, v``, ``[M, H, W]``."""
        cx, cy, pixels_per_unit, cos, sin = self.placement[:, :, None, None].unbind(1)
        dx, dy, inv = px - cx, py - cy, 1 / pixels_per_unit
        return (cos * dx + sin * dy) * inv, (cos * dy - sin * dx) * inv


def _samples(pixels: torch.Tensor, supersample: int) -> torch.Tensor:
    """The sample coordinates, in pixels, of ``supersample`` evenly spaced points along each of
    the pixels ``[M, P]`` (none on a pixel's border): ``[M, P * supersample]``."""
    fine = pixels[..., None] * supersample + torch.arange(supersample, device=pixels.device)
    return (fine.flatten(-2).float() + 0.5) / supersample


def _sampled(
    sprites: _Sprites, cols: torch.Tensor, lines: torch.Tensor, supersample: int, inside: ShapeFn
) -> torch.Tensor:
    """The mean of ``inside`` over ``supersample x supersample`` points of each pixel, for
    pixel columns ``cols`` ``[M, W]`` and rows ``lines`` ``[M, H]``: ``[M, H, W]``."""
    u, v = sprites.unit(_samples(cols, supersample)[:, None, :], _samples(lines, supersample)[:, :, None])
    return F.avg_pool2d(inside(u, v).float()[:, None], supersample)[:, 0]


def _edge_sampled(
    sprites: _Sprites, cols: torch.Tensor, lines: torch.Tensor, supersample: int, shape: int
) -> torch.Tensor:
    """What :func:`_sampled` gives for sprites of one ``shape``: 1 or 0 where the bound on a
    pixel centre's distance to the edge puts every sample of the pixel inside or every one
    outside, sampled in the other pixels (the ones on the edge)."""
    u, v = sprites.unit((cols + 0.5)[:, None, :], (lines + 0.5)[:, :, None])
    distance = _EDGE[shape](u, v) * sprites.placement[:, 2, None, None]
    far = (0.5 - 0.5 / supersample) * math.sqrt(2) + 1e-3  # a sample's farthest from its centre
    local = (distance < -far).float()
    edge = (distance.abs() <= far).flatten().nonzero().squeeze(1)  # [E] indices into local
    side = cols.shape[1]
    m, i, j = edge // side**2, edge // side % side, edge % side
    on_edge = (cols[:, 0][m] + j)[:, None], (lines[:, 0][m] + i)[:, None]
    sampled = _sampled(sprites.take(m), *on_edge, supersample, _INSIDE[shape])
    return local.view(-1).scatter_(0, edge, sampled.flatten()).view(local.shape)


def _paint(sprites: _Sprites, supersample: int, cover: torch.Tensor, sample_all: bool) -> None:
    """Write each sprite's coverage into a window of the empty pictures ``cover`` (``[N, size,
    size]``, contiguous): by :func:`_sampled` over a window any shape fits in if ``sample_all``,
    else by :func:`_edge_sampled` over one that fits the sprite's shape."""
    size = sprites.size
    for shape, inside in enumerate(_INSIDE):
        rows = (sprites.shape == shape).nonzero().squeeze(1)
        if not len(rows):
            continue
        group = sprites.take(rows)
        if sample_all:
            cols, lines = group.window(REACH)
            local = _sampled(group, cols, lines, supersample, inside)
        else:
            cols, lines = group.window(_REACHES[shape])
            local = _edge_sampled(group, cols, lines, supersample, shape)
        where = rows[:, None, None] * size**2 + lines[:, :, None] * size + cols[:, None, :]
        cover.view(-1).scatter_(0, where.flatten(), local.flatten())


@dataclass(frozen=True)
class SpriteRenderer:
    """Renders factor values to float images ``[N, channels, size, size]`` in [0, 1].

    Each pixel is the mean inside test over ``supersample x supersample`` points of it, in a
    window around the sprite (every pixel outside is empty). ``sample_all`` samples every
    pixel of the window (the definition, as the renderer did before issue 28); otherwise only
    the pixels on the sprite's edge are sampled, which gives the same images bit for bit.
    """

    image_size: int = 64
    channels: int = 3
    supersample: int = 4
    max_points: int = 1 << 23  # window pixels times samples per chunk; bounds peak memory
    sample_all: bool = False

    def render(self, factors: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> torch.Tensor:
        """Draw one sprite per row of ``factors`` (name -> ``[N]`` tensor) on ``device``: its
        coverage times its colour, every pixel written by that one product."""
        factors = _float32(factors, device)
        return self._cover(factors)[:, None] * self._colour(factors)[:, :, None, None]

    def coverage(self, factors: dict[str, torch.Tensor], device: torch.device | str) -> torch.Tensor:
        """Fraction of each pixel covered by the sprite, ``[N, size, size]``."""
        return self._cover(_float32(factors, device))

    def window(self, scale: torch.Tensor) -> int:
        """Side in pixels of a square that holds any sprite of ``scale`` or smaller, whatever
        its shape and rotation (plus a pixel on each side), capped at the image size."""
        reach = REACH * float(scale.max()) * UNIT * self.image_size
        return min(self.image_size, math.ceil(2 * reach) + 2)

    def _colour(self, factors: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each sprite's colour, ``[N, channels]`` in [0, 1]: its RGB, or for one channel its
        HSV value (the brightest channel)."""
        ones = torch.ones_like(factors["x"])
        if "hue" in factors:
            rgb = hsv_to_rgb(factors["hue"], factors.get("saturation", ones), factors.get("value", ones))
        else:
            rgb = factors.get("value", ones)[:, None].expand(-1, 3)
        return (rgb.max(dim=1, keepdim=True).values if self.channels == 1 else rgb).clamp(0, 1)

    def _cover(self, factors: dict[str, torch.Tensor]) -> torch.Tensor:
        """The coverage ``[N, size, size]`` of float32 ``factors``, a chunk of sprites at a time."""
        n = len(factors["x"])
        cover = torch.zeros(n, self.image_size, self.image_size, device=factors["x"].device)
        fine = self.window(factors.get("scale", torch.ones(1))) * self.supersample
        chunk = max(1, self.max_points // (fine * fine))
        for start in range(0, n, chunk):
            part = {k: v[start : start + chunk] for k, v in factors.items()}
            _paint(_Sprites.of(part, self.image_size), self.supersample, cover[start : start + chunk], self.sample_all)
        return cover


def _float32(factors: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    return {k: v.to(device=device, dtype=torch.float32) for k, v in factors.items()}
