"""The field's dataset files and a user's own images (``data.path``).

Every file is written here in its published layout (keys, dtypes, image shapes, factor order,
rows in grid order) with images drawn by our own renderers. The published grids are large
(737,280 dSprites images, 480,000 for 3D Shapes), so each test file holds a smaller grid with
the same factors: dSprites and 3D Shapes carry their labels and are read by them, whatever the
grid's size. MPI3D carries no labels and is known by its number of images: its tests add a
small grid to ``MPI3D_GRIDS`` (the published one needs 12.7 GB).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import snapshot
from sbvae.cli import DATA_FORMATS
from sbvae.config import DataConfig, load_config
from sbvae.data import FORMATS, GroundTruthDataset, build_dataset, make_generator, open_data, require_ground_truth
from sbvae.data import files as data_files
from sbvae.data.chairs import ChairRenderer
from sbvae.data.factors import TWO_PI, grid
from sbvae.data.room import RoomRenderer
from sbvae.data.sprites import SpriteRenderer
from sbvae.errors import ConfigError, UserError

# -- writing files in the published layouts ------------------------------------------------

# colour, shape, scale, orientation, x, y (published: 1, 3, 6, 40, 32, 32)
DSPRITES_SIZES = (1, 3, 2, 3, 4, 4)
# floor, wall and object hue, scale, shape, orientation (published: 10, 10, 10, 8, 4, 15)
SHAPES3D_SIZES = (2, 2, 2, 2, 4, 2)
MPI3D_SMALL = [
    ("object_color", 2, ("white", "green")),
    ("object_shape", 1, None),
    ("object_size", 1, None),
    ("camera_height", 1, None),
    ("background_color", 1, None),
    ("horizontal_axis", 4, None),
    ("vertical_axis", 3, None),
]


def product(sizes) -> np.ndarray:
    """Every combination of class indices, the last factor fastest: ``[prod(sizes), K]``."""
    return np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)


def write_dsprites(path: Path, compressed: bool = True) -> np.ndarray:
    """A dSprites ``.npz``: imgs uint8 0/1 [N, 64, 64], latents_classes int64 and latents_values
    float64 [N, 6] (colour, shape, scale, orientation, x, y), drawn by our sprite renderer.
    Returns the images."""
    classes = product(DSPRITES_SIZES)
    grids = [[1.0], [1.0, 2.0, 3.0], grid(0.5, 1.0, 2), grid(0.0, TWO_PI, 3), grid(0.0, 1.0, 4), grid(0.0, 1.0, 4)]
    values = np.stack([np.asarray(g)[classes[:, k]] for k, g in enumerate(grids)], axis=1)
    columns = {
        name: torch.from_numpy(values[:, k + 1]) for k, name in enumerate(("shape", "scale", "orientation", "x", "y"))
    }
    columns["shape"] = columns["shape"] - 1  # the renderer's shape is 0-based, dSprites' 1-based
    imgs = (SpriteRenderer(64, 1, 2).render(columns)[:, 0] > 0.5).numpy().astype(np.uint8)
    save = np.savez_compressed if compressed else np.savez
    metadata = np.array({"description": "a test file in the dSprites layout"}, dtype=object)  # pickled, as published
    save(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata)
    return imgs


def write_shapes3d(path: Path) -> np.ndarray:
    """A 3D Shapes ``.h5``: images uint8 [N, 64, 64, 3] and labels float64 [N, 6], drawn by our
    objects_room renderer (chunked and compressed, as h5py stores a large dataset)."""
    renderer = RoomRenderer(64, 1)
    classes = product(SHAPES3D_SIZES)
    grids = [
        [0.0, 0.5],
        [0.2, 0.7],
        [0.1, 0.6],
        [0.75, 1.25],
        [0.0, 1.0, 2.0, 3.0],
        [-30.0, 30.0],
    ]
    labels = np.stack([np.asarray(g)[classes[:, k]] for k, g in enumerate(grids)], axis=1)
    images = (renderer.render(torch.from_numpy(labels)) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(8, 64, 64, 3), compression="gzip")
        f.create_dataset("labels", data=labels)
    return images


def write_mpi3d(path: Path) -> np.ndarray:
    """An MPI3D ``.npz`` (uncompressed, as ``np.savez`` writes it): images uint8 [N, 64, 64, 3]
    on the grid ``MPI3D_SMALL``, a coloured sprite moved by the two axes."""
    classes = product([size for _, size, _ in MPI3D_SMALL])
    n = len(classes)
    columns = {
        "shape": torch.zeros(n, dtype=torch.float64),
        "scale": torch.full((n,), 0.8, dtype=torch.float64),
        "orientation": torch.zeros(n, dtype=torch.float64),
        "x": torch.from_numpy(classes[:, 5] / 3),
        "y": torch.from_numpy(classes[:, 6] / 2),
        "hue": torch.from_numpy(classes[:, 0] * 0.33),
        "saturation": torch.ones(n, dtype=torch.float64),
        "value": torch.ones(n, dtype=torch.float64),
    }
    images = (SpriteRenderer(64, 3, 2).render(columns) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    np.savez(path, images=images)
    return images


CHAIR_MODELS, CHAIR_AZIMUTHS, CHAIR_ELEVATIONS = (0.8, 1.25), (0, 116, 232), (20, 30)


def write_chairs(root: Path, size: int = 96) -> None:
    """The 3D Chairs layout: ``root/MODEL/renders/image_NNN_pPPP_tTTT_rRRR.png``, drawn by our
    chair renderer (grey as RGB PNGs, ``size`` pixels: the published ones are 600)."""
    renderer = ChairRenderer(size, 1)
    for m, width in enumerate(CHAIR_MODELS):
        folder = root / f"model{m}" / "renders"
        folder.mkdir(parents=True)
        index = 0
        for elevation in CHAIR_ELEVATIONS:
            for azimuth in CHAIR_AZIMUTHS:
                values = torch.tensor([[width, 0.5, 0.75, 12.0, 0.0, float(azimuth), float(elevation)]])
                grey = (renderer.cast(values)[0, 0] * 255).round().byte().numpy()
                image = Image.fromarray(grey).convert("RGB")
                image.save(folder / f"image_{index:03d}_p{elevation:03d}_t{azimuth:03d}_r096.png")
                index += 1


def write_images(folder: Path) -> list[Path]:
    """PNG and JPEG files of several sizes and modes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h, mode) in enumerate([(80, 60, "RGB"), (40, 40, "L"), (100, 130, "RGB"), (24, 24, "RGBA")]):
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
        path = folder / f"img{i}.{'jpg' if i == 2 else 'png'}"
        image.save(path)
        paths.append(path)
    return paths


@pytest.fixture
def mpi3d_small(monkeypatch):
    monkeypatch.setitem(data_files.MPI3D_GRIDS, math.prod(s for _, s, _ in MPI3D_SMALL), MPI3D_SMALL)


def all_values(data: GroundTruthDataset) -> torch.Tensor:
    """Every grid point's factor values, in the file's row order."""
    parts = [data.factor(name).values for name in data.factor_names]
    return torch.cartesian_prod(*parts) if len(parts) > 1 else parts[0][:, None]


def as_nchw(images: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(images)
    return tensor[:, None] if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2)


# -- each loader: factors, and factor -> index -> image ------------------------------------


@pytest.mark.parametrize("compressed", [True, False])
def test_dsprites_file_round_trip(tmp_path, compressed):
    imgs = write_dsprites(tmp_path / "dsprites.npz", compressed)
    data = open_data(str(tmp_path / "dsprites.npz"), 64, cache=str(tmp_path / "cache"))
    assert data.factor_names == ("shape", "scale", "orientation", "x", "y")  # the one-valued colour dropped
    assert data.factors.num_classes == DSPRITES_SIZES[1:]
    assert data.factor("shape").value_names == ("square", "ellipse", "heart")
    assert data.plane_factors == ("x", "y") and data.channels == 1
    values = all_values(data)
    assert torch.equal(data.render(values), as_nchw(imgs).float())  # 0/1 pixels read as they are
    _, labels = data.labels(values)
    assert torch.equal(labels, torch.from_numpy(product(DSPRITES_SIZES)[:, 1:]))
    cached = list((tmp_path / "cache").glob("*.npy")) if compressed else []
    assert len(cached) == int(compressed)  # the compressed file is copied once, uncompressed
    assert not list((tmp_path / "cache").glob(".*"))  # no partial copy left


def test_shapes3d_file_round_trip(tmp_path):
    images = write_shapes3d(tmp_path / "3dshapes.h5")
    data = open_data(str(tmp_path / "3dshapes.h5"), 64)
    assert data.factor_names == data_files.SHAPES3D_COLUMNS
    assert data.factors.num_classes == SHAPES3D_SIZES
    assert data.factor("shape").value_names == ("cube", "cylinder", "sphere", "capsule")
    assert data.plane_factors == ("orientation", "scale") and data.channels == 3
    values = all_values(data)
    order = torch.randperm(len(values), generator=torch.Generator().manual_seed(0))  # any order, repeats
    order = torch.cat([order, order[:5]])
    assert torch.equal(data.render(values[order]), as_nchw(images)[order].float() / 255)


def test_mpi3d_file_round_trip(tmp_path, mpi3d_small):
    images = write_mpi3d(tmp_path / "mpi3d_toy.npz")
    data = open_data(str(tmp_path / "mpi3d_toy.npz"), 64, cache=str(tmp_path / "cache"))
    assert data.factor_names == ("object_color", "horizontal_axis", "vertical_axis")  # one-valued ones dropped
    assert data.plane_factors == ("horizontal_axis", "vertical_axis")
    assert torch.equal(data.render(all_values(data)), as_nchw(images).float() / 255)
    assert not (tmp_path / "cache").exists()  # an uncompressed file is read in place


def test_the_published_mpi3d_grid():
    grid_ = data_files.MPI3D_GRIDS[1_036_800]
    assert [size for _, size, _ in grid_] == [6, 6, 2, 3, 3, 40, 40]
    assert math.prod(size for _, size, _ in grid_) == 1_036_800


def test_chairs_folder_round_trip(tmp_path):
    write_chairs(tmp_path / "rendered_chairs")
    data = open_data(str(tmp_path / "rendered_chairs"), 32)
    assert data.factor_names == ("model", "azimuth", "elevation")
    assert data.factors.num_classes == (2, 3, 2)
    assert data.factor("model").value_names == ("model0", "model1")
    values = torch.tensor([[1.0, 116.0, 30.0], [0.0, 0.0, 20.0]], dtype=torch.float64)
    name = "model1/renders/image_004_p030_t116_r096.png", "model0/renders/image_000_p020_t000_r096.png"
    for row, file in zip(data.render(values), name):
        with Image.open(tmp_path / "rendered_chairs" / file) as image:  # 96 px, averaged to 32 (3 x 3 boxes)
            expected = image.convert("RGB").resize((32, 32), Image.Resampling.BOX)
        assert torch.equal((row * 255).round().byte(), torch.from_numpy(np.array(expected)).permute(2, 0, 1))
    assert not torch.equal(*data.render(values))


def test_image_folder_and_glob(tmp_path):
    paths = write_images(tmp_path / "photos")
    (tmp_path / "photos" / ".hidden").write_text("skipped")
    data = open_data(str(tmp_path / "photos"), 16)
    assert not data.has_ground_truth and data.channels == 3 and data.image_size == 16
    images = data.images(torch.arange(4))
    assert images.shape == (4, 3, 16, 16) and images.min() >= 0 and images.max() <= 1
    with Image.open(paths[0]) as image:  # 80 x 60: the middle 60 x 60, shrunk to 16
        expected = image.resize((16, 16), Image.Resampling.BOX, box=(10, 0, 70, 60))
    assert torch.equal((images[0] * 255).round().byte(), torch.from_numpy(np.array(expected)).permute(2, 0, 1))
    assert data.sample(5, make_generator(0, "x")).labels.shape == (5, 0)
    pngs = open_data(str(tmp_path / "photos" / "*.png"), 16)
    assert len(pngs.files) == 3  # type: ignore[attr-defined]
    with pytest.raises(UserError, match="ground-truth factors"):
        require_ground_truth(data, "the disentanglement metrics")


def test_images_are_resized_by_area_and_by_repeating(tmp_path):
    imgs = write_dsprites(tmp_path / "d.npz", compressed=False)
    small = open_data(str(tmp_path / "d.npz"), 32)
    large = open_data(str(tmp_path / "d.npz"), 128)
    values = all_values(small)[:7]
    full = as_nchw(imgs[:7]).float()
    assert torch.allclose(small.render(values), torch.nn.functional.avg_pool2d(full, 2))
    assert torch.equal(large.render(values), full.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_format_is_recognised_from_the_file(tmp_path, mpi3d_small):
    write_dsprites(tmp_path / "a.npz")
    write_shapes3d(tmp_path / "b.h5")
    write_mpi3d(tmp_path / "c.npz")
    write_images(tmp_path / "photos")
    write_chairs(tmp_path / "chairs", size=16)
    found = [data_files.detect_format(str(tmp_path / n)) for n in ("a.npz", "b.h5", "c.npz", "photos", "chairs")]
    assert found == ["dsprites_npz", "shapes3d_h5", "mpi3d_npz", "image_folder", "chairs_folder"]
    assert data_files.detect_format(str(tmp_path / "photos" / "*.png")) == "image_folder"
    assert tuple(FORMATS) == DATA_FORMATS  # the CLI's choices


def test_config_keys(tmp_path):
    config = load_config("default", [f"data.path={tmp_path}/x.npz", "data.format=dsprites_npz"])
    assert config.data.path == str(tmp_path / "x.npz") and config.data.format == "dsprites_npz"
    relative = DataConfig(path="some/file.h5")
    assert Path(relative.path).is_absolute()  # kept absolute: later stages run from anywhere
    for bad in (["data.format=dsprites_npz"], ["data.path="], ["data.path=a.npz", "data.format=csv"]):
        with pytest.raises(ConfigError):
            load_config("default", bad)


def test_build_dataset_without_a_path_is_the_preset():
    data = build_dataset(load_config("default", ["data.image_size=16"]).data)
    assert data.name == load_config("default").data.preset


# -- memory --------------------------------------------------------------------------------

SAMPLER = """
import sys, torch
from sbvae.data import open_data, make_generator

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

torch.set_num_threads(1)
data = open_data(sys.argv[1], 64)
rng = make_generator(0, "train")
data.sample(64, rng)
before = rss()
for _ in range(300):
    data.sample(64, rng)
print(rss() - before)
"""


@pytest.mark.parametrize("kind", ["h5", "npz"])
def test_sampling_a_large_file_keeps_memory_flat(tmp_path, kind):
    """300 batches of 64 from a 1.2 GB file (3D Shapes' layout with 96,000 images, chunked
    HDF5; or an uncompressed npz read in place) in a fresh process: resident memory grows by
    less than 200 MB."""
    n = 10 * 10 * 10 * 8 * 4 * 3
    block = np.random.default_rng(0).integers(0, 256, (1000, 64, 64, 3), dtype=np.uint8)
    path = tmp_path / f"big.{kind}"
    if kind == "h5":
        with h5py.File(path, "w") as f:
            images = f.create_dataset("images", (n, 64, 64, 3), np.uint8, chunks=(16, 64, 64, 3))
            for start in range(0, n, len(block)):
                images[start : start + len(block)] = block
            f.create_dataset("labels", data=product((10, 10, 10, 8, 4, 3)).astype(np.float64))
    else:  # an MPI3D-like npz of one stored member, written in blocks
        header = {"descr": "|u1", "fortran_order": False, "shape": (n, 64, 64, 3)}
        with zipfile.ZipFile(path, "w") as archive, archive.open("images.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, header)
            for _ in range(0, n, len(block)):
                member.write(block.tobytes())
    assert path.stat().st_size > 1_000_000_000
    grid_ = [(name, size, None) for name, size in zip("abcdef", (10, 10, 10, 8, 4, 3))]
    known = f"import sbvae.data.files as f; f.MPI3D_GRIDS[{n}] = {grid_!r}\n" if kind == "npz" else ""
    script = known + textwrap.dedent(SAMPLER)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    growth = int(result.stdout.strip().splitlines()[-1])
    print(f"{kind}: resident memory grew by {growth / 2**20:.1f} MB over 300 batches of 64")
    assert growth < 200 * 2**20


# -- the command line ------------------------------------------------------------------------


def test_cli_data_draws_a_file_and_a_folder(tmp_path, run_cli):
    write_dsprites(tmp_path / "d.npz", compressed=False)
    write_images(tmp_path / "photos")
    for source in ("d.npz", "photos"):
        code, _out, err = run_cli("data", tmp_path / source, "--out", tmp_path / f"{source}.png", "--count", "4")
        assert code == 0, err
        assert (tmp_path / f"{source}.png").is_file()


@pytest.mark.parametrize("kind", ["dsprites", "shapes3d", "mpi3d", "chairs", "images"])
def test_train_a_few_steps_on_each_format(kind, tmp_path, run_cli, tiny_overrides, mpi3d_small):
    source = {
        "dsprites": lambda: write_dsprites(tmp_path / "d.npz") is not None and tmp_path / "d.npz",
        "shapes3d": lambda: write_shapes3d(tmp_path / "s.h5") is not None and tmp_path / "s.h5",
        "mpi3d": lambda: write_mpi3d(tmp_path / "m.npz") is not None and tmp_path / "m.npz",
        "chairs": lambda: write_chairs(tmp_path / "chairs", size=32) or tmp_path / "chairs",
        "images": lambda: write_images(tmp_path / "photos") and tmp_path / "photos",
    }[kind]()
    run = tmp_path / "run"
    overrides = [*tiny_overrides, f"data.path={source}", f"data.cache={tmp_path / 'cache'}", "train.mig_samples=60"]
    code, _out, err = run_cli("train", "--set", *overrides, "--out", run, "--quiet")
    assert code == 0, err
    scores = json.loads((run / "metrics.json").read_text())
    assert (run / "reconstructions.png").is_file() and (run / "report.html").is_file()
    if kind == "images":
        assert scores["scores"] == {} and not (run / "geometry.png").exists()
        page = (run / "report.html").read_text()
        assert "no ground-truth factors" in page and "Not drawn yet" not in page
        code, _, err = run_cli("evaluate", run, "--num-train", "50", "--num-test", "20")
        assert code == 2 and "ground-truth factors" in err and len(err.strip().splitlines()) == 1
        code, _, err = run_cli("visualize", run, "--only", "geometry")
        assert code == 2 and "ground-truth factors" in err and len(err.strip().splitlines()) == 1
    else:
        assert "discrete_mig" in scores["scores"] and (run / "geometry.png").is_file()


# -- bad input -------------------------------------------------------------------------------


def _bad_inputs(folder: Path) -> dict[str, tuple[list[str], str]]:
    """Name -> (extra overrides, words the error names), each written into ``folder``."""
    write_dsprites(folder / "good.npz")
    with np.load(folder / "good.npz") as good:
        order = np.random.default_rng(0).permutation(len(good["imgs"]))
        np.savez(folder / "shuffled.npz", **{k: good[k][order] for k in ("imgs", "latents_classes", "latents_values")})
    (folder / "notes.txt").write_text("not data")
    np.savez(folder / "keys.npz", pictures=np.zeros((4, 64, 64), np.uint8))
    np.savez(
        folder / "shape.npz",
        imgs=np.zeros((4, 64, 64), np.float32),
        latents_classes=np.zeros((4, 6), np.int64),
        latents_values=np.zeros((4, 6)),
    )
    np.savez(folder / "grid.npz", imgs=np.zeros((4, 64, 64), np.uint8), latents_classes=np.zeros((4, 6), np.int64),
             latents_values=np.zeros((4, 6)))  # fmt: skip
    np.savez(folder / "square.npz", images=np.zeros((4, 64, 32, 3), np.uint8))
    with h5py.File(folder / "labels.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((4, 64, 64, 3), np.uint8))
        f.create_dataset("labels", data=np.zeros((4, 5)))
    write_chairs(folder / "chairs", size=16)
    (folder / "chairs" / "model1" / "renders" / "image_004_p030_t116_r096.png").unlink()
    whole = (folder / "good.npz").read_bytes()
    (folder / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    corrupt = bytearray(whole)  # the compressed images damaged in the middle: found while copying them
    corrupt[len(whole) // 3 : len(whole) // 3 + 64] = bytes(64)
    (folder / "corrupt.npz").write_bytes(bytes(corrupt))
    write_shapes3d(folder / "good.h5")
    h5 = (folder / "good.h5").read_bytes()
    (folder / "truncated.h5").write_bytes(h5[: len(h5) // 2])
    (folder / "empty").mkdir()
    (folder / "empty" / "notes.txt").write_text("no images here")
    write_images(folder / "fake")
    (folder / "fake" / "img9.png").write_text("a text file named .png")
    return {
        "missing": ([f"data.path={folder / 'nothing.npz'}"], "does not exist"),
        "another format": ([f"data.path={folder / 'notes.txt'}"], "not a dataset"),
        "wrong keys": ([f"data.path={folder / 'keys.npz'}"], "pictures"),
        "wrong keys, format given": ([f"data.path={folder / 'keys.npz'}", "data.format=dsprites_npz"], "no imgs"),
        "wrong dtype": ([f"data.path={folder / 'shape.npz'}"], "float32"),
        "not a grid": ([f"data.path={folder / 'grid.npz'}"], "not a full factor grid"),
        "rows out of grid order": ([f"data.path={folder / 'shuffled.npz'}"], "not in grid order"),
        "h5 as npz": ([f"data.path={folder / 'good.h5'}", "data.format=mpi3d_npz"], "not a readable .npz"),
        "not square": ([f"data.path={folder / 'square.npz'}"], "[4, 64, 32, 3]"),
        "labels shape": ([f"data.path={folder / 'labels.h5'}"], "labels has shape [4, 5]"),
        "chairs lacking a view": ([f"data.path={folder / 'chairs'}"], "model1 lacks 1 of the 6 views"),
        "truncated npz": ([f"data.path={folder / 'truncated.npz'}"], "not a"),
        "corrupt npz": ([f"data.path={folder / 'corrupt.npz'}"], "corrupt.npz"),
        "truncated h5": ([f"data.path={folder / 'truncated.h5'}"], "truncated.h5"),
        "no images": ([f"data.path={folder / 'empty'}"], "has no images (PNG or JPEG files); skipped 1 file"),
        "empty glob": ([f"data.path={folder / 'empty' / '*.png'}"], "has no images"),
        "fake png": ([f"data.path={folder / 'fake'}", "data.image_size=16"], "img9.png"),
        "image size": ([f"data.path={folder / 'good.npz'}", "data.image_size=40"], "divisible by 16"),
    }


def test_bad_input_is_one_line_and_changes_nothing(tmp_path, run_cli, tiny_overrides):
    folder = tmp_path / "data"
    folder.mkdir()
    cases = _bad_inputs(folder)
    before = snapshot(tmp_path)
    for name, (overrides, words) in cases.items():
        run = tmp_path / "run"
        cache = f"data.cache={tmp_path / 'cache'}"
        code, _out, err = run_cli("train", "--set", *tiny_overrides, cache, *overrides, "--out", run, "--quiet")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("sbvae: error:"), (name, err)
        assert words in lines[0], (name, lines[0])
        assert snapshot(tmp_path) == before, name  # no run folder, no cache, no partial copy
    for name in ("missing", "another format", "wrong keys", "no images", "fake png"):
        path = cases[name][0][0].split("=", 1)[1]
        code, _, err = run_cli("data", path, "--out", tmp_path / "x.png", "--cache", tmp_path / "cache")
        assert code == 2 and len(err.strip().splitlines()) == 1, (name, err)
    assert snapshot(tmp_path) == before


def test_an_interrupted_copy_leaves_no_partial_copy(tmp_path, monkeypatch):
    """Stopped half-way through the uncompressed copy, then run again: no partial file is left
    (the folder stays: another process may be copying into it), and the next run makes a whole copy."""
    write_dsprites(tmp_path / "d.npz")
    copy = shutil.copyfileobj

    def stop_half_way(source, sink, length=0):
        sink.write(source.read(1000))
        raise KeyboardInterrupt

    monkeypatch.setattr("sbvae.data.rows.shutil.copyfileobj", stop_half_way)
    with pytest.raises(KeyboardInterrupt):
        open_data(str(tmp_path / "d.npz"), 64, cache=str(tmp_path / "cache"))
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(KeyboardInterrupt):
        open_data(str(tmp_path / "d.npz"), 64, cache=str(tmp_path / "cache"))
    assert list((tmp_path / "cache").iterdir()) == []
    monkeypatch.setattr("sbvae.data.rows.shutil.copyfileobj", copy)
    data = open_data(str(tmp_path / "d.npz"), 64, cache=str(tmp_path / "cache"))
    assert len(list((tmp_path / "cache").iterdir())) == 1 and data.image_size == 64


def test_a_fake_image_found_while_training_is_one_line(tmp_path, run_cli, tiny_overrides):
    """A PNG whose header is fine but whose data is cut off is named when first decoded."""
    paths = write_images(tmp_path / "photos")
    whole = paths[0].read_bytes()
    paths[0].write_bytes(whole[: len(whole) // 2])
    code, _, err = run_cli("train", "--set", *tiny_overrides, f"data.path={tmp_path / 'photos'}", "--out",
                           tmp_path / "run", "--quiet")  # fmt: skip
    assert code == 2 and "img0.png" in err and len(err.strip().splitlines()) == 1, err
