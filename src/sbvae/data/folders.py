"""Folders of image files: the published 3D Chairs renderings, and a user's own images.

* ``chairs_folder``: the renderings of Aubry et al. 2014 (``rendered_chairs``): one folder per
  chair model, each with a ``renders/`` folder of PNGs named ``image_NNN_pPPP_tTTT_rRRR.png``,
  ``PPP`` the elevation and ``TTT`` the azimuth in degrees (2 elevations x 31 azimuths per
  model). Factors: ``model`` (the folders in sorted order, named by their folder), ``azimuth``
  and ``elevation`` (the values found in the file names). Every model must have every view once:
  the folder is then a full factorial grid like any other ground-truth dataset.
* ``image_folder``: a folder (searched recursively, hidden files skipped) or a glob
  (``'photos/**/*.jpg'``) of PNG and JPEG files of any size: no ground truth. Files named as
  neither (``.png``, ``.jpg``, ``.jpeg``; a ``notes.txt``, a ``labels.csv``) are skipped, and how
  many is said in one line. Links to folders are followed, but no folder is entered twice (a link
  cycle ends) and a file reached by several names is read once.

Every image is converted to RGB (a 16-bit greyscale PNG scaled to 8 bits), centre-cropped to a
square and resized to ``data.image_size`` (area averaging to shrink, nearest to grow). A file is
decoded the first time a batch needs it and kept, 8 bits per value at the target size
(:class:`sbvae.data.memo.Memo`): at most ``N x 3 x S x S`` bytes for ``N`` files, far less than
the files' own pixels for large images.
When the dataset is opened, every file's first bytes are checked (PNG or JPEG signature); a
file that is damaged further in is named when it is first decoded.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from sbvae.data.dataset import Dataset, GroundTruthDataset
from sbvae.data.factors import Discrete, Product
from sbvae.data.memo import Memo, grid_index
from sbvae.errors import UserError, printable

if TYPE_CHECKING:
    from PIL import Image

CHAIR_NAME = re.compile(r"image_(\d+)_p(\d+)_t(\d+)_r(\d+)\.png")
"""A 3D Chairs rendering's file name: index, elevation (pitch), azimuth (theta), distance."""
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""The names of the files an image folder reads (in any case); it skips every other file."""
SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
"""Pillow's modes for a 16-bit greyscale PNG: values 0 to 65535, which ``convert`` would clip at 255."""


def image_magic(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts a PNG or a JPEG."""
    return head.startswith(PNG_MAGIC) or head.startswith(JPEG_MAGIC)


def _check_image(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if not image_magic(head):
        raise UserError(f"{path} is not a PNG or JPEG image")


def _rgb(image: Image.Image) -> Image.Image:
    """``image`` in 8-bit RGB; 16-bit greyscale scaled (65535 becomes 255), not clipped."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.rint(np.asarray(image, dtype=np.float64) / 257)
        image = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    return image.convert("RGB")


def decode(path: Path, size: int) -> np.ndarray:
    """The image at ``path`` as RGB ``[3, size, size]`` uint8: centre-cropped to a square, resized."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            image = _rgb(opened)
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


def _name_matches(name: str, pattern: str) -> bool:
    """Whether one path component matches one glob component; a hidden name only a pattern that
    starts with a dot (as :mod:`glob` does)."""
    return fnmatch.fnmatchcase(name, pattern) and (pattern.startswith(".") or not name.startswith("."))


def _matches(parts: Sequence[str], pattern: Sequence[str], whole: bool = True) -> bool:
    """Whether a relative path matches a glob's components (``**``: any number of folders, none
    hidden); with ``whole=False``, whether something inside the folder ``parts`` could."""
    if not parts:
        return not whole or all(part == "**" for part in pattern)
    if not pattern:
        return False
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        deeper = _name_matches(parts[0], "*") and _matches(parts[1:], pattern, whole)
        return deeper or _matches(parts, rest, whole)
    return _name_matches(parts[0], head) and _matches(parts[1:], rest, whole)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _unreadable(exc: OSError) -> None:
    raise UserError(f"cannot read folder {exc.filename}: {exc.strerror}")


def find_files(base: Path, pattern: Sequence[str]) -> list[Path]:
    """The regular files under ``base`` whose relative path matches the glob components
    ``pattern``, sorted. Links to folders are followed, but no folder is entered twice (a link
    cycle ends); a file reached by several paths (links, hard links) is listed once."""
    folders: set[tuple[int, int]] = set()
    found: dict[tuple[int, int], Path] = {}
    for folder, subfolders, names in os.walk(base, onerror=_unreadable, followlinks=True):
        key = _identity(folder)
        if key is None or key in folders:
            subfolders.clear()
            continue
        folders.add(key)
        inside = Path(folder).relative_to(base).parts
        subfolders[:] = sorted(d for d in subfolders if _matches((*inside, d), pattern, whole=False))
        for name in sorted(names):
            path = Path(folder, name)
            if _matches((*inside, name), pattern) and path.is_file():
                same = _identity(str(path))  # the file, whichever name reached it
                if same is not None:
                    found.setdefault(same, path)
    return sorted(found.values())


def _split_glob(pattern: str) -> tuple[Path, tuple[str, ...]]:
    """A glob as the folder before its first wildcard and the components from there on."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    return Path(*parts[:first]) if first else Path("."), parts[first:]


def _image_files(path: str, found: list[Path]) -> list[Path]:
    """The files of ``found`` named as images; one line says how many others were skipped."""
    files = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES]
    kinds = sorted({p.suffix.lower() or "no extension" for p in others})
    plural = "s" if len(others) != 1 else ""
    skipped = f"skipped {len(others)} file{plural} not named .png, .jpg or .jpeg ({', '.join(kinds[:5])})"
    if not files:
        raise UserError(f"{path} has no images (PNG or JPEG files)" + (f"; {skipped}" if others else ""))
    if others:
        print(printable(f"data.path {path}: {skipped}"))
    return files


def image_folder(path: str, image_size: int) -> ImageFolder:
    """The images of a folder, a glob or one file (see the module's docstring)."""
    where = Path(path)
    if where.is_dir():
        files, name = _image_files(path, find_files(where, ("**", "*"))), where.name
    elif where.is_file():
        files, name = [where], where.stem
    elif glob.has_magic(path):
        base, pattern = _split_glob(path)
        found = find_files(base, pattern) if base.is_dir() else []
        files, name = _image_files(path, found), Path(path).parent.name or "images"
    else:
        raise UserError(f"data.path {path} does not exist")
    for file in files:
        _check_image(file)
    return ImageFolder(name or "images", files, image_size)
