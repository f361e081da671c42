"""``objects_room``: the paper's 3D Object-in-Room, procedurally, on the factor grid of 3D Shapes.

The factor grid is that of 3D Shapes (Kim and Mnih 2018; deepmind/3d-shapes), in the file's
order (``_FACTORS_IN_ORDER`` there; disentanglement_lib's ``shapes3d.py`` uses the same order,
factor sizes ``[10, 10, 10, 8, 4, 15]``), with the values of its ``labels`` array:

* ``floor_hue``, ``wall_hue``, ``object_hue``: 10 values each, 0.0, 0.1, ..., 0.9 (linearly
  spaced in [0, 1) -- hue 1 would repeat hue 0);
* ``scale``: 8 values linearly spaced from 0.75 to 1.25, both included;
* ``shape``: 4 values 0, 1, 2, 3 = cube, cylinder, sphere, capsule;
* ``orientation``: 15 values linearly spaced from -30 to 30 degrees, both included.

10 x 10 x 10 x 8 x 4 x 15 = 480,000 combinations. What orientation turns: disentanglement_lib
calls the factor "azimuth" and the original file ``...Xview-azi``, the azimuth of the view.
Here the camera moves around the vertical axis through the object by that angle, always
looking at it: the room and the object turn together in the picture, the light stays with
the room. A cube shows a different face, and the corner of the room moves across the
background; a sphere looks the same, and then only the room shows the angle.

The scene (our choices; the published renderer is not public): an infinite floor and two
walls meeting in a corner behind the object (at orientation 0 the corner is straight behind
it), seen from a fixed camera a little above the object, looking down at it. One object
stands on the floor at the centre of the room: a cube (side 1), a cylinder (radius 0.5,
height 1), a sphere (radius 0.5) or an upright capsule (radius 0.32, height 1.3), times
``scale``. Colours are HSV with the factor's hue, saturation ``SATURATION`` and value
``VALUE``. Shading is diffuse from one distant light above and to the front of the room
(``LIGHT``) with an ambient term, and the object casts a hard shadow on the floor and walls;
supersampling softens its edge.

Rendering: a ray per sample point (``supersample`` x ``supersample`` per pixel) is cast from
the camera and intersected analytically with the floor, the walls and the object; shadow rays
from floor and wall points are tested against the object. Shading is linear in the material
colours, so each image is ``sum_m colour_m * coverage_m``: ``coverage_m`` is the mean over a
pixel's samples of "the sample sees material m" times its brightness, for m = floor, wall,
object. That coverage depends only on scale, shape and orientation (480 combinations), so it is
ray-cast once per combination, the first time a batch needs it (:class:`sbvae.data.memo.Memo`),
and every image is then three colours times three looked-up maps: exactly what casting its rays
again would give. Casting is adaptive (:func:`sbvae.data.raycast.shade_pixels`): every sample
of a pixel only where the picture is not smooth (edges, shadow borders), one through its centre
elsewhere, and the empty room, cast once per orientation, away from the object and its shadow;
``RoomRenderer(adaptive=False)`` casts every sample (docs/performance.md gives the difference).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from sbvae.data.factors import Discrete, Product, grid
from sbvae.data.memo import Memo, grid_index, grid_labels, grid_values
from sbvae.data.raycast import (
    DISTANCES,
    EVERYWHERE,
    Backdrop,
    Cameras,
    Light,
    Rows,
    Seen,
    Shader,
    Surfaces,
    box_corners,
    by_kind,
    cameras,
    dot_constant,
    flat_pixels,
    in_chunks,
    lambert,
    lit_surfaces,
    look_up,
    normalize,
    orbit,
    passes_sphere,
    pixel_directions,
    plane_distance,
    screen_rects,
    shade_pixels,
    view_slots,
)
from sbvae.data.sprites import hsv_to_rgb

SHAPES = ("cube", "cylinder", "sphere", "capsule")
HUES = grid(0.0, 1.0, 10, endpoint=False)
SCALES = grid(0.75, 1.25, 8)
ORIENTATIONS = grid(-30.0, 30.0, 15)
RENDERER_VERSION = 2
"""Raised whenever the images change, so that what is cached on them (fidelity probes) is made
anew: 2 is the adaptive supersampling of issue 28 (docs/performance.md gives its error)."""
GEOMETRY = ("scale", "shape", "orientation")
"""The factors the shaded coverage depends on; the hues only colour it."""

FLOOR, WALL, OBJECT = 0, 1, 2
TARGET = (0.0, 0.75, 0.0)
"""The point the camera looks at, above the object's centre."""
CAMERA_DISTANCE, CAMERA_ELEVATION = 4.9, 20.0
"""The camera's distance from ``TARGET`` and height above it (degrees); orientation turns it
about the vertical axis through ``TARGET``."""
FOV = 42.0
CORNER = 2.6
"""Distance from the object's axis to the corner where the two walls meet."""
WALLS = tuple(((side / math.sqrt(2), 0.0, -1 / math.sqrt(2)), -CORNER / math.sqrt(2)) for side in (-1, 1))
"""The two walls' planes ``(normal, offset)``: ``dot(normal, p) = offset``, normals towards the object."""
LIGHT = (0.35, 1.2, -0.9)
AMBIENT = 0.3
SATURATION, VALUE = 0.8, 0.95
CAPSULE_RADIUS, CAPSULE_HEIGHT = 0.32, 1.3


def objects_room_factors() -> Product:
    """The 3D Shapes grid, in its order: 10 x 10 x 10 x 8 x 4 x 15 = 480,000 combinations."""
    return Product(
        Discrete("floor_hue", HUES),
        Discrete("wall_hue", HUES),
        Discrete("object_hue", HUES),
        Discrete("scale", SCALES),
        Discrete("shape", range(len(SHAPES)), value_names=SHAPES),
        Discrete("orientation", ORIENTATIONS),
    )


def _cube(kit: Surfaces, origin: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor) -> Any:
    zero = torch.zeros_like(scale)
    low = torch.stack([-scale / 2, zero, -scale / 2], dim=1)[:, None] - origin
    return kit.box(direction, low, low + scale[:, None, None])


def _cylinder(kit: Surfaces, origin: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor) -> Any:
    radius = scale / 2
    return kit.nearest(
        kit.tube(origin, direction, radius, torch.zeros_like(scale), scale),
        kit.disc(origin, direction, radius, scale),
    )


def _sphere(kit: Surfaces, origin: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor) -> Any:
    centre = torch.stack([torch.zeros_like(scale), scale / 2, torch.zeros_like(scale)], dim=1)
    return kit.sphere(origin, direction, centre, scale / 2)


def _capsule(kit: Surfaces, origin: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor) -> Any:
    radius = CAPSULE_RADIUS * scale
    return kit.capsule(origin, direction, radius, radius, (CAPSULE_HEIGHT - CAPSULE_RADIUS) * scale)


_OBJECTS = (_cube, _cylinder, _sphere, _capsule)
"""Each shape's surfaces, as lit hits or distances (see :class:`sbvae.data.raycast.Surfaces`)."""


def _on_object(
    kit: Surfaces,
    keep: Callable[[Any], tuple[torch.Tensor, ...]],
    origin: torch.Tensor,
    direction: torch.Tensor,
    shape: torch.Tensor,
    scale: torch.Tensor,
    near: torch.Tensor,
    *blanks: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """What ``keep`` keeps of what ``kit`` gives for rays ``direction`` (``[R, Q, 3]``, or
    ``[1, 1, 3]`` for one direction of every ray) from ``origin`` (``[R, 1, 3]`` or
    ``[R, Q, 3]``) against the object (``shape`` and ``scale`` ``[R]``) of each row where
    ``near`` ``[R]`` holds, in ``blanks`` (the others keep them)."""

    def intersect(shape_id: int, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        start = origin.index_select(0, rows)
        ray = direction if len(direction) == 1 else direction.index_select(0, rows)
        return keep(_OBJECTS[shape_id](kit, start, ray, scale.index_select(0, rows)))

    return by_kind(torch.where(near, shape, -1), len(_OBJECTS), intersect, *blanks)


def object_lit(
    origin: torch.Tensor,
    direction: torch.Tensor,
    shape: torch.Tensor,
    scale: torch.Tensor,
    near: torch.Tensor,
    light: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays ``[R, Q, 3]`` from ``origin`` (``[R, 1, 3]``) against the object (``shape`` and
    ``scale`` ``[R]``) of each row where ``near`` ``[R]`` holds: the distance ``[R, Q]`` (``inf``
    on a miss) and the brightness there under ``light`` (see
    :func:`sbvae.data.raycast.lambert`)."""
    kit = lit_surfaces(Light(light, AMBIENT))
    misses = torch.full(direction.shape[:2], math.inf, device=direction.device)
    t, lit = _on_object(kit, tuple, origin, direction, shape, scale, near, misses, torch.zeros_like(misses))
    return t, lit


def object_blocks(
    origin: torch.Tensor, direction: torch.Tensor, shape: torch.Tensor, scale: torch.Tensor, near: torch.Tensor
) -> torch.Tensor:
    """``[R, Q]``: which rays of :func:`object_lit` hit the object (distances alone); one
    direction ``[1, 1, 3]`` may serve every ray, and each its own ``origin`` ``[R, Q, 3]``."""
    misses = torch.full(torch.broadcast_shapes(origin.shape, direction.shape)[:2], math.inf, device=origin.device)
    return _on_object(DISTANCES, lambda t: (t,), origin, direction, shape, scale, near, misses)[0] < math.inf


def passes_object(origin: torch.Tensor, direction: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``[R, Q]``: which rays pass within ``scale`` ``[R]`` of the point ``0.6 * scale`` above the
    object's base (a sphere around every shape)."""
    centre = torch.stack([torch.zeros_like(scale), 0.6 * scale, torch.zeros_like(scale)], dim=1)
    return passes_sphere(origin, direction, centre, scale)


def object_corners(shape: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``[N, 8, 3]``: the corners of a box holding each image's object."""
    capsule = shape == SHAPES.index("capsule")
    half = torch.where(capsule, CAPSULE_RADIUS, 0.5) * scale
    height = torch.where(capsule, CAPSULE_HEIGHT, 1.0) * scale
    return box_corners(torch.stack([-half, torch.zeros_like(half), -half], 1), torch.stack([half, height, half], 1))


def scene_rects(shape: torch.Tensor, scale: torch.Tensor, view: Cameras, image_size: int) -> torch.Tensor:
    """``[N, 3, 4]``: rectangles (see :func:`sbvae.data.raycast.screen_rects`) holding each
    image's object and its shadow (outside which the picture is the empty room), its shadow
    alone (outside which nothing is in shadow), and its object alone: from the object's box and
    its shadow on the floor; the first two the whole picture where that shadow could reach a
    wall."""
    light = normalize(torch.tensor(LIGHT, device=scale.device))
    corners = object_corners(shape, scale)
    floor = corners - corners[..., 1:2] / light[1] * light
    on_floor = torch.stack([dot_constant(floor, normal) >= offset for normal, offset in WALLS]).all(0).all(1)
    groups = [torch.cat(pair, dim=1) for pair in ((corners, floor), (floor, floor), (corners, corners))]
    rects = screen_rects(torch.stack(groups, dim=1) - view.eye[:, None, None], view.frame, image_size, FOV)
    shadowed = torch.where(on_floor[:, None, None], rects[:, :2], EVERYWHERE.to(rects))
    return torch.cat([shadowed, rects[:, 2:]], dim=1)


PLANES = ((0.0, 1.0, 0.0), 0.0, FLOOR), *((normal, offset, WALL) for normal, offset in WALLS)
"""The room's surfaces, each ``(normal, offset, material)``: the floor (y = 0) and the two walls."""


def room_hit(origin: torch.Tensor, direction: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays against the room: the distance ``[R, Q]`` to the nearest of :data:`PLANES` and which
    one it is (the first where two tie)."""
    distances = [plane_distance(origin, direction, normal, offset) for normal, offset, _ in PLANES]
    t, index = distances[0], torch.zeros_like(distances[0], dtype=torch.long)
    for number, distance in enumerate(distances[1:], start=1):
        index = torch.where(distance < t, number, index)
        t = torch.minimum(t, distance)
    return t, index


def room_cameras(orientation: torch.Tensor, device: torch.device | str = "cpu") -> Cameras:
    """The cameras of ``orientation`` ``[N]`` (degrees)."""
    azimuth = torch.deg2rad(orientation.to(device, torch.float64)).float()
    elevation = torch.full_like(azimuth, math.radians(CAMERA_ELEVATION))
    return cameras(orbit(TARGET, CAMERA_DISTANCE, azimuth, elevation), TARGET)


class RoomRays(NamedTuple):
    """Rays of cameras on the orientation grid and what they meet in the room, without the
    object: direction ``[K, Q, 3]``, distance ``[K, Q]``, which of :data:`PLANES` ``[K, Q]``,
    and the point just off the room where a shadow ray towards the light starts ``[K, Q, 3]``."""

    direction: torch.Tensor
    t: torch.Tensor
    plane: torch.Tensor
    start: torch.Tensor


def _meet_room(origin: torch.Tensor, direction: torch.Tensor) -> RoomRays:
    """Rays ``[R, Q, 3]`` from ``origin`` ``[R, 1, 3]`` against the room (see :class:`RoomRays`)."""
    t, plane = room_hit(origin, direction)
    start = origin + t[..., None] * direction + 1e-3 * look_up(PLANE_NORMALS.to(t.device), plane)
    return RoomRays(direction, t, plane, start)


PLANE_NORMALS = torch.tensor([normal for normal, _, _ in PLANES])
CACHED_RAYS = 1 << 17
"""The most rays per orientation (squares times points) whose meeting with the room is cached:
36 bytes a ray, 15 orientations (about 9 MB at 32 px and 35 MB at 64 px, 4 x 4 points a
pixel; larger images cast the room anew)."""


@functools.lru_cache(maxsize=16)
def room_rays(grid: int, points: int, device: torch.device | str = "cpu") -> RoomRays:
    """For every orientation of :data:`ORIENTATIONS` in turn, the rays through a ``grid`` x
    ``grid`` of squares, ``points`` x ``points`` each (see
    :func:`sbvae.data.raycast.pixel_directions`), and what they meet in the room: computed once
    per grid and device, ``[15 * grid * grid, points ** 2, ...]``."""
    table = pixel_directions(grid, points, FOV, device)
    view = room_cameras(torch.tensor(ORIENTATIONS, dtype=torch.float64), device)
    count = len(ORIENTATIONS)
    met = _meet_room(*view.rays(torch.arange(count, device=device), table.view(-1, 3)))
    return RoomRays(*(part.view(count * len(table), table.shape[1], *part.shape[2:]) for part in met))


def room_shader(
    scale: torch.Tensor,
    shape: torch.Tensor,
    orientation: torch.Tensor,
    image_size: int,
    with_object: bool = True,
) -> tuple[Shader, torch.Tensor]:
    """What each sample seen from ``orientation`` ``[N]`` (degrees) sees (see
    :func:`shaded_coverage`): for floor, wall and object, "the sample sees it" times its
    brightness, ``[R, Q, 3]``; the part is the material, plus 3 in the object's shadow. Without
    ``with_object``, the empty room. Orientations on the grid take the room's rays from
    :func:`room_rays`, exactly what they would meet anew. And the rectangle ``[N, 1, 4]``
    outside which the picture is the empty room (see :func:`scene_rects`)."""
    view = room_cameras(orientation, scale.device)
    light = normalize(torch.tensor(LIGHT, device=view.eye.device))
    bounds = scene_rects(shape, scale, view, image_size)
    shadows, rects = bounds[:, 1:2], bounds[:, 2:]
    materials = torch.tensor([material for _, _, material in PLANES], device=light.device)
    brightness_of_plane = lambert(PLANE_NORMALS.to(light.device), light, AMBIENT)
    slots = view_slots(orientation[:, None], torch.tensor(ORIENTATIONS, dtype=torch.float64)[:, None])

    def meet_room(rows: Rows, table: torch.Tensor) -> tuple[torch.Tensor, RoomRays]:
        origin = view.eye.index_select(0, rows.image)[:, None]
        if slots is None or len(table) * table.shape[1] > CACHED_RAYS:
            return origin, _meet_room(origin, view.rays(rows.image, rows.local(table))[1])
        cached = room_rays(math.isqrt(len(table)), math.isqrt(table.shape[1]), table.device)
        index = rows.in_views(slots, table)
        return origin, RoomRays(*(part.index_select(0, index) for part in cached))

    def shade(rows: Rows, table: torch.Tensor) -> Seen:
        origin, room = meet_room(rows, table)
        direction, t = room.direction, room.t
        material, brightness = look_up(materials, room.plane), look_up(brightness_of_plane, room.plane)
        part = material
        if with_object:
            shapes, scales = shape.index_select(0, rows.image), scale.index_select(0, rows.image)
            distance, lit = object_lit(origin, direction, shapes, scales, rows.within(rects)[:, 0], light)
            on_object = distance < t
            material = torch.where(on_object, OBJECT, material)
            brightness = torch.where(on_object, lit, brightness)
            shadow = _shadowed(room.start, light, ~on_object, shapes, scales, rows.within(shadows)[:, 0])
            brightness = torch.where(shadow, AMBIENT, brightness)
            part = material + 3 * shadow
        # Each ray's brightness in its material's channel, zero in the others: the values of
        # "(material == m) * brightness" for m = FLOOR, WALL, OBJECT, written in one step.
        seen = torch.zeros(*material.shape, 3, device=material.device)
        return Seen(seen.scatter_(-1, material[..., None], brightness[..., None]), part)

    return shade, bounds[:, :1]


def _shadowed(
    start: torch.Tensor,
    light: torch.Tensor,
    room: torch.Tensor,
    shape: torch.Tensor,
    scale: torch.Tensor,
    near: torch.Tensor,
) -> torch.Tensor:
    """``[R, Q]``: which points ``start`` ``[R, Q, 3]`` on the floor or a wall (where ``room``
    holds) the object (``shape`` and ``scale`` ``[R]``) hides from the light; only rows where
    ``near`` ``[R]`` holds (the others are lit) and only rays that pass near the object are
    tested."""
    rows = (near & room.any(dim=1)).nonzero()[:, 0]
    start, room, shape, scale = (part.index_select(0, rows) for part in (start, room, shape, scale))
    towards = light.view(1, 1, 3)  # every shadow ray's direction
    tested = (room & passes_object(start, towards, scale)).any(dim=1)
    blocked = room & object_blocks(start, towards, shape, scale, tested)
    return torch.zeros(len(near), start.shape[1], dtype=torch.bool, device=start.device).index_copy_(0, rows, blocked)


@functools.lru_cache(maxsize=256)
def empty_room(
    orientation: float, image_size: int, supersample: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``[S * S, 3]``: the shaded coverage of the room without its object (every sample), as
    pixels (:func:`sbvae.data.raycast.flat_pixels`), computed once per orientation, size and
    device."""
    shade, _ = room_shader(
        torch.ones(1, device=device), torch.zeros(1, device=device), torch.tensor([orientation]), image_size, False
    )
    return flat_pixels(shade_pixels(shade, 1, image_size, supersample, FOV, device))


def shaded_coverage(
    scale: torch.Tensor,
    shape: torch.Tensor,
    orientation: torch.Tensor,
    image_size: int,
    supersample: int,
    device: torch.device | str = "cpu",
    adaptive: bool = True,
) -> torch.Tensor:
    """``[N, 3, S, S]``: for floor, wall and object, the mean over each pixel's samples of
    "the sample sees it" times its brightness (``orientation`` in degrees), every sample shaded
    or (``adaptive``) only where the picture changes within the pixel, and away from the object
    and its shadow taken from the empty room (:func:`empty_room`; see
    :func:`sbvae.data.raycast.shade_pixels`)."""
    shade, bounds = room_shader(scale.to(device, torch.float32), shape.to(device), orientation, image_size)
    if not adaptive:
        return shade_pixels(shade, len(scale), image_size, supersample, FOV, device)
    empty = torch.cat([empty_room(o, image_size, supersample, device) for o in orientation.tolist()])
    backdrop = Backdrop(empty, OBJECT, bounds)
    return shade_pixels(shade, len(scale), image_size, supersample, FOV, device, True, backdrop)


@dataclass(frozen=True)
class RoomRenderer:
    """Renders ``[N, 6]`` factor values (columns in the order of :func:`objects_room_factors`)
    to ``[N, 3, size, size]`` images in [0, 1]; values off the grid take the nearest grid value."""

    image_size: int = 64
    supersample: int = 4
    max_points: int = 1 << 20  # ray samples per chunk of images; bounds peak memory
    adaptive: bool = True  # every sample only where the picture is not smooth (False: every sample everywhere)
    channels: int = 3
    factors: Product = field(default_factory=objects_room_factors, repr=False, compare=False)
    memo: Memo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "memo", Memo(math.prod(self._geometry.num_classes), self._coverage_of_keys))

    @property
    def _columns(self) -> list[int]:
        return [self.factors.names.index(name) for name in GEOMETRY]

    @property
    def _geometry(self) -> Product:
        return Product(*(self.factors.parts[column] for column in self._columns))

    def _coverage_of_keys(self, keys: torch.Tensor, device: torch.device) -> torch.Tensor:
        geometry = self._geometry
        scale, shape, orientation = grid_values(geometry, grid_labels(keys, geometry.num_classes)).unbind(1)
        return self.coverage(scale, shape.long(), orientation, device)

    def coverage(
        self, scale: torch.Tensor, shape: torch.Tensor, orientation: torch.Tensor, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """:func:`shaded_coverage` ray-cast afresh, in chunks of ``max_points`` samples."""

        def cast(scale: torch.Tensor, shape: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
            return shaded_coverage(scale, shape, orientation, self.image_size, self.supersample, device, self.adaptive)

        return in_chunks(cast, (self.image_size * self.supersample) ** 2, self.max_points, scale, shape, orientation)

    def _paint(self, labels: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
        """Images from the hue labels ``[N, 3]`` (floor, wall, object) and ``coverage``."""
        hues = torch.tensor(HUES)[labels[:, :3]].reshape(-1).float()
        rgb = hsv_to_rgb(hues, torch.full_like(hues, SATURATION), torch.full_like(hues, VALUE))
        colours = rgb.reshape(-1, 3, 3).to(coverage.device)  # [N, material, channel]
        tint = colours[:, :, :, None, None]
        # Material by material, in the order a sum over them adds (the same images, less memory).
        painted = (
            tint[:, 0] * coverage[:, 0, None] + tint[:, 1] * coverage[:, 1, None] + tint[:, 2] * coverage[:, 2, None]
        )
        return painted.clamp(0, 1)

    def cast(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images of ``values`` ray-cast afresh (what :meth:`render` looks up)."""
        labels = self.factors.labels(values)
        scale, shape, orientation = grid_values(self._geometry, labels[:, self._columns]).unbind(1)
        return self._paint(labels, self.coverage(scale, shape.long(), orientation, device))

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        labels = self.factors.labels(values)
        keys = grid_index(labels[:, self._columns], self._geometry.num_classes)
        return self._paint(labels, self.memo(keys, device))
