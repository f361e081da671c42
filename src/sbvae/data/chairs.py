"""``chairs``: a procedural stand-in for 3D Chairs, parametric chairs seen from 62 views.

3D Chairs (Aubry et al. 2014) renders 1,393 chair models, centred, from 31 azimuths over the
full turn and 2 elevations (20 and 30 degrees, the ``p020``/``p030`` of its file names). Its
meshes are not available here, so the chairs are built from boxes with known shape factors;
every image has exact ground truth, which the real dataset cannot offer. The factors (the
shape values are ours; azimuth and elevation are the published views):

* ``seat_width``: 0.8, 0.95, 1.1, 1.25 (the seat's depth is 0.9, its thickness 0.08);
* ``leg_length``: 0.35, 0.5, 0.65, 0.8 (four square legs of side 0.08 under the seat's corners);
* ``back_height``: 0.5, 0.75, 1.0 (a slab 0.07 thick, as wide as the seat, on its back edge);
* ``back_tilt``: 0, 12, 24 degrees (the back leans away from the seat about its bottom edge);
* ``armrests``: 0 = none, 1 = two armrests (a bar 0.25 above the seat on each side, on a post
  at its front end);
* ``azimuth``: 31 values over the full turn, 0, 360/31, ..., 360 * 30/31 degrees;
* ``elevation``: 20 and 30 degrees.

4 x 4 x 3 x 3 x 2 x 31 x 2 = 17,856 combinations. The chair stands on an invisible floor
(its feet stay where they are when its legs lengthen) below the point the camera looks at;
the camera circles that point at a fixed distance, far enough that the largest chair fits in
every view: no positional variation beyond what the chair's own shape changes. At azimuth a
the camera looks from angle a about the vertical; the chair faces azimuth 210 degrees, so the
middle of the azimuth grid (174 degrees, where figures hold it) is a three-quarter front view.

Grey, one channel: the chairs have no colour factor, so a grey RGB image would be the same
channel three times; one channel keeps the model's input and output to what varies (as
``dsprites`` does). The chair is a diffuse grey (``ALBEDO``) lit by a distant light that moves
with the camera (above, left and in front of the chair as the camera sees it) plus an ambient
term, on a white background. Images are stored as 8-bit grey levels, as the published PNG
renderings are: each combination is ray-cast once, the first time a batch needs it
(:class:`sbvae.data.memo.Memo`), and looked up afterwards.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

from sbvae.data.factors import Discrete, Product, grid
from sbvae.data.memo import Memo, grid_index, grid_labels, grid_values
from sbvae.data.raycast import (
    FACE_NORMALS,
    Backdrop,
    Cameras,
    Rows,
    Seen,
    Shader,
    box_corners,
    box_entry,
    cameras,
    in_chunks,
    lambert,
    nearest_of,
    normalize,
    orbit,
    pixel_directions,
    reciprocal,
    rotate_x,
    screen_rects,
    shade_pixels,
    to_world,
    view_slots,
)

RENDERER_VERSION = 1
"""Raised whenever the images change, so that what is cached on them (fidelity probes) is made
anew (culling by rectangles in issue 28 left every 8-bit image as it was)."""
SEAT_WIDTHS = (0.8, 0.95, 1.1, 1.25)
LEG_LENGTHS = (0.35, 0.5, 0.65, 0.8)
BACK_HEIGHTS = (0.5, 0.75, 1.0)
BACK_TILTS = (0.0, 12.0, 24.0)
AZIMUTHS = grid(0.0, 360.0, 31, endpoint=False)
ELEVATIONS = (20.0, 30.0)

SEAT_DEPTH, SEAT_THICKNESS, LEG_SIDE, BACK_THICKNESS = 0.9, 0.08, 0.08, 0.07
ARM_HEIGHT, ARM_WIDTH, ARM_THICKNESS = 0.25, 0.07, 0.05
FACING = 210.0
"""The azimuth (degrees) from which the camera sees the chair from the front."""
TARGET = (0.0, 0.85, 0.0)
CAMERA_DISTANCE, FOV = 4.0, 40.0
LIGHT = (-0.5, 0.8, -0.6)
"""Direction towards the light in the camera's frame (x right, y up, z forward)."""
AMBIENT, ALBEDO, BACKGROUND = 0.3, 0.8, 1.0


def chairs_factors() -> Product:
    """Five shape factors and the two view factors: 17,856 combinations."""
    return Product(
        Discrete("seat_width", SEAT_WIDTHS),
        Discrete("leg_length", LEG_LENGTHS),
        Discrete("back_height", BACK_HEIGHTS),
        Discrete("back_tilt", BACK_TILTS),
        Discrete("armrests", [0, 1], value_names=("no arms", "arms")),
        Discrete("azimuth", AZIMUTHS),
        Discrete("elevation", ELEVATIONS),
    )


def _stack(*columns: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    return torch.stack([c if isinstance(c, torch.Tensor) else torch.full_like(like, c) for c in columns], dim=-1)


def parts(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seat, four legs and the two armrests' bars and posts as axis-aligned boxes in the
    chair's frame (the floor at y = 0, the seat's front edge towards -z): corners ``low`` and
    ``high`` ``[N, 9, 3]`` and which are there, ``[N, 9]``, for ``[N, 7]`` factor values."""
    width, legs, arms = values[:, 0], values[:, 1], values[:, 4]
    top = legs + SEAT_THICKNESS
    corners = [
        (_stack(-width / 2, legs, -SEAT_DEPTH / 2, like=width), _stack(width / 2, top, SEAT_DEPTH / 2, like=width))
    ]
    for sx in (-1, 1):
        for sz in (-1, 1):
            x = sx * (width / 2 - LEG_SIDE / 2)
            z = sz * (SEAT_DEPTH / 2 - LEG_SIDE / 2)
            corners.append(
                (
                    _stack(x - LEG_SIDE / 2, 0.0, z - LEG_SIDE / 2, like=width),
                    _stack(x + LEG_SIDE / 2, legs, z + LEG_SIDE / 2, like=width),
                )
            )
    for side in (-1, 1):
        x = side * (width / 2 - ARM_WIDTH / 2)
        low_x, high_x = x - ARM_WIDTH / 2, x + ARM_WIDTH / 2
        corners.append(
            (
                _stack(low_x, top + ARM_HEIGHT - ARM_THICKNESS, -SEAT_DEPTH / 2, like=width),
                _stack(high_x, top + ARM_HEIGHT, SEAT_DEPTH / 2, like=width),
            )
        )
        corners.append(
            (
                _stack(low_x, top, -SEAT_DEPTH / 2, like=width),
                _stack(high_x, top + ARM_HEIGHT, -SEAT_DEPTH / 2 + ARM_WIDTH, like=width),
            )
        )
    present = torch.ones(len(values), len(corners), dtype=torch.bool, device=values.device)
    present[:, 5:] = (arms > 0.5)[:, None]
    return torch.stack([c[0] for c in corners], 1), torch.stack([c[1] for c in corners], 1), present


def back(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The back in its own frame: the pivot ``[N, 3]`` (the seat's top back edge) the frame
    turns about, the tilt (radians, ``[N]``) and the box's corners ``[N, 1, 3]`` in that frame."""
    width, legs, height, tilt = values[:, 0], values[:, 1], values[:, 2], values[:, 3]
    pivot = _stack(0.0, legs + SEAT_THICKNESS, SEAT_DEPTH / 2, like=width)
    low = _stack(-width / 2, 0.0, -BACK_THICKNESS, like=width)
    high = _stack(width / 2, height, 0.0, like=width)
    return pivot, torch.deg2rad(tilt.double()), low[:, None], high[:, None]


class Placed(NamedTuple):
    """Chairs seen from their cameras: the parts' boxes ``[N, 9, 3]``, relative to the image's
    eye (see :func:`parts`); the back's tilt ``[N]`` (radians) and its corners ``[N, 1, 3]`` in
    its own frame, relative to the eye (see :func:`back`); which parts are there ``[N, 10]`` and
    the rectangle each one's picture lies in, ``[N, 10, 4]`` (the back last; see
    :func:`sbvae.data.raycast.screen_rects`), and one holding them all, ``[N, 1, 4]``."""

    low: torch.Tensor
    high: torch.Tensor
    there: torch.Tensor
    tilt: torch.Tensor
    back_low: torch.Tensor
    back_high: torch.Tensor
    rects: torch.Tensor
    bounds: torch.Tensor


def place(values: torch.Tensor, view: Cameras, image_size: int) -> Placed:
    """Chairs ``values`` ``[N, 7]`` (float32, in the order of :func:`chairs_factors`) seen by
    ``view``, ``image_size`` pixels across."""
    origin = view.eye[:, None]
    low, high, present = parts(values)
    low, high = low - origin, high - origin
    pivot, tilt, back_low, back_high = back(values)
    start = rotate_x(origin - pivot[:, None], -tilt)  # the eye in the back's frame
    back_low, back_high = back_low - start, back_high - start
    corners = torch.cat([box_corners(low, high), rotate_x(box_corners(back_low, back_high), tilt)], dim=1)
    rects = screen_rects(corners, view.frame, image_size, FOV)
    there = torch.cat([present, torch.ones_like(present[:, :1])], dim=1)
    bounds = torch.cat([rects[..., ::2].amin(dim=1), rects[..., 1::2].amax(dim=1)], dim=-1)[:, None, [0, 2, 1, 3]]
    return Placed(low, high, there, tilt, back_low, back_high, rects, bounds)


class ChairRays(NamedTuple):
    """Rows of rays ``[R, Q, 3]`` and their :func:`sbvae.data.raycast.reciprocal`, and for each
    row to be cast, which of them it is, ``source`` ``[K]`` (rays looked up where a part needs
    them, not copied for every row first)."""

    direction: torch.Tensor
    inverse: torch.Tensor
    source: torch.Tensor


def _part(
    rays: ChairRays, rows: torch.Tensor, chair: Placed, image: torch.Tensor, index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays ``rows`` ``[K]`` of ``rays`` against part ``index`` (see :class:`Placed`) of the
    chairs of ``image`` ``[K]``: distances ``[K, Q]`` and the faces entered ``[K, Q]`` (numbered
    part by part: ``6 * index`` plus the face of :func:`sbvae.data.raycast.box_entry`, in the
    back's own frame for the back)."""
    where = rays.source.index_select(0, rows)
    if index < chair.low.shape[1]:
        low, high = (corner[:, index].index_select(0, image)[:, None] for corner in (chair.low, chair.high))
        t, face = box_entry(rays.inverse.index_select(0, where), low, high)
    else:
        tilt = chair.tilt.index_select(0, image)
        back_low, back_high = chair.back_low.index_select(0, image), chair.back_high.index_select(0, image)
        turned = rotate_x(rays.direction.index_select(0, where), -tilt)
        t, face = box_entry(reciprocal(turned), back_low, back_high)
    return t, face + 6 * index


def chair_hit(
    rays: ChairRays, chair: Placed, image: torch.Tensor, near: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays (rows ``rays.source``, ``[K]``) against the chairs of ``image`` ``[K]``, part ``b``
    only in the rows where ``near[:, b]`` ``[K, 10]`` holds: the distance to the nearest part
    ``[K, Q]`` (``inf`` on a miss) and the face it enters by (see :func:`_part`)."""

    def intersect(part: int, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _part(rays, rows, chair, image.index_select(0, rows), part)

    return nearest_of(near, intersect, torch.tensor(0, device=near.device), rays.direction.shape[1])


def face_greys(chair: Placed, light: torch.Tensor) -> torch.Tensor:
    """``[N, 60]``: the grey of every face of every part (numbered as :func:`_part` does) of the
    chairs lit by ``light`` ``[N, 3]``: each face is flat, so its shading is one number."""
    normals = FACE_NORMALS.to(light.device).expand(len(light), chair.low.shape[1], 6, 3)
    back = rotate_x(FACE_NORMALS.to(light.device).expand(len(light), 6, 3), chair.tilt)[:, None]
    lit = lambert(torch.cat([normals, back], dim=1).flatten(1, 2), light, AMBIENT)
    return ALBEDO * lit


def near_parts(rows: Rows, chair: Placed) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows whose pixel some part's rectangle reaches (indices ``[K]``, the rectangle of the
    whole chair tried first) and which parts' rectangles reach it ``[K, 10]``."""
    candidates = rows.within(chair.bounds)[:, 0].nonzero()[:, 0]
    image = rows.image.index_select(0, candidates)
    near = rows.select(candidates).within(chair.rects) & chair.there.index_select(0, image)
    keep = near.any(dim=1).nonzero()[:, 0]
    return candidates.index_select(0, keep), near.index_select(0, keep)


VIEWS = torch.tensor([(azimuth, elevation) for azimuth in AZIMUTHS for elevation in ELEVATIONS], dtype=torch.float64)
"""Every view of the factor grid, ``(azimuth, elevation)`` in degrees."""
CACHED_RAYS = 1 << 20
"""The most rays (views times squares times points) whose directions :func:`chair_rays` caches:
24 bytes a ray, 24 MB at 32 px, 4 x 4 points a pixel (larger images turn their rays anew)."""


def chair_cameras(azimuth: torch.Tensor, elevation: torch.Tensor) -> Cameras:
    """The cameras of views ``azimuth`` and ``elevation`` ``[N]`` (degrees, float64)."""
    turn = torch.deg2rad(azimuth - FACING)  # 0 when the camera faces the seat's front
    return cameras(orbit(TARGET, CAMERA_DISTANCE, turn, torch.deg2rad(elevation)), TARGET)


@functools.lru_cache(maxsize=8)
def chair_rays(grid: int, points: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """For every view of :data:`VIEWS` in turn, the directions of the rays through a ``grid`` x
    ``grid`` of squares, ``points`` x ``points`` each (see
    :func:`sbvae.data.raycast.pixel_directions`), and their reciprocals: computed once per grid
    and device, ``[62 * grid * grid, points ** 2, 3]`` each."""
    table = pixel_directions(grid, points, FOV, device)
    views = VIEWS.to(device)
    _, direction = chair_cameras(views[:, 0], views[:, 1]).rays(
        torch.arange(len(views), device=device), table.view(-1, 3)
    )
    direction = direction.view(len(views) * len(table), table.shape[1], 3)
    return direction, reciprocal(direction)


def chair_shader(
    values: torch.Tensor, image_size: int, device: torch.device | str = "cpu"
) -> tuple[Shader, torch.Tensor]:
    """The grey each sample sees, ``[R, Q, 1]``, of chairs ``values`` ``[N, 7]``, and the part
    (only rows whose pixel a part's picture's rectangle reaches are ray-cast, the others see the
    background); and the rectangle holding each chair ``[N, 1, 4]``, outside which every sample
    sees the background (see :func:`sbvae.data.raycast.screen_rects`)."""
    values = values.to(device, torch.float64)
    view, slots = chair_cameras(values[:, 5], values[:, 6]), view_slots(values[:, 5:7], VIEWS)
    light = normalize(to_world(torch.tensor([LIGHT], device=device), view.frame))[:, 0]
    chair = place(values.float(), view, image_size)
    greys = face_greys(chair, light)

    def shade(rows: Rows, table: torch.Tensor) -> Seen:
        grey = torch.full((len(rows.image), table.shape[1]), BACKGROUND, device=table.device)
        active, near = near_parts(rows, chair)
        near_rows = rows.select(active)
        if slots is None or len(VIEWS) * len(table) * table.shape[1] > CACHED_RAYS:
            direction = view.rays(near_rows.image, near_rows.local(table))[1]
            rays = ChairRays(direction, reciprocal(direction), torch.arange(len(active), device=direction.device))
        else:
            cached = chair_rays(math.isqrt(len(table)), math.isqrt(table.shape[1]), table.device)
            rays = ChairRays(*cached, near_rows.in_views(slots, table))
        t, face = chair_hit(rays, chair, near_rows.image, near)
        lit = greys.view(-1).index_select(0, (near_rows.image[:, None] * greys.shape[1] + face).view(-1))
        grey.index_copy_(0, active, torch.where(t < math.inf, lit.view_as(t), BACKGROUND))
        one_part = torch.zeros((), dtype=torch.int64, device=grey.device).expand(grey.shape)  # no memory
        return Seen(grey[..., None], one_part)

    return shade, chair.bounds


def shade_chairs(
    values: torch.Tensor, image_size: int, supersample: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Grey images ``[N, 1, S, S]`` in [0, 1] of ``[N, 7]`` factor values, ray-cast afresh."""
    shade, bounds = chair_shader(values, image_size, device)
    background = Backdrop(torch.full((len(values) * image_size**2, 1), BACKGROUND, device=device), 1, bounds)
    return shade_pixels(shade, len(values), image_size, supersample, FOV, device, backdrop=background)


@dataclass(frozen=True)
class ChairRenderer:
    """Renders ``[N, 7]`` factor values (columns in the order of :func:`chairs_factors`) to grey
    images ``[N, 1, size, size]`` in [0, 1], in 8-bit steps; values off the grid take the nearest
    grid value."""

    image_size: int = 64
    supersample: int = 4
    max_points: int = 1 << 20  # ray samples per chunk of images; bounds peak memory
    channels: int = 1
    factors: Product = field(default_factory=chairs_factors, repr=False, compare=False)
    memo: Memo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "memo", Memo(math.prod(self.factors.num_classes), self._images_of_keys, torch.uint8))

    def _images_of_keys(self, keys: torch.Tensor, device: torch.device) -> torch.Tensor:
        values = grid_values(self.factors, grid_labels(keys, self.factors.num_classes))
        return (self.cast(values, device) * 255).round()

    def cast(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images of ``values`` ray-cast afresh (:func:`shade_chairs`, in chunks of
        ``max_points`` samples), before :meth:`render` stores them in 8-bit steps."""

        def cast(rows: torch.Tensor) -> torch.Tensor:
            return shade_chairs(rows, self.image_size, self.supersample, device)

        return in_chunks(cast, (self.image_size * self.supersample) ** 2, self.max_points, values)

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        keys = grid_index(self.factors.labels(values), self.factors.num_classes)
        return self.memo(keys, device).float() / 255
