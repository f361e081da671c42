"""A small vectorized ray caster: pinhole cameras, analytic ray-primitive intersections, Lambert
shading and supersampled pixels, on whole batches of images at once (CPU or CUDA).

Conventions: the world's y axis points up; a vector is a tensor whose last dimension holds
(x, y, z). Rays are batched ``[N, P, 3]`` (``N`` images, ``P`` sample points each); a scene's
per-image parameters are ``[N]`` or ``[N, 3]`` and broadcast over the samples. Every
intersection returns a :class:`Hit` whose ``t`` is ``inf`` where the ray misses, so hits
combine with :func:`nearest`. All arithmetic is element-wise (no matrix products), so an
image comes out the same whether it is rendered alone or in a batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

EPS = 1e-4
"""Smallest accepted ray distance (keeps shadow rays from hitting the surface they leave)."""
UP = (0.0, 1.0, 0.0)


class Hit(NamedTuple):
    """Distance ``t`` ``[N, P]`` (``inf`` on a miss), unit normal ``[N, P, 3]`` and integer
    material ``[N, P]`` of the nearest surface along each ray."""

    t: torch.Tensor
    normal: torch.Tensor
    material: torch.Tensor


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


def primary_rays(
    eye: torch.Tensor, target: tuple[float, float, float], image_size: int, supersample: int, fov_degrees: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Origins ``[N, 1, 3]`` and directions ``[N, P, 3]`` of the rays of cameras at ``eye``
    ``[N, 3]`` looking at ``target`` (see :func:`camera_directions`), and the cameras' frames
    ``[N, 3, 3]`` (see :func:`look_at`)."""
    frame = look_at(eye, torch.tensor(target, device=eye.device).expand_as(eye))
    directions = camera_directions(image_size, supersample, fov_degrees, eye.device)
    return eye[:, None], to_world(directions, frame), frame


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
    x, y, z = local[..., 0:1], local[..., 1:2], local[..., 2:3]
    return x * frame[:, None, 0] + y * frame[:, None, 1] + z * frame[:, None, 2]


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


def _hit(t: torch.Tensor, normal: torch.Tensor, material: int) -> Hit:
    return Hit(t, normal, torch.full(t.shape, material, dtype=torch.int64, device=t.device))


def _miss_where(hit: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.where(hit & (t > EPS), t, torch.full_like(t, math.inf))


def plane(
    origin: torch.Tensor, direction: torch.Tensor, normal: torch.Tensor, offset: torch.Tensor | float, material: int
) -> Hit:
    """The plane ``dot(normal, p) = offset`` (``normal`` ``[3]`` or ``[N, 3]``, unit), seen from
    the side ``normal`` points to; rays from behind it miss."""
    n = normal if normal.dim() == 1 else normal[:, None]
    facing = dot(direction, n)
    offset = offset if isinstance(offset, float) else offset[:, None]
    t = (offset - dot(origin, n)) / facing.clamp(max=-1e-9)
    return _hit(_miss_where(facing < 0, t), n.expand_as(direction), material)


def boxes(
    direction: torch.Tensor, low: torch.Tensor, high: torch.Tensor, material: int, present: torch.Tensor | None = None
) -> Hit:
    """The nearest of ``B`` axis-aligned boxes whose corners, relative to the rays' origin (one
    origin per image), are ``low`` and ``high`` (each ``[N, B, 3]``; a box counts only where
    ``present`` ``[N, B]`` holds): the slab test, the normal worked out for the nearest only."""
    inverse = 1 / torch.where(direction.abs() < 1e-9, torch.full_like(direction, 1e-9), direction)
    best = torch.full(direction.shape[:-1], math.inf, device=direction.device)
    best_axis = torch.zeros(direction.shape[:-1], dtype=torch.int64, device=direction.device)
    for b in range(low.shape[1]):
        near = low[:, None, b] * inverse
        far = high[:, None, b] * inverse
        enter, leave = torch.minimum(near, far), torch.maximum(near, far)
        # Over the three slabs component by component (a reduction over a last dimension of 3
        # is several times slower on a CPU); the axis of entry is the first slab entered last.
        beyond_x = enter[..., 1] > enter[..., 0]
        entry_xy = torch.maximum(enter[..., 0], enter[..., 1])
        beyond_xy = enter[..., 2] > entry_xy
        entry = torch.maximum(entry_xy, enter[..., 2])
        axis = torch.where(beyond_xy, 2, beyond_x.long())
        exit_ = torch.minimum(torch.minimum(leave[..., 0], leave[..., 1]), leave[..., 2])
        closer = (entry <= exit_) & (entry > EPS) & (entry < best)
        if present is not None:
            closer &= present[:, b, None]
        best = torch.where(closer, entry, best)
        best_axis = torch.where(closer, axis, best_axis)
    normal = -torch.sign(direction) * F.one_hot(best_axis, 3).to(direction.dtype)
    return _hit(best, normal, material)


def passes_sphere(
    origin: torch.Tensor, direction: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor
) -> torch.Tensor:
    """``[N, P]``: which rays come within ``radius`` ``[N]`` of ``centre`` ``[N, 3]`` ahead of
    their origin (or start within it): a cheap bound before exact tests."""
    offset = centre[:, None] - origin
    along = dot(offset, direction)
    gap = dot(offset, offset) - along * along
    return (gap <= radius[:, None] ** 2) & ((along > 0) | (dot(offset, offset) <= radius[:, None] ** 2))


def within(
    mask: torch.Tensor,
    origin: torch.Tensor,
    direction: torch.Tensor,
    intersect: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Hit],
) -> Hit:
    """Intersect only the rays where ``mask`` ``[N, P]`` holds; the others miss.

    ``intersect(origin, direction, rows)`` gets the selected rays as ``M`` images of one ray each
    (``[M, 1, 3]``) and ``rows`` ``[M]``, the image each came from (to pick its parameters)."""
    n, p = mask.shape
    rows, cols = mask.nonzero(as_tuple=True)
    start = origin.expand(n, p, 3)[rows, cols] if origin.shape[1] == p else origin[rows, 0]
    inner = intersect(start[:, None], direction[rows, cols][:, None], rows)
    t = torch.full((n, p), math.inf, device=direction.device)
    normal = torch.zeros(n, p, 3, device=direction.device)
    material = torch.zeros(n, p, dtype=torch.int64, device=direction.device)
    t[rows, cols], normal[rows, cols], material[rows, cols] = inner.t[:, 0], inner.normal[:, 0], inner.material[:, 0]
    return Hit(t, normal, material)


def sphere(
    origin: torch.Tensor, direction: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor, material: int
) -> Hit:
    """The sphere of ``radius`` ``[N]`` around ``centre`` ``[N, 3]`` (rays start outside it)."""
    offset = origin - centre[:, None]
    b = dot(offset, direction)
    disc = b * b - (dot(offset, offset) - radius[:, None] ** 2)
    t = -b - disc.clamp(min=0).sqrt()
    point = offset + t[..., None] * direction
    return _hit(_miss_where(disc >= 0, t), point / radius[:, None, None], material)


def tube(
    origin: torch.Tensor,
    direction: torch.Tensor,
    radius: torch.Tensor,
    bottom: torch.Tensor,
    top: torch.Tensor,
    material: int,
) -> Hit:
    """The side of the vertical cylinder of ``radius`` about the y axis between heights
    ``bottom`` and ``top`` (each ``[N]``), without its caps."""
    ox, oz, dx, dz = origin[..., 0], origin[..., 2], direction[..., 0], direction[..., 2]
    a = (dx * dx + dz * dz).clamp(min=1e-12)
    b = ox * dx + oz * dz
    disc = b * b - a * (ox * ox + oz * oz - radius[:, None] ** 2)
    t = (-b - disc.clamp(min=0).sqrt()) / a
    y = origin[..., 1] + t * direction[..., 1]
    inside = (disc >= 0) & (y >= bottom[:, None]) & (y <= top[:, None])
    normal = torch.stack([ox + t * dx, torch.zeros_like(t), oz + t * dz], dim=-1) / radius[:, None, None]
    return _hit(_miss_where(inside, t), normal, material)


def disc(
    origin: torch.Tensor, direction: torch.Tensor, radius: torch.Tensor, height: torch.Tensor, material: int
) -> Hit:
    """The horizontal disc of ``radius`` centred on the y axis at ``height``, seen from above."""
    t = (height[:, None] - origin[..., 1]) / direction[..., 1].clamp(max=-1e-9)
    x = origin[..., 0] + t * direction[..., 0]
    z = origin[..., 2] + t * direction[..., 2]
    inside = (direction[..., 1] < 0) & (x * x + z * z <= radius[:, None] ** 2)
    normal = torch.tensor(UP, device=t.device).expand_as(direction)
    return _hit(_miss_where(inside, t), normal, material)


def nearest(*hits: Hit) -> Hit:
    """The nearest of several hits along each ray (the first where they tie)."""
    best = hits[0]
    for other in hits[1:]:
        closer = other.t < best.t
        best = Hit(
            torch.where(closer, other.t, best.t),
            torch.where(closer[..., None], other.normal, best.normal),
            torch.where(closer, other.material, best.material),
        )
    return best


def lambert(normal: torch.Tensor, light: torch.Tensor, ambient: float) -> torch.Tensor:
    """Diffuse brightness ``ambient + (1 - ambient) * max(0, n . l)`` of unit normals ``[N, P, 3]``
    under a distant light from unit direction ``light`` (``[3]`` or ``[N, 3]``, towards the light)."""
    lit = light if light.dim() == 1 else light[:, None]
    return ambient + (1 - ambient) * dot(normal, lit).clamp(min=0)


def to_pixels(samples: torch.Tensor, image_size: int, supersample: int) -> torch.Tensor:
    """Per-sample values ``[N, C, P]`` (samples in :func:`camera_directions` order) averaged into
    pixels ``[N, C, image_size, image_size]``: the box filter of supersampling."""
    fine = image_size * supersample
    grid = samples.reshape(samples.shape[0], samples.shape[1], fine, fine)
    return F.avg_pool2d(grid, supersample) if supersample > 1 else grid
