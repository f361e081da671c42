"""objects_room and chairs: the published factor grids, exact and reproducible ray-cast images,
scenes that read as what they are, and the whole pipeline (train, figures, evaluate) on them."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from sbvae.bench import SceneCase
from sbvae.config import DataConfig, load_config
from sbvae.data import chairs, find_factor, make_dataset, make_generator, raycast, room
from sbvae.data.chairs import AZIMUTHS, BACK_TILTS, ChairRenderer, chair_rays, chairs_factors
from sbvae.data.memo import Memo, grid_index, grid_labels
from sbvae.data.raycast import (
    EVERYWHERE,
    FACE_NORMALS,
    Light,
    Rows,
    box_entry,
    capsule_distance,
    capsule_lit,
    grid_within,
    lambert,
    nearest_lit,
    reciprocal,
    screen_rects,
    sphere_lit,
    tube_lit,
    view_slots,
)
from sbvae.data.room import (
    OBJECT,
    RENDERER_VERSION,
    RoomRenderer,
    object_blocks,
    object_lit,
    objects_room_factors,
    room_rays,
    shaded_coverage,
)
from sbvae.data.sprites import hsv_to_rgb
from sbvae.evaluation.probe import data_identity
from sbvae.training.run_folder import FIGURE_FILES

SCENES = ("objects_room", "chairs")
FRESH = {"objects_room": RoomRenderer, "chairs": ChairRenderer}
"""Renderers built here, not by the presets: each starts with nothing ray-cast."""


def sample(preset: str, n: int, seed: int = 0) -> torch.Tensor:
    return make_dataset(preset, 16).factors.sample(n, make_generator(seed, "scenes"))


# -- the factor grids ---------------------------------------------------------------------


def test_objects_room_has_the_3d_shapes_grid_in_its_order():
    factors = objects_room_factors()
    assert factors.names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert factors.num_classes == (10, 10, 10, 8, 4, 15)
    assert math.prod(factors.num_classes) == 480_000
    for hue in ("floor_hue", "wall_hue", "object_hue"):
        assert find_factor(factors, hue).values.tolist() == pytest.approx([i / 10 for i in range(10)], abs=1e-12)
    assert find_factor(factors, "scale").values.tolist() == pytest.approx([0.75 + i / 14 for i in range(8)])
    assert find_factor(factors, "orientation").values.tolist() == pytest.approx([-30 + 60 * i / 14 for i in range(15)])
    shape = find_factor(factors, "shape")
    assert shape.values.tolist() == [0, 1, 2, 3]
    assert shape.value_names == ("cube", "cylinder", "sphere", "capsule")


def test_chairs_have_31_azimuths_over_the_full_turn_and_2_elevations():
    factors = chairs_factors()
    assert factors.names == (
        "seat_width", "leg_length", "back_height", "back_tilt", "armrests", "azimuth", "elevation"
    )  # fmt: skip
    assert factors.num_classes == (4, 4, 3, 3, 2, 31, 2)
    assert math.prod(factors.num_classes) == 17_856
    azimuth = find_factor(factors, "azimuth").values
    assert azimuth[0] == 0 and azimuth.diff().tolist() == pytest.approx([360 / 31] * 30)
    assert azimuth[-1] + 360 / 31 == pytest.approx(360)
    assert find_factor(factors, "elevation").values.tolist() == [20.0, 30.0]
    assert find_factor(factors, "armrests").value_names == ("no arms", "arms")


@pytest.mark.parametrize(
    "preset, factor, value, text",
    [("objects_room", "shape", 3.0, "capsule"), ("chairs", "armrests", 1.0, "arms"),
     ("colored_sprites", "shape", 2.0, "heart"), ("objects_room", "scale", 0.75, "0.75")],
)  # fmt: skip
def test_figures_name_the_values_a_factor_names(preset, factor, value, text):
    assert make_dataset(preset, 16).value_text(factor, value) == text


def test_each_dataset_names_the_factors_of_its_geometry_plot():
    assert make_dataset("colored_sprites", 16).plane_factors == ("x", "y")
    assert make_dataset("objects_room", 16).plane_factors == ("orientation", "scale")
    assert make_dataset("chairs", 16).plane_factors == ("seat_width", "leg_length")


# -- the images ---------------------------------------------------------------------------


@pytest.mark.parametrize("preset", SCENES)
@pytest.mark.parametrize("size", [16, 32, 64])
def test_images_have_the_dataset_shape_and_range(preset, size):
    data = make_dataset(preset, size)
    images = data.render(sample(preset, 2, seed=size))
    assert images.shape == (2, data.channels, size, size)
    assert images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert images.std() > 0.05  # a picture, not a flat field


@pytest.mark.parametrize("preset", SCENES)
def test_every_step_of_every_factor_changes_the_image(preset):
    """Each factor moved from one grid value to the next, the others at their centre, changes
    some pixel by more than 0.05, even at 16 px."""
    data = make_dataset(preset, 16)
    for column, name in enumerate(data.factor_names):
        grid = data.factor(name).values
        values = data.centre_values(len(grid))
        values[:, column] = grid
        images = data.render(values)
        change = (images[1:] - images[:-1]).abs().flatten(1).max(dim=1).values
        assert change.min() > 0.05, (name, change)


@pytest.mark.parametrize("preset", SCENES)
def test_images_are_deterministic_and_a_batch_equals_images_one_by_one(preset):
    values = sample(preset, 6, seed=1)
    batch = FRESH[preset](16).render(values)
    assert torch.equal(batch, FRESH[preset](16).render(values))  # another renderer, cast afresh
    alone = FRESH[preset](16)
    assert torch.equal(batch, torch.cat([alone.render(v[None]) for v in values]))


def test_the_ray_caster_gives_the_same_batch_and_single_images():
    room, chairs = RoomRenderer(16), ChairRenderer(16)
    values = sample("objects_room", 5, seed=2)
    scale, shape, orientation = values[:, 3], values[:, 4].long(), values[:, 5]
    together = room.coverage(scale, shape, orientation)
    assert torch.equal(together, torch.cat([room.coverage(scale[i : i + 1], shape[i : i + 1], orientation[i : i + 1])
                                            for i in range(5)]))  # fmt: skip
    values = sample("chairs", 5, seed=2)
    assert torch.equal(chairs.cast(values), torch.cat([chairs.cast(v[None]) for v in values]))


def test_a_room_is_its_three_colours_times_what_the_ray_caster_sees():
    """The looked-up image equals floor, wall and object colour times their shaded coverage,
    cast afresh; a chair equals its cast in 8-bit steps."""
    values = sample("objects_room", 4, seed=3)
    coverage = shaded_coverage(values[:, 3], values[:, 4].long(), values[:, 5], 16, 4)
    hues = values[:, :3].reshape(-1).float()
    colours = hsv_to_rgb(hues, torch.full_like(hues, 0.8), torch.full_like(hues, 0.95)).reshape(4, 3, 3)
    expected = torch.einsum("nmc,nmhw->nchw", colours, coverage).clamp(0, 1)
    room = RoomRenderer(16)
    assert torch.allclose(room.render(values), expected, atol=1e-6)
    assert torch.equal(room.render(values), room.cast(values))
    chairs = ChairRenderer(16)
    values = sample("chairs", 4, seed=3)
    assert torch.equal(chairs.render(values), (chairs.cast(values) * 255).round() / 255)


@pytest.mark.parametrize("preset", SCENES)
def test_values_off_the_grid_take_the_nearest_grid_value(preset):
    data = make_dataset(preset, 16)
    values = sample(preset, 4, seed=4)
    nudged = values + 0.01 * torch.randn(values.shape, generator=make_generator(0, "nudge"), dtype=torch.float64)
    assert torch.equal(data.render(values), data.render(nudged))
    assert torch.equal(data.factors.labels(values), data.factors.labels(nudged))


def test_the_object_stands_in_the_middle_of_a_room_of_floor_and_walls():
    """At orientation 0 each shape is centred left to right; the floor fills the bottom row, the
    walls the top row; the largest object never reaches the top of the picture."""
    shape = torch.arange(4)
    coverage = shaded_coverage(torch.full((4,), 1.25), shape, torch.zeros(4), 32, 2)
    seen = coverage > 0
    columns = torch.arange(32, dtype=torch.float32) + 0.5
    weight = seen[:, OBJECT].float().sum(dim=1)  # [4, 32]: object samples per column
    centre = (weight * columns).sum(dim=1) / weight.sum(dim=1)
    assert centre.tolist() == pytest.approx([16.0] * 4, abs=0.75)
    assert seen[:, 0, -1].all() and not seen[:, 1, -1].any()  # bottom row: floor only
    assert seen[:, 1, 0].all() and not seen[:, 0, 0].any()  # top row: walls only
    tall = shaded_coverage(torch.full((15,), 1.25), torch.full((15,), 3), objects_room_factors().parts[5].values, 32, 2)
    assert not (tall[:, OBJECT, :2] > 0).any()


def test_the_largest_chair_fits_in_every_view():
    renderer = ChairRenderer(16, 2)
    rows = [[1.25, 0.8, 1.0, tilt, 1.0, azimuth, elevation] for tilt in BACK_TILTS for azimuth in AZIMUTHS
            for elevation in (20.0, 30.0)]  # fmt: skip
    images = renderer.cast(torch.tensor(rows, dtype=torch.float64))[:, 0]
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], dim=1)
    assert (border == 1.0).all()  # the white background all round
    assert (images < 0.9).flatten(1).any(dim=1).all()  # and a chair in every picture


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", SCENES)
def test_cuda_renders_what_the_cpu_renders(preset):
    values = sample(preset, 4, seed=5)
    on_gpu = FRESH[preset](16).render(values, "cuda")
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), FRESH[preset](16).render(values), atol=2 / 255)


# -- fresh ray-casting: adaptive and culled, against every ray -----------------------------

ADAPTIVE_MEAN_ERROR, ADAPTIVE_MAX_ERROR = 2e-5, 0.01
"""Bounds on the mean and largest absolute pixel error of ``objects_room`` cast adaptively
against every sample of every pixel (docs/performance.md gives what was measured)."""


@pytest.mark.parametrize("size, count", [(32, 64), (64, 12)])
def test_the_room_cast_adaptively_is_within_bounds_of_every_sample(size, count):
    values = sample("objects_room", count, seed=size)
    adaptive, every = RoomRenderer(size).cast(values), RoomRenderer(size, adaptive=False).cast(values)
    error = (adaptive - every).abs()
    assert error.mean() < ADAPTIVE_MEAN_ERROR and error.max() < ADAPTIVE_MAX_ERROR, (error.mean(), error.max())
    assert (error > 0).any()  # not the same code path by accident


def test_a_rectangle_holds_the_picture_of_its_points_and_everything_if_one_is_behind_the_eye():
    frame = torch.eye(3)[None]  # looking along +z, x to the right, y up
    points = torch.tensor([[0.0, 0.0, 2.0], [0.5, -0.5, 2.0]])[None, None]
    assert screen_rects(points, frame, 32, 90.0)[0, 0].tolist() == pytest.approx([16, 20, 16, 20])
    behind = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]])[None, None]
    assert screen_rects(behind, frame, 32, 90.0)[0, 0].tolist() == [-math.inf, math.inf, -math.inf, math.inf]


@pytest.mark.parametrize("grid, span", [(32, 1), (8, 4), (16, 4)])
def test_every_square_of_a_grid_is_within_a_rectangle_as_its_row_says(grid, span):
    """:func:`grid_within` (a test per row and per column of squares) answers as
    :meth:`Rows.within` does square by square, at the rectangle's edges and for one holding
    everything."""
    generator = torch.Generator().manual_seed(grid + span)
    corner = torch.rand(40, 1, 2, generator=generator) * grid * span * 1.2 - 4
    size = torch.rand(40, 1, 2, generator=generator) * grid * span / 2
    rects = torch.cat(
        [corner[..., :1], corner[..., :1] + size[..., :1], corner[..., 1:], corner[..., 1:] + size[..., 1:]], -1
    )
    # Edges just either side of the pixel grid, within the margin for rounding.
    rects[:5], rects[5:10] = rects[:5].round() + 5e-4, rects[5:10].round() - 5e-4
    rects[10] = EVERYWHERE
    squares = raycast._every_pixel(len(rects), grid, "cpu")._replace(span=span)
    expected = squares.within(rects)[:, 0]
    assert 0.05 < expected.float().mean() < 0.95
    assert torch.equal(grid_within(rects, grid, span), expected)


def test_a_ray_enters_a_box_by_a_face_turned_towards_it_and_on_that_face():
    """The face :func:`box_entry` names (which shades a chair) is the one the hit lies on."""
    generator = torch.Generator().manual_seed(3)
    ahead = torch.randn(1, 4000, 3, generator=generator) * 0.5 + torch.tensor([0.0, 0.0, 1.0])
    direction = torch.nn.functional.normalize(ahead, dim=-1)
    low = torch.tensor([[[-0.4, -0.3, 0.8]]]) + 0.5 * torch.randn(1, 1, 3, generator=generator)
    high = low + torch.tensor([[[0.9, 0.6, 1.1]]])
    t, face = box_entry(reciprocal(direction), low, high)
    hit = t < math.inf
    assert 200 < hit.sum() < 3800  # rays that hit and rays that miss
    normal, point = FACE_NORMALS[face[hit]], (t[..., None] * direction)[hit]
    assert (torch.linalg.vecdot(normal, direction[hit]) < 0).all()
    # On the face: the hit's coordinate along the face's axis is the box's low or high side.
    side = torch.where(normal.sum(-1, keepdim=True) > 0, high[0], low[0]).expand_as(point)
    on_axis = normal.abs().bool()
    assert torch.allclose(point[on_axis], side[on_axis], atol=1e-5)


def _rays_at_an_upright_object(seed: int, rows: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Light]:
    """Rows of 64 rays from above and in front of an object on the y axis, which some miss; the
    object's radius ``[rows]``; a light from above."""
    generator = torch.Generator().manual_seed(seed)
    origin = torch.randn(rows, 1, 3, generator=generator) * 0.3 + torch.tensor([0.5, 2.5, 4.5])
    aim = torch.randn(rows, 64, 3, generator=generator) * 0.4 + torch.tensor([0.0, 0.6, 0.0]) - origin
    radius = 0.3 + 0.2 * torch.rand(rows, generator=generator)
    light = Light(torch.nn.functional.normalize(torch.tensor([0.35, 1.2, -0.9]), dim=0), 0.3)
    return origin, torch.nn.functional.normalize(aim, dim=-1), radius, light


def test_a_capsule_is_its_side_and_end_spheres_nearest_first():
    """:func:`capsule_lit` tests one end sphere per ray; it gives, bit for bit, what testing the
    side and both spheres and keeping the nearest gives."""
    origin, direction, radius, light = _rays_at_an_upright_object(4, 500)
    low, high = radius, radius * 3
    zero = torch.zeros_like(radius)
    parts = nearest_lit(
        tube_lit(origin, direction, radius, low, high, light),
        sphere_lit(origin, direction, torch.stack([zero, low, zero], dim=1), radius, light),
        sphere_lit(origin, direction, torch.stack([zero, high, zero], dim=1), radius, light),
    )
    whole = capsule_lit(origin, direction, radius, low, high, light)
    hit = parts.t < math.inf
    assert 0.1 < hit.float().mean() < 0.9
    assert torch.equal(whole.t, parts.t) and torch.equal(
        capsule_distance(origin, direction, radius, low, high), parts.t
    )
    assert torch.equal(whole.brightness[hit], parts.brightness[hit])
    assert parts.brightness[hit].unique().numel() > 100  # lit from many angles


def _normal_at(primitive: str, point: torch.Tensor, radius: torch.Tensor, low: torch.Tensor, high: torch.Tensor):
    """The outward unit normal at ``point`` ``[N, P, 3]`` on the surface of each primitive of the
    test below (``radius``, ``low`` and ``high`` ``[N]``)."""
    r, low, high = radius[:, None], low[:, None], high[:, None]
    x, y, z = point.unbind(-1)
    side = torch.stack([x / r, torch.zeros_like(y), z / r], dim=-1)
    if primitive == "sphere":
        return torch.stack([x / r, (y - low) / r, z / r], dim=-1)
    if primitive == "tube":
        return side
    if primitive == "disc":
        return torch.tensor([0.0, 1.0, 0.0]).expand_as(point)
    if primitive == "capsule":
        end = torch.where(y < low, low, high)
        cap = torch.stack([x / r, (y - end) / r, z / r], dim=-1)
        normal = torch.where(((y >= low) & (y <= high))[..., None], side, cap)
        seam = ((y - low).abs() < 1e-3) | ((y - high).abs() < 1e-3)  # side or sphere: no one normal
        return torch.where(seam[..., None], math.nan, normal)
    box_low, box_high = _box(radius, high[:, 0])
    return ((point - box_high).abs() < 1e-4).float() - ((point - box_low).abs() < 1e-4).float()


def _box(radius: torch.Tensor, height: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Corners ``[N, 1, 3]`` of boxes ``2 * radius`` wide and deep, standing on y = 0."""
    zero = torch.zeros_like(radius)
    return torch.stack([-radius, zero, -radius], 1)[:, None], torch.stack([radius, height, radius], 1)[:, None]


@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("primitive", ["box", "sphere", "tube", "disc", "capsule"])
def test_a_lit_hit_is_lamberts_law_at_the_normal_where_the_ray_meets_the_surface(primitive, per_row):
    """Each primitive's brightness (computed from the normal's parts, or a box's once per face)
    is Lambert's law at the surface's outward normal, found here from the hit point alone, under
    one light or a light per row of rays."""
    origin, direction, radius, light = _rays_at_an_upright_object(5, 300)
    if per_row:  # each row's light tilted its own way
        tilt = 0.3 * torch.randn(len(radius), 3, generator=torch.Generator().manual_seed(6))
        light = light._replace(towards=torch.nn.functional.normalize(light.towards + tilt, dim=-1))
    low, high = radius, radius * 3
    zero = torch.zeros_like(radius)
    box_low, box_high = _box(radius, high)
    hit = {
        "box": lambda: raycast.box_lit(direction, box_low - origin, box_high - origin, light),
        "sphere": lambda: sphere_lit(origin, direction, torch.stack([zero, low, zero], 1), radius, light),
        "tube": lambda: tube_lit(origin, direction, radius, low, high, light),
        "disc": lambda: raycast.disc_lit(origin, direction, radius, high, light),
        "capsule": lambda: capsule_lit(origin, direction, radius, low, high, light),
    }[primitive]()
    met = hit.t < math.inf
    assert 200 < met.sum() < 0.95 * met.numel()
    normal = _normal_at(primitive, origin + hit.t.clamp(max=1e3)[..., None] * direction, radius, low, high)
    # Within 1e-4 of a box's edge (or 1e-3 of a capsule's seam) a point has no one normal.
    clear = met & ((normal.norm(dim=-1) - 1).abs() < 1e-4)
    assert clear.sum() > 0.99 * met.sum()
    expected = lambert(normal, light.towards, light.ambient)
    assert torch.allclose(hit.brightness[clear], expected[clear], atol=1e-4)
    # Lit from many sides (a box shows three faces here, a disc one).
    assert hit.brightness[clear].unique().numel() >= {"box": 3, "disc": 1}.get(primitive, 100)


@pytest.mark.parametrize("shape", range(4))
def test_the_objects_distances_alone_tell_the_rays_their_hits_reach(shape):
    """A shadow ray asks only whether the object blocks it: :func:`object_blocks`, from the
    distances alone, answers as the full hits do, ray by ray."""
    generator = torch.Generator().manual_seed(shape)
    origin = torch.randn(64, 1, 3, generator=generator) * 0.3 + torch.tensor([0.0, 0.5, 2.5])
    aim = torch.randn(64, 200, 3, generator=generator) * 0.4 + torch.tensor([0.0, 0.5, 0.0]) - origin
    direction = torch.nn.functional.normalize(aim, dim=-1)
    shapes, scales = torch.full((64,), shape), 0.75 + 0.5 * torch.rand(64, generator=generator)
    near = torch.rand(64, generator=generator) < 0.9
    hits = object_lit(origin, direction, shapes, scales, near, torch.tensor([0.0, 1.0, 0.0]))[0] < math.inf
    assert 0.1 < hits.float().mean() < 0.9 and not hits[~near].any()
    assert torch.equal(object_blocks(origin, direction, shapes, scales, near), hits)


@pytest.mark.parametrize("size", [32, 64])
def test_centres_cast_a_square_at_a_time_are_the_centres_cast_one_by_one(size, monkeypatch):
    values = sample("objects_room", 16, seed=size + 2)
    together = RoomRenderer(size).cast(values)
    monkeypatch.setattr(raycast, "CENTRE_SQUARE", 1)
    assert torch.equal(together, RoomRenderer(size).cast(values))


@pytest.mark.parametrize(
    "preset, renderer, module, cache",
    [
        ("objects_room", RoomRenderer, room, room_rays),
        ("objects_room", lambda size: RoomRenderer(size, adaptive=False), room, room_rays),
        ("chairs", ChairRenderer, chairs, chair_rays),
    ],
)
def test_rays_looked_up_per_view_are_the_rays_cast_anew(preset, renderer, module, cache, monkeypatch):
    """A view on the factor grid takes its rays (and the room's) from a cache built once; they
    are, bit for bit, what casting them anew gives."""
    values = sample(preset, 16, seed=5)
    before = cache.cache_info()
    cached = renderer(32).cast(values)
    after = cache.cache_info()
    assert after.hits + after.misses > before.hits + before.misses  # the cache was used
    monkeypatch.setattr(module, "CACHED_RAYS", 0)
    assert torch.equal(cached, renderer(32).cast(values))
    assert cache.cache_info().hits + cache.cache_info().misses == after.hits + after.misses  # and now not


def test_a_view_is_found_on_its_grid_exactly_or_not_at_all():
    grid = torch.tensor([[0.0, 20.0], [0.0, 30.0], [1 / 3, 20.0]], dtype=torch.float64)
    assert view_slots(torch.tensor([[1 / 3, 20.0], [0.0, 30.0]], dtype=torch.float64), grid).tolist() == [2, 1]
    assert view_slots(torch.tensor([[1 / 3, 20.0]]), grid) is None  # 1/3 rounded to float32 is off the grid
    assert view_slots(torch.tensor([[0.0, 25.0]], dtype=torch.float64), grid) is None


def every_rectangle(rows: Rows, rects: torch.Tensor) -> torch.Tensor:
    return torch.ones(len(rows.image), rects.shape[1], dtype=torch.bool)


def every_square(rects: torch.Tensor, grid: int, span: int = 1) -> torch.Tensor:
    return torch.ones(len(rects) * grid * grid, dtype=torch.bool)


@pytest.mark.parametrize("preset, size, count", [("objects_room", 32, 16), ("chairs", 32, 16), ("chairs", 64, 8)])
def test_culling_by_the_rectangles_of_the_parts_drops_no_hit(preset, size, count, monkeypatch):
    """Every sample cast with each part tested only where its picture's rectangle reaches (and a
    chair's pixels cast only within its rectangle) equals every part tested on every ray of every
    pixel, bit for bit."""
    values = sample(preset, count, seed=size + 1)
    renderer = RoomRenderer(size, adaptive=False) if preset == "objects_room" else ChairRenderer(size)
    culled = renderer.cast(values)
    monkeypatch.setattr(Rows, "within", every_rectangle)
    monkeypatch.setattr(raycast, "grid_within", every_square)
    assert torch.equal(culled, renderer.cast(values))


def test_an_adaptive_shader_with_more_than_256_parts_is_refused():
    """Parts are compared as bytes: a shader numbering one above 255 is an error, not a wrong
    picture."""

    def shade(rows: Rows, table: torch.Tensor) -> raycast.Seen:
        part = torch.full((len(rows.image), table.shape[1]), 300)
        return raycast.Seen(torch.zeros(len(rows.image), table.shape[1], 1), part)

    with pytest.raises(ValueError, match="0 to 255"):
        raycast.shade_pixels(shade, 2, 8, 2, 40.0, adaptive=True)


def test_the_room_renderer_has_a_new_version_so_cached_probes_are_trained_anew():
    assert (
        data_identity(DataConfig(preset="objects_room"))
        == f"preset objects_room supersample 4 renderer {RENDERER_VERSION}"
    )
    assert RENDERER_VERSION > 1
    for preset in ("chairs", "dsprites"):  # unchanged images keep their probes
        assert data_identity(DataConfig(preset=preset)) == f"preset {preset} supersample 4"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("preset", SCENES)
def test_cuda_ray_casts_fresh_images_as_the_cpu_does(preset):
    values = sample(preset, 8, seed=6)
    on_gpu = FRESH[preset](32).cast(values, "cuda")
    assert on_gpu.device.type == "cuda"
    assert (on_gpu.cpu() - FRESH[preset](32).cast(values)).abs().mean() < 1e-3


# -- the memo -----------------------------------------------------------------------------


def test_grid_index_and_labels_are_inverse_mixed_radix():
    sizes = [3, 4, 5]
    labels = torch.tensor([[0, 0, 0], [0, 0, 4], [0, 1, 0], [2, 3, 4]])
    assert grid_index(labels, sizes).tolist() == [0, 4, 5, 59]
    assert torch.equal(grid_labels(torch.arange(60), sizes)[[0, 4, 5, 59]], labels)


def test_memo_computes_each_key_once():
    asked: list[list[int]] = []

    def compute(keys: torch.Tensor, device: torch.device) -> torch.Tensor:
        asked.append(keys.tolist())
        return keys[:, None].float() * 10

    memo = Memo(8, compute)
    assert memo(torch.tensor([3, 1, 3]), "cpu")[:, 0].tolist() == [30, 10, 30]
    assert memo(torch.tensor([1, 5]), "cpu")[:, 0].tolist() == [10, 50]
    assert asked == [[1, 3], [5]] and memo.filled() == 3


def test_bench_times_a_scene_beside_the_default_model_on_sprites_with_as_many_channels():
    for preset in SCENES:
        case = SceneCase(preset, 16)
        config = case.training.config
        assert config.data.image_size == 16 and config.model == load_config("default").model
        assert make_dataset(config.data.preset, 16).channels == case.data.channels
        assert config.data.preset in ("colored_sprites", "dsprites")


# -- the pipeline -------------------------------------------------------------------------


@pytest.mark.parametrize("preset", SCENES)
def test_train_draw_and_evaluate_a_scene_through_the_cli(preset, tmp_path, run_cli, tiny_overrides):
    run = tmp_path / preset
    args = [*tiny_overrides, f"data.preset={preset}", "data.image_size=16", "train.mig_samples=100"]
    code, out, err = run_cli("train", "--set", *args, "--out", run, "--quiet")
    assert code == 0, err
    assert f"{preset} 16px" in out
    for file in FIGURE_FILES.values():
        assert (run / file).stat().st_size > 1000, file
    with Image.open(run / "data.png") as picture:
        assert picture.convert("L").getextrema()[1] - picture.convert("L").getextrema()[0] > 50
    code, _, err = run_cli("visualize", run, "--only", "geometry", "--factors", "azimuth,elevation"
                           if preset == "chairs" else "object_hue,shape")  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli("evaluate", run, "--metrics", "mig,sap", "--num-train", "100", "--num-test", "50")
    assert code == 0, err
    scores = json.loads((run / "metrics.json").read_text())["scores"]
    assert {"discrete_mig", "sap_score"} <= set(scores)
    code, _, err = run_cli("data", preset, "--out", tmp_path / "data.png", "--image-size", "16", "--count", "4")
    assert code == 0 and (tmp_path / "data.png").stat().st_size > 1000, err
