"""Folders of image files: the published 3D Chairs renderings, and a user's own images.

* ``chairs_folder``: the renderings of Aubry et al. 2014 (``rendered_chairs``): one folder per
  chair model, each with a ``renders/`` folder of PNGs named ``image_NNN_pPPP_tTTT_rRRR.png``,
  ``PPP`` the elevation and ``TTT`` the azimuth in degrees (2 elevations x 31 azimuths per
  model). Factors: ``model`` (the folders in sorted order, named by their folder), ``azimuth``
  and ``elevation`` (the values found in the file names). Every model must have every view once:
  the folder is then a full factorial grid like any other ground-truth dataset.
* ``image_folder``: a folder (searched recursively, hidden files skipped) or a glob of PNG and
  JPEG files of any size: no ground truth. In a folder every file must be an image; a glob
  (``'photos/*.jpg'``) picks the files when other files lie beside them.

Every image is converted to RGB, centre-cropped to a square and resized to ``data.image_size``
(area averaging to shrink, nearest to grow). A file is decoded the first time a batch needs it
and kept, 8 bits per value at the target size (:class:`sbvae.data.memo.Memo`): at most
``N x 3 x S x S`` bytes for ``N`` files, far less than the files' own pixels for large images.
When the dataset is opened, every file's first bytes are checked (PNG or JPEG signature); a
file that is damaged further in is named when it is first decoded.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np
import torch

from sbvae.data.dataset import Dataset, GroundTruthDataset
from sbvae.data.factors import Discrete, Product
from sbvae.data.memo import Memo, grid_index
from sbvae.errors import UserError

CHAIR_NAME = re.compile(r"image_(\d+)_p(\d+)_t(\d+)_r(\d+)\.png")
"""A 3D Chairs rendering's file name: index, elevation (pitch), azimuth (theta), distance."""
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


def image_magic(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts a PNG or a JPEG."""
    return head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC)


def _check_image(path: Path, hint: str = "") -> None:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if not image_magic(head):
        raise UserError(f"{path} is not a PNG or JPEG image{hint}")


def decode(path: Path, size: int) -> np.ndarray:
    """The image at ``path`` as RGB ``[3, size, size]`` uint8: centre-cropped to a square, resized."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        text = str(exc).strip().splitlines()
        raise UserError(f"{path} is not a readable image: {text[0] if text else type(exc).__name__}") from None
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    method = Image.Resampling.BOX if side >= size else Image.Resampling.NEAREST
    image = image.resize((size, size), method, box=(left, top, left + side, top + side))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


class DecodedImages:
    """The files' images ``[N, 3, S, S]`` in [0, 1], each decoded on first use and kept as uint8."""

    def __init__(self, files: list[Path], size: int) -> None:
        self.files, self.size = files, size
        self.memo = Memo(len(files), self._decode, torch.uint8)

    def _decode(self, keys: torch.Tensor, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.stack([decode(self.files[k], self.size) for k in keys.tolist()]))

    def __call__(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.memo(keys.cpu(), "cpu").to(device).float() / 255


class _ImageFiles:
    """Colour image files decoded at ``image_size`` on first use (what both folder kinds share)."""

    def __init__(self, name: str, files: list[Path], image_size: int) -> None:
        self.name, self.files, self._size = name, files, image_size
        self.decoded = DecodedImages(files, image_size)

    @property
    def image_size(self) -> int:
        return self._size

    @property
    def channels(self) -> int:
        return 3


class ImageFolder(_ImageFiles, Dataset):
    """Image files without ground truth; keys are file indices drawn uniformly."""

    has_ground_truth = False

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(len(self.files), (n,), generator=generator)

    def images(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.decoded(keys, device)


class ChairsFolder(_ImageFiles, GroundTruthDataset):
    """The 3D Chairs renderings: factors ``model``, ``azimuth``, ``elevation``; ``files`` in
    grid order (model, then azimuth, then elevation)."""

    plane_factors = ("azimuth", "elevation")

    def __init__(self, name: str, factors: Product, files: list[Path], image_size: int) -> None:
        super().__init__(name, files, image_size)
        self.factors = factors

    def render(self, values: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        labels = self.factors.labels(values.detach().cpu().double())
        return self.decoded(grid_index(labels, self.factors.num_classes), device)


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _models(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/renders") if p.is_dir() and _visible(p, root))


def is_chairs_folder(root: Path) -> bool:
    """Whether ``root`` holds model folders with ``renders/`` of files named as 3D Chairs' are."""
    return any(CHAIR_NAME.fullmatch(p.name) for model in _models(root) for p in (model / "renders").iterdir())


def chairs_folder(root: Path, image_size: int) -> ChairsFolder:
    """The 3D Chairs renderings under ``root`` (see the module's docstring)."""
    if not root.is_dir():
        raise UserError(f"{root} is not a folder (the 3D Chairs renderings are a folder of model folders)")
    models = _models(root)
    if not models:
        raise UserError(f"{root} has no model folders with a renders/ folder (the layout of rendered_chairs)")
    views: dict[Path, dict[tuple[int, int], Path]] = {}
    for model in models:
        found: dict[tuple[int, int], Path] = {}
        for path in sorted((model / "renders").iterdir()):
            if path.name.startswith("."):
                continue
            match = CHAIR_NAME.fullmatch(path.name)
            if match is None:
                raise UserError(f"{path} is not a rendering named image_NNN_pPPP_tTTT_rRRR.png")
            view = (int(match.group(3)), int(match.group(2)))  # azimuth, elevation
            if view in found:
                raise UserError(f"{found[view]} and {path.name} show the same view (azimuth, elevation {view})")
            _check_image(path)
            found[view] = path
        views[model] = found
    every = sorted({view for found in views.values() for view in found})
    azimuths = sorted({a for a, _ in every})
    elevations = sorted({e for _, e in every})
    for model, found in views.items():
        missing = [v for v in ((a, e) for a in azimuths for e in elevations) if v not in found]
        if missing:
            a, e = missing[0]
            raise UserError(
                f"{model} lacks {len(missing)} of the {len(azimuths) * len(elevations)} views "
                f"(first: azimuth {a}, elevation {e}); every model needs every view"
            )
    factors = Product(
        Discrete("model", list(range(len(models))), value_names=[m.name for m in models]),
        Discrete("azimuth", azimuths),
        Discrete("elevation", elevations),
    )
    files = [views[m][(a, e)] for m in models for a in azimuths for e in elevations]
    return ChairsFolder(root.name or "chairs", factors, files, image_size)


def image_folder(path: str, image_size: int) -> ImageFolder:
    """The images of a folder, a glob or one file (see the module's docstring)."""
    where = Path(path)
    if where.is_dir():
        files = sorted(p for p in where.rglob("*") if p.is_file() and _visible(p, where))
        hint = f" (every file of a folder must be; a glob such as '{where / '*.png'}' picks files)"
        name = where.name
    elif where.is_file():
        files, hint, name = [where], "", where.stem
    elif glob.has_magic(path):
        files = sorted(Path(p) for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        hint, name = "", Path(path).parent.name or "images"
    else:
        raise UserError(f"data.path {path} does not exist")
    if not files:
        raise UserError(f"{path} has no images (PNG or JPEG files)")
    for file in files:
        _check_image(file, hint)
    return ImageFolder(name or "images", files, image_size)
