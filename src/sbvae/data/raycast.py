"""A small vectorized ray caster: pinhole cameras, analytic ray-primitive intersections, Lambert
shading and supersampled pixels, on whole batches of images at once (CPU or CUDA).

Conventions: the world's y axis points up; a vector is a tensor whose last dimension holds
(x, y, z). Rays are batched ``[N, P, 3]``: ``N`` rows of ``P`` rays each, a row being the rays
through one pixel (:class:`Rows`); a row's parameters are ``[N]`` or ``[N, 3]`` and broadcast
over its rays. Every intersection gives a distance ``t`` that is ``inf`` where the ray misses:
alone (:data:`DISTANCES`) or with the surface's brightness there (:func:`lit_surfaces`), so hits
combine with :func:`nearest_lit`. All arithmetic is element-wise (no matrix products), so an
image comes out the same whether it is rendered alone or in a batch.

What keeps a fresh image cheap (:func:`shade_pixels`): a scene tests a part only on the rows
whose pixel the rectangle of the part's picture reaches (:func:`screen_rects`, :func:`by_kind`,
:func:`nearest_of`), tests only whether a ray is blocked where nothing else matters
(:data:`DISTANCES`), and, ``adaptive``, casts every sample of a pixel only where the picture is
not smooth, taking the rest from its centre or from a cached backdrop.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

EPS = 1e-4
"""Smallest accepted ray distance (keeps shadow rays from hitting the surface they leave)."""
UP = (0.0, 1.0, 0.0)


class Light(NamedTuple):
    """A distant light: the unit direction towards it (``[3]``, or ``[N, 3]`` one per row of
    rays) and the ambient term of :func:`lambert`."""

    towards: torch.Tensor
    ambient: float


class Lit(NamedTuple):
    """Distance ``t`` ``[N, P]`` (``inf`` on a miss) to the surface each ray meets and the
    surface's brightness there ``[N, P]`` (:func:`lambert`; any value on a miss)."""

    t: torch.Tensor
    brightness: torch.Tensor


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot products over the last dimension, component by component (several times faster on a
    CPU than a reduction over a dimension of 3)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def normalize(v: torch.Tensor) -> torch.Tensor:
    return v / dot(v, v).sqrt()[..., None]


def camera_directions(
    image_size: int, supersample: int, fov_degrees: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Ray directions ``[P, 3]`` in the camera's frame (x right, y up, z forward) through a
    ``supersample x supersample`` grid of points in each pixel, rows from the top of the image;
    ``P = (image_size * supersample) ** 2``. ``fov_degrees`` is the full field of view."""
    fine = image_size * supersample
    half = math.tan(math.radians(fov_degrees) / 2)
    steps = (torch.arange(fine, dtype=torch.float32, device=device) + 0.5) / fine * 2 - 1
    v, u = torch.meshgrid(-steps * half, steps * half, indexing="ij")
    return normalize(torch.stack([u, v, torch.ones_like(u)], dim=-1).reshape(-1, 3))


@functools.lru_cache(maxsize=8)
def pixel_directions(
    image_size: int, points: int, fov_degrees: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``[S * S, points ** 2, 3]``: the directions of :func:`camera_directions` grouped by pixel
    (pixels row by row, each pixel's points row by row), computed once per size and device
    (callers must not modify it)."""
    grid = camera_directions(image_size, points, fov_degrees, device)
    grid = grid.view(image_size, points, image_size, points, 3).transpose(1, 2)
    return grid.reshape(image_size * image_size, points * points, 3)


def screen_rects(points: torch.Tensor, frame: torch.Tensor, image_size: int, fov_degrees: float) -> torch.Tensor:
    """``[N, B, 4]``: the rectangle (left, right, top, bottom, in pixels from the top left
    corner) holding the picture of each of ``B`` groups of points ``[N, B, K, 3]`` (relative to
    the eye) seen by cameras ``frame`` ``[N, 3, 3]``; the whole plane for a group with a point
    not in front of the camera."""
    camera = [dot(points, frame[:, None, None, axis]) for axis in range(3)]
    scale = image_size / 2 / math.tan(math.radians(fov_degrees) / 2)
    across, down = image_size / 2 + scale * camera[0] / camera[2], image_size / 2 - scale * camera[1] / camera[2]
    rects = torch.stack([across.amin(2), across.amax(2), down.amin(2), down.amax(2)], dim=-1)
    return torch.where((camera[2] > 1e-6).all(dim=2)[..., None], rects, EVERYWHERE.to(points.device))


EVERYWHERE = torch.tensor([-math.inf, math.inf, -math.inf, math.inf])
"""A rectangle (see :func:`screen_rects`) that holds every pixel."""


def box_corners(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The 8 corners ``[..., 8, 3]`` of boxes with corners ``low`` and ``high`` ``[..., 3]``."""
    pick = torch.tensor([[(i >> axis) & 1 for axis in range(3)] for i in range(8)], device=low.device).bool()
    return torch.where(pick, high[..., None, :], low[..., None, :])


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Camera frames ``[N, 3, 3]`` (rows: right, up, forward) of cameras at ``eye`` ``[N, 3]``
    looking at ``target`` ``[N, 3]`` with the world's y axis up."""
    forward = normalize(target - eye)
    right = normalize(torch.linalg.cross(forward, torch.tensor(UP, device=eye.device).expand_as(forward)))
    up = torch.linalg.cross(right, forward)
    return torch.stack([right, up, forward], dim=1)


def orbit(
    target: tuple[float, float, float], distance: float, azimuth: torch.Tensor, elevation: torch.Tensor
) -> torch.Tensor:
    """Eyes ``[N, 3]`` of cameras ``distance`` from ``target``, turned by ``azimuth`` ``[N]``
    (radians) about the vertical axis through it and raised by ``elevation`` ``[N]`` (radians)
    above it; at azimuth 0 the camera looks along +z."""
    centre = torch.tensor(target, device=azimuth.device)
    (ca, sa), (ce, se) = cos_sin(azimuth), cos_sin(elevation)
    return centre + distance * torch.stack([-ce * sa, se, -ce * ca], 1)


class Cameras(NamedTuple):
    """Pinhole cameras, one per image: eyes ``[N, 3]`` and frames ``[N, 3, 3]`` (see
    :func:`look_at`)."""

    eye: torch.Tensor
    frame: torch.Tensor

    def rays(self, rows: torch.Tensor, local: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Origins ``[R, 1, 3]`` and directions ``[R, Q, 3]`` of the rays of images ``rows``
        ``[R]`` along camera-frame directions ``local`` (see :func:`camera_directions`), ``[Q, 3]``
        shared by every row or ``[R, Q, 3]`` one set per row."""
        return self.eye.index_select(0, rows)[:, None], to_world(local, self.frame.index_select(0, rows))


def cameras(eye: torch.Tensor, target: tuple[float, float, float]) -> Cameras:
    """Cameras at ``eye`` ``[N, 3]`` looking at ``target``."""
    return Cameras(eye, look_at(eye, torch.tensor(target, device=eye.device).expand_as(eye)))


def in_chunks(
    render: Callable[..., torch.Tensor], samples_per_image: int, max_samples: int, *columns: torch.Tensor
) -> torch.Tensor:
    """``render(*columns)`` over consecutive chunks of the rows of ``columns``, each chunk at
    most ``max_samples`` ray samples (at least one image), concatenated: bounds peak memory."""
    chunk = max(1, max_samples // samples_per_image)
    return torch.cat([render(*(c[i : i + chunk] for c in columns)) for i in range(0, len(columns[0]), chunk)])


def to_world(local: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """Camera-frame vectors ``[P, 3]`` (or ``[N, P, 3]``) turned into the world by ``frame``
    ``[N, 3, 3]`` (rows: the camera's axes in world coordinates): ``[N, P, 3]``."""
    x, y, z = local.movedim(-1, 0).contiguous()  # each component contiguous: several times faster
    world = [x * frame[:, None, 0, c] + y * frame[:, None, 1, c] + z * frame[:, None, 2, c] for c in range(3)]
    return torch.stack(world, dim=-1)


def cos_sin(angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine of ``angle`` (radians) as float32, computed in float64: the float32
    result then does not depend on how many angles are computed together."""
    angle = angle.double()
    return torch.cos(angle).float(), torch.sin(angle).float()


def rotate_x(v: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """``v`` ``[N, ..., 3]`` turned by ``angle`` ``[N]`` (radians) about the x axis, y towards z."""
    shape = (-1,) + (1,) * (v.dim() - 2)
    c, s = (part.view(shape) for part in cos_sin(angle))
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return torch.stack([x, c * y - s * z, s * y + c * z], dim=-1)


def _miss_where(hit: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.where(hit & (t > EPS), t, torch.full_like(t, math.inf))


def look_up(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]``: rows of ``table`` ``[K, ...]`` at ``index`` (any shape) by
    ``index_select`` (several times faster on a CPU than indexing with a tensor)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, *table.shape[1:])


def plane_distance(
    origin: torch.Tensor, direction: torch.Tensor, normal: tuple[float, float, float], offset: float
) -> torch.Tensor:
    """Distances ``[N, P]`` to the plane ``dot(normal, p) = offset`` (``normal`` a unit
    vector), seen from the side ``normal`` points to; rays from behind it miss."""
    facing = dot_constant(direction, normal)
    t = (offset - dot_constant(origin, normal)) / facing.clamp(max=-1e-9)
    return _miss_where(facing < 0, t)


def dot_constant(v: torch.Tensor, constant: tuple[float, float, float]) -> torch.Tensor:
    """``dot(v, constant)`` without the terms of ``constant``'s zero components (the same sum)."""
    terms = [v[..., axis] * value for axis, value in enumerate(constant) if value != 0]
    return sum(terms[1:], terms[0])


def reciprocal(direction: torch.Tensor) -> torch.Tensor:
    """``1 / direction`` component by component, a component within 1e-9 of 0 taken as 1e-9 of
    its sign (what the slab test of :func:`box_entry` needs)."""
    return 1 / torch.copysign(direction.abs().clamp(min=1e-9), direction)


def box_lit(direction: torch.Tensor, low: torch.Tensor, high: torch.Tensor, light: Light) -> Lit:
    """The axis-aligned box whose corners, relative to the rays' origins, are ``low`` and ``high``
    (each ``[N, 1, 3]``, or ``[N, P, 3]`` for one origin per ray): the slab test; each face's
    brightness is computed once and looked up."""
    t, face = box_entry(reciprocal(direction), low, high)
    faces = lambert(FACE_NORMALS.to(t.device), light.towards, light.ambient)  # [6], or [N, 6]: a light per row
    return Lit(t, look_up(faces, face) if faces.dim() == 1 else faces.gather(1, face))


def box_distance(direction: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """:func:`box_lit`'s distances alone."""
    return _slabs(reciprocal(direction), low, high)[0]


FACE_NORMALS = torch.tensor([[-1.0, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]])
"""The outward normal of each face of an axis-aligned box, numbered as :func:`box_entry` does."""


def _slabs(
    inverse: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The slab test of rays given by their :func:`reciprocal` directions ``inverse``: distances
    ``[N, P]``, and the distances at which each ray enters the x, y and z slabs and the later of
    the first two (four ``[N, P]``)."""
    near, far = low * inverse, high * inverse
    enter, leave = torch.minimum(near, far), torch.maximum(near, far)
    # Over the three slabs component by component (a reduction over a last dimension of 3 is
    # several times slower on a CPU).
    (enter_x, enter_y, enter_z), (leave_x, leave_y, leave_z) = enter.unbind(-1), leave.unbind(-1)
    across = torch.maximum(enter_x, enter_y)
    entry = torch.maximum(across, enter_z)
    exit_ = torch.minimum(torch.minimum(leave_x, leave_y), leave_z)
    t = torch.where((entry <= exit_) & (entry > EPS), entry, math.inf)
    return t, (enter_x, enter_y, enter_z, across)


def box_entry(inverse: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The slab test of rays given by their :func:`reciprocal` directions ``inverse``: distances
    ``t`` ``[N, P]`` and, for the rays that hit, the face each enters by ``[N, P]``: ``2 *
    axis``, plus 1 for the face whose outward normal points along the axis (see
    :data:`FACE_NORMALS`)."""
    t, (enter_x, enter_y, enter_z, across) = _slabs(inverse, low, high)
    # The axis of entry is the first slab entered last.
    axis = torch.where(enter_z > across, 2, (enter_y > enter_x).long())
    # A ray enters a slab by the face its direction points away from (the sign of its reciprocal:
    # a direction's zero component can be an axis of entry only for a ray that misses).
    backwards = inverse.gather(-1, axis[..., None])[..., 0] < 0
    return t, 2 * axis + backwards


def passes_sphere(
    origin: torch.Tensor, direction: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor
) -> torch.Tensor:
    """``[N, P]``: which rays come within ``radius`` ``[N]`` of ``centre`` ``[N, 3]`` ahead of
    their origin (or start within it): a cheap bound before exact tests."""
    offset = centre[:, None] - origin
    along, square, reach = dot(offset, direction), dot(offset, offset), radius[:, None] ** 2
    return (square - along * along <= reach) & ((along > 0) | (square <= reach))


def sphere_distance(
    origin: torch.Tensor, direction: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor
) -> torch.Tensor:
    """:func:`sphere_lit`'s distances alone."""
    offset = origin - centre[:, None]
    b = dot(offset, direction)
    disc = b * b - (dot(offset, offset) - radius[:, None] ** 2)
    return _miss_where(disc >= 0, -b - disc.clamp(min=0).sqrt())


def sphere_lit(
    origin: torch.Tensor, direction: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor, light: Light
) -> Lit:
    """The sphere of ``radius`` ``[N]`` around ``centre`` ``[N, 3]`` (rays start outside it)."""
    t = sphere_distance(origin, direction, centre, radius)
    point = origin - centre[:, None] + t[..., None] * direction
    return Lit(t, lambert(point / radius[:, None, None], light.towards, light.ambient))


def _side(
    origin: torch.Tensor, direction: torch.Tensor, radius: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rays against the endless vertical cylinder of ``radius`` ``[N]`` about the y axis: the
    discriminant (negative on a miss), the distance to where each ray enters it and the height
    there (each ``[N, P]``)."""
    ox, oz, dx, dz = origin[..., 0], origin[..., 2], direction[..., 0], direction[..., 2]
    a = (dx * dx + dz * dz).clamp(min=1e-12)
    b = ox * dx + oz * dz
    disc = b * b - a * (ox * ox + oz * oz - radius[:, None] ** 2)
    t = (-b - disc.clamp(min=0).sqrt()) / a
    return disc, t, origin[..., 1] + t * direction[..., 1]


def tube_distance(
    origin: torch.Tensor,
    direction: torch.Tensor,
    radius: torch.Tensor,
    bottom: torch.Tensor,
    top: torch.Tensor,
) -> torch.Tensor:
    """:func:`tube_lit`'s distances alone."""
    disc, t, y = _side(origin, direction, radius)
    return _miss_where((disc >= 0) & (y >= bottom[:, None]) & (y <= top[:, None]), t)


def _capsule(
    origin: torch.Tensor, direction: torch.Tensor, radius: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`capsule_lit`'s distances ``[N, P]``, whether each ray meets an end sphere there
    (before the side), and the height of each ray's origin above that sphere's centre."""
    disc, t, y = _side(origin, direction, radius)
    low, high = low[:, None], high[:, None]
    side = _miss_where((disc >= 0) & (y >= low) & (y <= high), t)
    # A ray meets the sphere of the end nearer to where it enters the endless cylinder, if any:
    # the other lies behind that one's cross-section.
    above = origin[..., 1] - torch.where(y < (low + high) / 2, low, high)
    ox, oz, dx, dy, dz = origin[..., 0], origin[..., 2], direction[..., 0], direction[..., 1], direction[..., 2]
    b = ox * dx + above * dy + oz * dz
    end = b * b - ((ox * ox + above * above + oz * oz) - radius[:, None] ** 2)
    at_end = _miss_where(end >= 0, -b - end.clamp(min=0).sqrt())
    return torch.minimum(side, at_end), at_end < side, above


def capsule_distance(
    origin: torch.Tensor,
    direction: torch.Tensor,
    radius: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
) -> torch.Tensor:
    """:func:`capsule_lit`'s distances alone."""
    return _capsule(origin, direction, radius, low, high)[0]


def capsule_lit(
    origin: torch.Tensor,
    direction: torch.Tensor,
    radius: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    light: Light,
) -> Lit:
    """The upright capsule of ``radius`` about the y axis whose end spheres are centred at
    heights ``low`` and ``high`` (each ``[N]``): what the side between them and the two spheres
    give, nearest first, at the cost of the side and one sphere."""
    t, on_end, above = _capsule(origin, direction, radius, low, high)
    x, z = (origin[..., axis] + t * direction[..., axis] for axis in (0, 2))
    height = torch.where(on_end, above + t * direction[..., 1], 0.0)
    across = radius[:, None]
    return Lit(t, _brightness(x / across, height / across, z / across, light))


def tube_lit(
    origin: torch.Tensor,
    direction: torch.Tensor,
    radius: torch.Tensor,
    bottom: torch.Tensor,
    top: torch.Tensor,
    light: Light,
) -> Lit:
    """The side of the vertical cylinder of ``radius`` about the y axis between heights
    ``bottom`` and ``top`` (each ``[N]``), without its caps."""
    t = tube_distance(origin, direction, radius, bottom, top)
    x, z = (origin[..., axis] + t * direction[..., axis] for axis in (0, 2))
    return Lit(t, _brightness(x / radius[:, None], None, z / radius[:, None], light))


def disc_distance(
    origin: torch.Tensor, direction: torch.Tensor, radius: torch.Tensor, height: torch.Tensor
) -> torch.Tensor:
    """:func:`disc_lit`'s distances alone."""
    t = (height[:, None] - origin[..., 1]) / direction[..., 1].clamp(max=-1e-9)
    x = origin[..., 0] + t * direction[..., 0]
    z = origin[..., 2] + t * direction[..., 2]
    return _miss_where((direction[..., 1] < 0) & (x * x + z * z <= radius[:, None] ** 2), t)


def disc_lit(
    origin: torch.Tensor, direction: torch.Tensor, radius: torch.Tensor, height: torch.Tensor, light: Light
) -> Lit:
    """The horizontal disc of ``radius`` centred on the y axis at ``height``, seen from above."""
    t = disc_distance(origin, direction, radius, height)
    up = lambert(torch.tensor(UP, device=t.device), light.towards, light.ambient)
    return Lit(t, up.expand_as(t))  # one brightness, or one per row of rays


def nearest_lit(*hits: Lit) -> Lit:
    """The nearest of several hits along each ray (the first where they tie)."""
    best = hits[0]
    for other in hits[1:]:
        closer = other.t < best.t
        best = Lit(torch.where(closer, other.t, best.t), torch.where(closer, other.brightness, best.brightness))
    return best


def nearest_distance(*distances: torch.Tensor) -> torch.Tensor:
    """:func:`nearest_lit`'s distances alone."""
    return functools.reduce(torch.minimum, distances)


class Surfaces(NamedTuple):
    """The primitives, as hits with their brightness (:func:`lit_surfaces`) or as distances
    alone (:data:`DISTANCES`, several times cheaper where only whether a ray is blocked
    matters), so that a shape is written once for both."""

    box: Callable[..., Any]
    sphere: Callable[..., Any]
    tube: Callable[..., Any]
    disc: Callable[..., Any]
    capsule: Callable[..., Any]
    nearest: Callable[..., Any]


DISTANCES = Surfaces(box_distance, sphere_distance, tube_distance, disc_distance, capsule_distance, nearest_distance)


def lit_surfaces(light: Light) -> Surfaces:
    """The primitives as :class:`Lit` hits under ``light``."""
    primitives = (box_lit, sphere_lit, tube_lit, disc_lit, capsule_lit)
    box, sphere, tube, disc, capsule = (functools.partial(primitive, light=light) for primitive in primitives)
    return Surfaces(box, sphere, tube, disc, capsule, nearest_lit)


def by_kind(
    kind: torch.Tensor,
    kinds: int,
    compute: Callable[[int, torch.Tensor], tuple[torch.Tensor, ...]],
    *blanks: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """``blanks`` ``[R, ...]`` filled in row by row with what ``compute(k, rows)`` gives for the
    rows ``rows`` ``[K]`` whose ``kind`` ``[R]`` is ``k`` (one tensor ``[K, ...]`` per blank), for
    every ``k`` in ``0 .. kinds - 1``; rows of no kind keep their blanks."""
    for each in range(kinds):
        rows = (kind == each).nonzero()[:, 0]
        if len(rows):
            for blank, value in zip(blanks, compute(each, rows), strict=True):
                blank.index_copy_(0, rows, value)
    return blanks


def nearest_of(
    near: torch.Tensor,
    intersect: Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    blank: torch.Tensor,
    rays: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distance ``[R, Q]`` (``inf`` on a miss) to the nearest of ``B`` parts along each of
    ``rays`` (``Q``) rays of ``R`` rows, and what its hit carries ``[R, Q, ...]`` (``blank`` on a
    miss): part ``b`` is tested only on the rows where ``near[:, b]`` ``[R, B]`` holds, and
    ``intersect(b, rows)`` gives the distances ``[K, Q]`` and what the hits carry of rows
    ``rows`` ``[K]``."""
    t = torch.full((len(near), rays), math.inf, device=near.device)
    carried = blank.expand(len(near), rays, *blank.shape).clone()
    for part in range(near.shape[1]):
        rows = near[:, part].nonzero()[:, 0]
        if len(rows):
            distance, value = intersect(part, rows)
            before = t.index_select(0, rows)
            closer = distance < before
            t.index_copy_(0, rows, torch.minimum(distance, before))
            closer = closer.view(*closer.shape, *(1,) * blank.dim())
            carried.index_copy_(0, rows, torch.where(closer, value, carried.index_select(0, rows)))
    return t, carried


def lambert(normal: torch.Tensor, light: torch.Tensor, ambient: float) -> torch.Tensor:
    """Diffuse brightness ``ambient + (1 - ambient) * max(0, n . l)`` of unit normals ``[N, P, 3]``
    under a distant light from unit direction ``light`` (``[3]`` or ``[N, 3]``, towards the light)."""
    return _brightness(normal[..., 0], normal[..., 1], normal[..., 2], Light(light, ambient))


def _brightness(x: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor, light: Light) -> torch.Tensor:
    """:func:`lambert` of unit normals given component by component, ``y`` None where it is
    zero (the same values: a zero term changes no sum that ends in the ambient term)."""
    lit = light.towards if light.towards.dim() == 1 else light.towards[:, None]
    facing = x * lit[..., 0] + z * lit[..., 2] if y is None else x * lit[..., 0] + y * lit[..., 1] + z * lit[..., 2]
    return light.ambient + (1 - light.ambient) * facing.clamp(min=0)


class Seen(NamedTuple):
    """What rays see: values ``[R, Q, C]`` and the part each hits ``[R, Q]`` (an integer per
    surface, 0 to 255: where two neighbouring rays hit different parts, a border runs between
    them)."""

    values: torch.Tensor
    part: torch.Tensor


class Rows(NamedTuple):
    """Rows of rays, each row the rays through one pixel, or through a square of ``span`` x
    ``span`` pixels: its image, and its row and column in units of ``span`` pixels ``[R]``."""

    image: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    span: int = 1

    def select(self, index: torch.Tensor) -> Rows:
        """Rows ``index`` ``[K]`` of these."""
        return self._replace(**{name: getattr(self, name).index_select(0, index) for name in ("image", "y", "x")})

    def local(self, table: torch.Tensor) -> torch.Tensor:
        """``[R, Q, 3]``: the camera-frame directions of these rows' squares in ``table``
        ``[(S / span) ** 2, Q, 3]`` (see :func:`pixel_directions`)."""
        return table.index_select(0, self.y * math.isqrt(len(table)) + self.x)

    def in_views(self, slots: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``[R]``: where these rows' squares lie in a table of rays stacked view by view, each
        view's as ``table`` ``[(S / span) ** 2, Q, ...]``, for the views ``slots`` ``[N]`` of the
        images (see :func:`view_slots`)."""
        return slots.index_select(0, self.image) * len(table) + self.y * math.isqrt(len(table)) + self.x

    def within(self, rects: torch.Tensor) -> torch.Tensor:
        """``[R, B]``: whether each row's square overlaps the image's rectangles ``rects``
        ``[N, B, 4]`` (see :func:`screen_rects`), with a margin for rounding."""
        left, right, top, bottom = rects.index_select(0, self.image).unbind(-1)
        x, y = self.x[:, None].float() * self.span, self.y[:, None].float() * self.span
        return (
            (x + self.span + RECT_MARGIN >= left)
            & (x - RECT_MARGIN <= right)
            & (y + self.span + RECT_MARGIN >= top)
            & (y - RECT_MARGIN <= bottom)
        )


def grid_within(rects: torch.Tensor, grid: int, span: int = 1) -> torch.Tensor:
    """``[N * grid * grid]``: :meth:`Rows.within` of the rows of every square (``span`` pixels a
    side) of a ``grid`` x ``grid`` in each of ``N`` images, in the order of :func:`_every_pixel`,
    for one rectangle per image ``[N, 1, 4]``: the same answers from a test per row and per
    column of squares."""
    left, right, top, bottom = rects[:, 0, :, None].unbind(1)
    side = torch.arange(grid, device=rects.device).float() * span
    columns = (side + span + RECT_MARGIN >= left) & (side - RECT_MARGIN <= right)
    rows = (side + span + RECT_MARGIN >= top) & (side - RECT_MARGIN <= bottom)
    return (rows[:, :, None] & columns[:, None, :]).view(-1)


def view_slots(views: torch.Tensor, grid: torch.Tensor) -> torch.Tensor | None:
    """``[N]``: which row of ``grid`` ``[V, K]`` each image's view ``views`` ``[N, K]`` is
    (compared exactly, in float64), or None if one is none of them: where rays cached for every
    view of a factor grid can be looked up."""
    same = views.to(torch.float64)[:, None] == grid.to(views.device, torch.float64)[None]
    same = same.all(dim=-1)
    return same.long().argmax(dim=1) if bool(same.any(dim=1).all()) else None


class Backdrop(NamedTuple):
    """What lies behind the scene's moving parts: its pixels ``[N * S * S, C]`` (every sample;
    images, then rows of pixels, as :func:`flat_pixels` gives them), the number of its parts (its
    rays see parts numbered below it) and the rectangle ``[N, 1, 4]`` outside which the scene is
    the backdrop (see :func:`screen_rects`)."""

    pixels: torch.Tensor
    parts: int
    rect: torch.Tensor


RECT_MARGIN = 1e-3
"""Pixels by which :meth:`Rows.within` widens a rectangle (so rounding never drops a ray)."""

Shader = Callable[[Rows, torch.Tensor], Seen]
"""``shade(rows, table)``: what the rays of ``rows`` (``R`` pixels) see along the camera-frame
directions of their pixels in ``table`` ``[S * S, Q, 3]`` (:meth:`Rows.local`)."""

EDGE_TOLERANCE = 0.05
"""The largest second difference between neighbouring pixel centres' values that leaves a
pixel to its centre (see :func:`shade_pixels`)."""


def shade_pixels(
    shade: Shader,
    count: int,
    image_size: int,
    supersample: int,
    fov_degrees: float,
    device: torch.device | str = "cpu",
    adaptive: bool = False,
    backdrop: Backdrop | None = None,
) -> torch.Tensor:
    """Pixels ``[N, C, S, S]`` of ``count`` images, each the mean of ``shade`` over its
    ``supersample x supersample`` sample points (:func:`camera_directions`).

    ``adaptive``: a first pass shades each pixel's centre. A pixel whose centre sees the same
    part as its eight neighbours' and lies on a locally linear picture (no second difference
    along a row, column or diagonal through it above ``EDGE_TOLERANCE``; a shader's part must
    give its values in one channel, so that the sum over channels can be tested) keeps
    its centre's value: inside a flat, evenly lit surface that is the mean of its samples, on a
    curved one it is off by a small fraction of the tolerance. Every other pixel (an edge, a
    shadow's border) gets the mean of all its samples, or, if its centre and its neighbours' all
    see the ``backdrop``, the backdrop's pixel. A part or a gap narrower than a pixel that no
    centre sees can be missed: for scenes without one.

    With a ``backdrop``, adaptive or not, a pixel outside its rectangle is the backdrop's pixel,
    and only the pixels within it are shaded."""
    every = _every_pixel(count, image_size, device)
    if not adaptive or supersample == 1:
        if backdrop is None:
            return _picture(_mean(shade, every, image_size, supersample, fov_degrees), count, image_size)
        pixels, refine = backdrop.pixels, grid_within(backdrop.rect, image_size)
    else:
        pixels, refine = _adapt(shade, every, count, image_size, fov_degrees, backdrop)
    index = refine.nonzero()[:, 0]
    rest = _mean(shade, every.select(index), image_size, supersample, fov_degrees)
    return _picture(pixels.index_copy(0, index, rest), count, image_size)


def _adapt(
    shade: Shader, every: Rows, count: int, image_size: int, fov_degrees: float, backdrop: Backdrop | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first pass of :func:`shade_pixels` when ``adaptive``: the pixels ``[N * S * S, C]``
    from their centres (or the backdrop), and which of them to shade from every sample."""
    pixels, part = _centres(shade, every, image_size, fov_degrees, backdrop)
    part = _small(part).view(count, image_size, image_size)
    # Where a pixel and its neighbours see one part, only one channel is not zero: testing the
    # channels' sum is testing that channel, at a third of the work (added channel by channel:
    # the same sums as a reduction over the last dimension, several times faster).
    total = functools.reduce(torch.add, pixels.unbind(-1))
    refine = _edges(total.view(count, image_size, image_size), part).view(-1)
    if backdrop is not None:
        behind = ~_near(part >= backdrop.parts).view(-1) | ~grid_within(backdrop.rect, image_size)
        pixels = torch.where(behind[:, None], backdrop.pixels, pixels)
        refine &= ~behind
    return pixels, refine


CENTRE_SQUARE = 4
"""Pixels per side of the squares whose centres :func:`_centres` casts together, in one row."""


def _centres(
    shade: Shader, every: Rows, image_size: int, fov_degrees: float, backdrop: Backdrop | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values ``[N * S * S, C]`` and parts ``[N * S * S]`` seen through every pixel's centre; with
    a ``backdrop``, only within a pixel of its rectangle (the backdrop's pixel and part 0 well
    outside it), the centres of a square of ``CENTRE_SQUARE`` pixels a side in one row."""
    device = every.image.device
    if backdrop is None:
        seen = shade(every, pixel_directions(image_size, 1, fov_degrees, device))
        return seen.values[:, 0], seen.part[:, 0]
    side = CENTRE_SQUARE if image_size % CENTRE_SQUARE == 0 else 1
    squares = _every_pixel(len(backdrop.rect), image_size // side, device)._replace(span=side)
    near = grid_within(backdrop.rect + torch.tensor([-1.0, 1.0, -1.0, 1.0]).to(backdrop.rect), image_size // side, side)
    squares = squares.select(near.nonzero()[:, 0])
    seen = shade(squares, pixel_directions(image_size // side, side, fov_degrees, device))
    corner = (squares.image * image_size + squares.y * side) * image_size + squares.x * side
    within = torch.arange(side, device=device)
    index = (corner[:, None] + (within[:, None] * image_size + within).view(-1)).view(-1)
    values = backdrop.pixels.index_copy(0, index, seen.values.flatten(0, 1))
    return values, torch.zeros_like(every.image).index_copy(0, index, seen.part.flatten(0, 1))


def _small(part: torch.Tensor) -> torch.Tensor:
    """Parts (numbered 0 to 255) as bytes, which are compared several times faster."""
    if len(part) and int(part.max()) > 255:
        raise ValueError("an adaptive shader numbers its parts from 0 to 255")
    return part.to(torch.uint8)


def flat_pixels(picture: torch.Tensor) -> torch.Tensor:
    """Pictures ``[N, C, S, S]`` as pixels ``[N * S * S, C]`` (a contiguous copy)."""
    return picture.permute(0, 2, 3, 1).reshape(-1, picture.shape[1])


def _picture(pixels: torch.Tensor, count: int, image_size: int) -> torch.Tensor:
    """Pixels ``[N * S * S, C]`` as pictures ``[N, C, S, S]``."""
    return pixels.view(count, image_size, image_size, -1).permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=4)
def _every_pixel(count: int, image_size: int, device: torch.device | str) -> Rows:
    """The rows of every pixel of ``count`` images, image by image, row by row (computed once
    per count, size and device: callers must not modify them)."""
    side = torch.arange(image_size, device=device)
    image = torch.arange(count, device=device).repeat_interleave(image_size * image_size)
    return Rows(image, side.repeat_interleave(image_size).repeat(count), side.repeat(count * image_size))


def _mean(shade: Shader, rows: Rows, image_size: int, supersample: int, fov_degrees: float) -> torch.Tensor:
    """``[R, C]``: the mean of ``shade`` over every sample point of the pixels of ``rows``."""
    return shade(rows, pixel_directions(image_size, supersample, fov_degrees, rows.image.device)).values.mean(dim=1)


def _edges(grid: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]``: where a pixel's centre (one value each, ``grid`` ``[N, H, W]``, and parts
    ``part`` ``[N, H, W]``) sees another part than a neighbour's, or ``grid`` has a second
    difference along a row, a column or a diagonal above ``EDGE_TOLERANCE`` (edges repeated
    outwards)."""
    values, parts = _padded(grid), _padded(part)
    twice = 2 * grid
    edges = torch.zeros_like(part, dtype=torch.bool)
    for before, after in _opposite(values):
        edges |= (before + after - twice).abs() > EDGE_TOLERANCE
    for before, after in _opposite(parts):
        edges |= (before != part) | (after != part)
    return edges


def _near(mask: torch.Tensor) -> torch.Tensor:
    """``[N, H, W]``: where ``mask`` ``[N, H, W]`` holds at a pixel or one of its eight neighbours."""
    near = mask.clone()
    for before, after in _opposite(_padded(mask)):
        near |= before | after
    return near


def _padded(grid: torch.Tensor) -> torch.Tensor:
    """Pictures ``[N, H, W, ...]`` with their outermost rows and columns repeated once outwards."""
    height, width = grid.shape[1:3]
    rows = torch.arange(-1, height + 1, device=grid.device).clamp(0, height - 1)
    columns = torch.arange(-1, width + 1, device=grid.device).clamp(0, width - 1)
    return grid.index_select(1, rows).index_select(2, columns)


def _opposite(padded: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The two opposite neighbours of every pixel of a :func:`_padded` picture along a row, a
    column and both diagonals: four pairs of pictures ``[N, H, W, ...]``."""
    height, width = padded.shape[1] - 2, padded.shape[2] - 2

    def shifted(dy: int, dx: int) -> torch.Tensor:
        return padded[:, 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    return [(shifted(-dy, -dx), shifted(dy, dx)) for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1))]
