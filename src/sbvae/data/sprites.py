"""A vectorized, anti-aliased renderer of one sprite per image on a black background.

Geometry (documented because tests and metrics rely on it):

* ``x`` and ``y`` in [0, 1] place the sprite's centre of mass at pixel coordinates
  ``(MARGIN + (1 - 2 MARGIN) x) * size`` along the width (x grows to the right, column index)
  and the same along the height (y grows *downwards*, row index, as in the image array).
* ``scale`` multiplies the sprite's size; every shape has the same area at the same scale
  (the square at scale 1 has side ``2 * UNIT * size``).
* ``orientation`` (radians) rotates the sprite about its centre of mass.
* ``hue``, ``saturation``, ``value`` give its colour in HSV; without them the sprite is white.

Anti-aliasing: each pixel is the mean of ``supersample x supersample`` point samples, all
computed with tensor ops over the whole batch (no Python loop per image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SHAPES = ("square", "ellipse", "heart")
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


_INSIDE = (_inside_square, _inside_ellipse, _inside_heart)
REACH = _ELLIPSE_A
"""The farthest any unit shape reaches from its centre of mass (the ellipse's semi-major
axis; the square reaches sqrt(2), the heart about 1.39)."""


def hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Convert ``[N]`` HSV values in [0, 1] to ``[N, 3]`` RGB in [0, 1]."""
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hue.dtype, device=hue.device)
    k = (n[None, :] + hue[:, None] * 6) % 6
    ramp = torch.minimum(k, 4 - k).clamp(0, 1)
    return value[:, None] - value[:, None] * saturation[:, None] * ramp


@dataclass(frozen=True)
class SpriteRenderer:
    """Renders factor values to float images ``[N, channels, size, size]`` in [0, 1]."""

    image_size: int = 64
    channels: int = 3
    supersample: int = 4
    max_points: int = 1 << 23  # sub-pixel samples per chunk; bounds peak memory

    def render(self, factors: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> torch.Tensor:
        """Draw one sprite per row of ``factors`` (name -> ``[N]`` tensor) on ``device``."""
        factors = {k: v.to(device=device, dtype=torch.float32) for k, v in factors.items()}
        n = len(factors["x"])
        out = torch.empty(n, self.channels, self.image_size, self.image_size, device=device)
        fine = self.window(factors.get("scale", torch.ones(1))) * self.supersample
        chunk = max(1, self.max_points // (fine * fine))
        for start in range(0, n, chunk):
            part = {k: v[start : start + chunk] for k, v in factors.items()}
            out[start : start + chunk] = self._render_chunk(part, device)
        return out

    def window(self, scale: torch.Tensor) -> int:
        """Side in pixels of a square that holds any sprite of ``scale`` or smaller, whatever
        its shape and rotation (plus a pixel on each side), capped at the image size."""
        reach = REACH * float(scale.max()) * UNIT * self.image_size
        return min(self.image_size, math.ceil(2 * reach) + 2)

    def coverage(self, factors: dict[str, torch.Tensor], device: torch.device | str) -> torch.Tensor:
        """Fraction of each pixel covered by the sprite, ``[N, size, size]``.

        Only a window around each sprite (see ``window``) is sampled; every pixel outside it
        is empty, so the result equals sampling the whole image.
        """
        size, ss = self.image_size, self.supersample
        n = len(factors["x"])
        ones = torch.ones(n, device=device)
        shape = factors.get("shape", torch.zeros(n, device=device)).round().long()
        scale = factors.get("scale", ones) * UNIT * size
        angle = factors.get("orientation", torch.zeros(n, device=device))
        cx = (MARGIN + (1 - 2 * MARGIN) * factors["x"]) * size
        cy = (MARGIN + (1 - 2 * MARGIN) * factors["y"]) * size
        side = self.window(factors.get("scale", ones))
        left = (cx - side / 2).round().long().clamp(0, size - side)  # window corners, in pixels
        top = (cy - side / 2).round().long().clamp(0, size - side)
        steps = torch.arange(side * ss, device=device)
        px = ((left[:, None] * ss + steps[None, :]).float() + 0.5) / ss  # the full image's sample points
        py = ((top[:, None] * ss + steps[None, :]).float() + 0.5) / ss
        dx = px[:, None, :] - cx[:, None, None]
        dy = py[:, :, None] - cy[:, None, None]
        cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
        inv = 1 / scale[:, None, None]
        u = (cos * dx + sin * dy) * inv  # rotate the sample points by -angle into the
        v = (cos * dy - sin * dx) * inv  # sprite's own frame, in unit-shape coordinates
        inside = torch.zeros(n, side * ss, side * ss, device=device)
        for shape_id, test in enumerate(_INSIDE):
            rows = (shape == shape_id).nonzero().squeeze(1)
            if len(rows):
                inside[rows] = test(u[rows], v[rows]).float()
        local = F.avg_pool2d(inside[:, None], ss)[:, 0]  # [N, side, side]
        cover = torch.zeros(n, size, size, device=device)
        pixels = torch.arange(side, device=device)
        rows_index = (top[:, None] + pixels[None, :])[:, :, None]
        cols_index = (left[:, None] + pixels[None, :])[:, None, :]
        cover[torch.arange(n, device=device)[:, None, None], rows_index, cols_index] = local
        return cover

    def _render_chunk(self, factors: dict[str, torch.Tensor], device: torch.device | str) -> torch.Tensor:
        cover = self.coverage(factors, device)
        n = len(cover)
        if "hue" in factors:
            ones = torch.ones(n, device=device)
            rgb = hsv_to_rgb(factors["hue"], factors.get("saturation", ones), factors.get("value", ones))
        else:
            rgb = factors.get("value", torch.ones(n, device=device))[:, None].expand(n, 3)
        if self.channels == 1:
            colour = rgb.max(dim=1, keepdim=True).values  # HSV value: the brightest channel
        else:
            colour = rgb
        return (cover[:, None] * colour[:, :, None, None]).clamp(0, 1)
