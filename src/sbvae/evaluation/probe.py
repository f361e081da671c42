"""Probe networks: a small CNN trained on ground-truth images to read every factor back.

A probe reads each factor of a :class:`GroundTruthDataset` (see :class:`Reading`): a named
category (a ``Discrete`` factor with ``value_names``: sprites' shape, a chair's armrests) by
classification; an angle over a whole turn (:func:`period`) as the cosine and sine of the angle;
any other factor as a number scaled to [-1, 1]. Two small convolutional trunks (see
:class:`ProbeNet`) feed the readings; their outputs are split among the factors.

Training draws fresh ground-truth batches from its own seeded generator and degrades them with
a Gaussian blur of random width and pixel noise, so that the probe reads the object and not its
sharp edges, and can read a model's blurrier reconstructions (no change of contrast: it would
blur the reading of a colour's brightness). The
weights depend only on the data, the image size and the seed (on a CPU); a trained probe is
cached on disk (:func:`load_or_train_probe`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sbvae.data import Continuous, Discrete, GroundTruthDataset, derive_seed, make_generator
from sbvae.data.files import DataSpec
from sbvae.data.presets import renderer_version
from sbvae.data.rows import default_cache
from sbvae.errors import UserError, first_line
from sbvae.training.run_folder import atomic_write_bytes

PROBE_VERSION = 1
"""Changes whenever the probe's design or training changes, so cached probes are retrained."""
PROBE_SEED = 0
"""The seed of the probe every evaluation uses: runs on the same data are read by one probe."""
PROBE_STEPS = 700
PROBE_BATCH = 64
PROBE_LR = 3e-3
MAX_BLUR = 1.5
"""The widest blur (Gaussian sigma) in pixels at 32 px, scaled with the image size."""
MAX_NOISE = 0.05
"""The largest standard deviation of the pixel noise."""
TURNS = (1.0, 2 * math.pi, 360.0)
"""Whole turns a circular factor may span: a hue, radians, degrees."""

Kind = Literal["class", "angle", "value"]


def period(values: torch.Tensor, half_open: bool) -> float | None:
    """The turn (one of :data:`TURNS`) that sorted, evenly spaced factor ``values`` go round,
    or None when they are not an angle.

    The values must start at 0 and cover the turn: with its end left out (a hue in [0, 1),
    azimuths 0, 11.6, ..., 348.4 degrees) or, for radians and degrees, with both ends (dSprites'
    orientation runs from 0 to 2 pi included: the same angle twice). ``half_open`` says whether
    ``values`` stand for a range whose top is left out (a continuous factor: the two ends).
    [0, 1] with both ends is a position, not a hue.
    """
    if len(values) < 2 or abs(float(values[0])) > 1e-9:
        return None
    step = 0.0 if half_open else float(values[1] - values[0])
    span = float(values[-1] - values[0])
    for turn in TURNS:
        if math.isclose(span + step, turn, rel_tol=1e-6):
            return turn
        if not half_open and turn != 1.0 and math.isclose(span, turn, rel_tol=1e-6):
            return turn
    return None


@dataclass(frozen=True)
class Reading:
    """How a probe reads factor ``name`` (column ``column`` of the factor values).

    ``kind``: ``class`` (one logit per value of ``grid``, the factor's values in class order),
    ``angle`` (cosine and sine of ``2 pi value / turn``) or ``value``
    (``2 (value - low) / (high - low) - 1``). ``width``: the outputs it takes.
    """

    name: str
    column: int
    kind: Kind
    grid: tuple[float, ...] = ()
    low: float = 0.0
    high: float = 1.0
    turn: float = 0.0

    @property
    def width(self) -> int:
        return {"class": len(self.grid), "angle": 2, "value": 1}[self.kind]

    def target(self, values: torch.Tensor) -> torch.Tensor:
        """What the probe is trained to output for ``[N, K]`` factor values: class indices
        ``[N]`` (int64, the nearest grid value), or ``[N, width]`` float32 numbers."""
        column = values[:, self.column : self.column + 1].double()
        if self.kind == "class":
            grid = torch.tensor(self.grid, dtype=torch.float64)
            return (column - grid[None, :]).abs().argmin(dim=1)
        if self.kind == "angle":
            angle = column * (2 * math.pi / self.turn)
            return torch.cat([angle.cos(), angle.sin()], dim=1).float()
        return (2 * (column - self.low) / (self.high - self.low) - 1).float()


def factor_readings(data: GroundTruthDataset) -> list[Reading]:
    """One :class:`Reading` per factor of ``data``, in the order of its ``factor_names``."""
    readings = []
    for column, name in enumerate(data.factor_names):
        factor = data.factor(name)
        if isinstance(factor, Discrete) and factor.value_names is not None:
            readings.append(Reading(name, column, "class", tuple(factor.values.tolist())))
            continue
        if isinstance(factor, Continuous):
            points, half_open = torch.tensor([factor.low, factor.high], dtype=torch.float64), True
        else:
            points, half_open = factor.values.sort().values, False
        turn = period(points, half_open)
        low, high = float(points[0]), float(points[-1])
        if turn is not None:
            readings.append(Reading(name, column, "angle", turn=turn))
        else:
            readings.append(Reading(name, column, "value", low=low, high=high if high > low else low + 1))
    return readings


def outputs_width(readings: list[Reading]) -> int:
    """The probe outputs that ``readings`` take together."""
    return sum(r.width for r in readings)


def intensity(images: torch.Tensor) -> torch.Tensor:
    """Each image's brightest channel divided by its brightest pixel, ``[N, 1, H, W]``: the
    object's silhouette whatever its colour and brightness."""
    brightest = images.amax(dim=1, keepdim=True)
    return brightest / brightest.amax(dim=(2, 3), keepdim=True).clamp_min(1e-3)


def _trunk(channels: int, image_size: int, width: int, first: int = 0) -> tuple[nn.Sequential, int]:
    """3 x 3 convolutions with batch norm and ReLU, of stride 2 down to 4 x 4 pixels (after
    one of ``first`` channels at full resolution, if ``first``); returns it and its output's side."""
    layers: list[nn.Module] = []
    size, previous = image_size, channels
    if first:
        layers += [nn.Conv2d(channels, first, 3, padding=1), nn.BatchNorm2d(first), nn.ReLU()]
        previous = first
    while size > 4:
        layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        size, previous = (size + 1) // 2, width
    return nn.Sequential(*layers), size


class Pooled(nn.Module):
    """Each channel's maximum and mean over the image: what is there, wherever it is."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features.amax(dim=(2, 3)), features.mean(dim=(2, 3))], dim=1)


class FlatAndPooled(Pooled):
    """Every feature in place (where things are), then :class:`Pooled`."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features.flatten(1), super().forward(features)], dim=1)


def _head(inputs: int, outputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


class ProbeNet(nn.Module):
    """Two small convolutional trunks, so that telling categories apart does not compete with
    measuring. The *category* trunk sees only the silhouette (:func:`intensity`) and pools over
    the image (what is there, wherever it is); it feeds the class readings. The *attribute*
    trunk sees the colours and the silhouette and keeps the layout (where, how big, what colour);
    it feeds the other readings. Outputs come in the order of ``readings``."""

    order: torch.Tensor

    def __init__(
        self,
        channels: int,
        image_size: int,
        readings: list[Reading],
        category_width: int = 40,
        attribute_width: int = 32,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        classes = [r.kind == "class" for r in readings]
        starts = torch.tensor([0, *[r.width for r in readings]]).cumsum(0)
        columns = [list(range(int(starts[i]), int(starts[i + 1]))) for i in range(len(readings))]
        grouped = [c for cls in (True, False) for i, c in enumerate(columns) if classes[i] == cls]
        self.register_buffer("order", torch.tensor([c for cols in grouped for c in cols]).argsort(), persistent=False)
        class_outputs = sum(r.width for r in readings if r.kind == "class")
        other_outputs = outputs_width(readings) - class_outputs
        self.category: nn.Module | None = None
        self.attribute: nn.Module | None = None
        if class_outputs:
            trunk, _ = _trunk(1, image_size, category_width, first=16)
            self.category = nn.Sequential(trunk, Pooled(), _head(2 * category_width, class_outputs, hidden))
        if other_outputs:
            trunk, side = _trunk(channels + 1, image_size, attribute_width)
            features = (side * side + 2) * attribute_width
            self.attribute = nn.Sequential(trunk, FlatAndPooled(), _head(features, other_outputs, hidden))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        silhouette = intensity(images)
        parts = []
        if self.category is not None:
            parts.append(self.category(silhouette))
        if self.attribute is not None:
            parts.append(self.attribute(torch.cat([images, silhouette], dim=1)))
        return torch.cat(parts, dim=1)[:, self.order]


class Probe:
    """A trained :class:`ProbeNet` with the readings its outputs stand for."""

    def __init__(self, readings: list[Reading], net: ProbeNet) -> None:
        self.readings, self.net = readings, net.eval()

    @torch.inference_mode()
    def read(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """The probe's raw outputs ``[N, sum of widths]`` (on the CPU) for images in [0, 1]."""
        device = images.device
        net = self.net.to(device)
        parts = [net(images[i : i + batch_size]).float().cpu() for i in range(0, len(images), batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, outputs_width(self.readings))

    def split(self, outputs: torch.Tensor) -> list[torch.Tensor]:
        """``outputs`` cut into one block per reading."""
        return list(torch.split(outputs, [r.width for r in self.readings], dim=1))


def probe_loss(readings: list[Reading], outputs: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every class reading plus squared error of every other, summed."""
    loss = outputs.new_zeros(())
    for reading, block in zip(readings, torch.split(outputs, [r.width for r in readings], dim=1)):
        target = reading.target(values).to(outputs.device)
        if reading.kind == "class":
            loss = loss + F.cross_entropy(block, target)
        else:
            loss = loss + F.mse_loss(block, target, reduction="sum") / len(block)
    return loss


def blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image blurred by a Gaussian of its own ``sigma`` (pixels, ``[N]``; 0: unchanged),
    separably, with reflected borders."""
    n, c, h, w = images.shape
    radius = max(1, math.ceil(3 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    width = sigma.to(images).clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (offsets[None, :] / width) ** 2)
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # [N * C, taps]
    flat = images.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel[:, None, None, :], groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel[:, None, :, None], groups=n * c)
    return flat.reshape(n, c, h, w)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Ground-truth images degraded at random, clamped to [0, 1]: each blurred with sigma
    ``MAX_BLUR * u ** 2`` px at 32 px (in proportion at other sizes; u uniform in [0, 1], so
    slight blurs are the most common and a small sprite keeps its shape in most batches) and
    given Gaussian noise of standard deviation uniform up to :data:`MAX_NOISE`."""
    draws = torch.rand(len(images), 2, generator=generator)
    sigma = draws[:, 0] ** 2 * MAX_BLUR * images.shape[-1] / 32
    noise = torch.randn(images.shape, generator=generator) * draws[:, 1, None, None, None] * MAX_NOISE
    return (blur(images, sigma) + noise).clamp(0, 1)


def train_probe(
    data: GroundTruthDataset,
    seed: int = PROBE_SEED,
    steps: int = PROBE_STEPS,
    batch_size: int = PROBE_BATCH,
    log: Callable[[str], None] = lambda _: None,
) -> Probe:
    """A probe for ``data`` trained on the CPU for ``steps`` batches of fresh, degraded ground
    truth (Adam, learning rate decaying to 0 on a cosine). Its initial weights and its draws
    come from generators of ``seed``: torch's global random state is left as it was.

    It trains on one thread (the caller's thread count is restored after): its small
    convolutions gain little from more, threads that share busy cores slow each other down many
    times over, and so the weights do not depend on the thread count either.
    """
    readings = factor_readings(data)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "probe init"))
        net = ProbeNet(data.channels, data.image_size, readings)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # faster on a CPU
    generator = make_generator(seed, "probe")
    optimizer = torch.optim.Adam(net.parameters(), lr=PROBE_LR)
    threads, tick = torch.get_num_threads(), time.perf_counter()
    torch.set_num_threads(1)
    try:
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = PROBE_LR * 0.5 * (1 + math.cos(math.pi * step / steps))
            values = data.draw(batch_size, generator)
            images = augment(data.render(values), generator).contiguous(memory_format=torch.channels_last)
            loss = probe_loss(readings, net(images), values)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    log(f"trained the fidelity probe of {data.name} at {data.image_size} px in {time.perf_counter() - tick:.0f} s")
    # in the memory order of a probe loaded from the cache, so that it reads the same numbers
    return Probe(readings, net.to(memory_format=torch.contiguous_format))


def data_identity(spec: DataSpec) -> str:
    """What names a dataset for the probe cache: its preset (and supersampling, and its
    renderer's version after the first), or its file or folder and format."""
    if spec.path is None:
        version = renderer_version(spec.preset)
        return f"preset {spec.preset} supersample {spec.supersample}" + (f" renderer {version}" if version > 1 else "")
    return f"path {spec.path} format {spec.format or 'detected'}"


def probe_folder(cache: str | Path | None = None) -> Path:
    """``CACHE/probes``; ``cache`` defaults to the data cache (``$XDG_CACHE_HOME/sbvae``, else
    ``~/.cache/sbvae``)."""
    return Path(cache or default_cache()) / "probes"


def probe_file(folder: Path, identity: str, image_size: int, seed: int, steps: int) -> Path:
    """The cache file of one probe: named by a digest of everything its weights depend on."""
    key = {"data": identity, "image_size": image_size, "version": PROBE_VERSION, "seed": seed, "steps": steps}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"probe-v{PROBE_VERSION}-{image_size}px-seed{seed}-{digest}.pt"


_LOADED: dict[Path, Probe] = {}
_KEEP = 4


def _load(path: Path, data: GroundTruthDataset) -> Probe | None:
    """The probe cached in ``path``, or None when there is none or it does not fit ``data``."""
    if not path.is_file():
        return None
    readings = factor_readings(data)
    net = ProbeNet(data.channels, data.image_size, readings)
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception:  # a damaged or foreign file is trained again and replaced
        return None
    return Probe(readings, net)


def load_or_train_probe(
    data: GroundTruthDataset,
    identity: str,
    cache: str | Path | None = None,
    seed: int = PROBE_SEED,
    steps: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Probe:
    """The probe of ``data`` (named ``identity``, see :func:`data_identity`) from the cache
    folder :func:`probe_folder` of ``cache``, trained and saved there (atomically) the first time.
    ``steps``: default :data:`PROBE_STEPS`. The last few probes are also kept in memory. A folder
    that cannot be written only costs the training again next time."""
    steps = PROBE_STEPS if steps is None else steps
    folder = probe_folder(cache)
    path = probe_file(folder, identity, data.image_size, seed, steps)
    if path in _LOADED:
        return _LOADED[path]
    probe = _load(path, data)
    if probe is None:
        log(f"training the fidelity probe of {data.name} at {data.image_size} px (once: it is kept in {folder})")
        probe = train_probe(data, seed, steps, log=log)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, lambda handle: torch.save(probe.net.state_dict(), handle))
        except (OSError, UserError) as exc:
            log(f"the fidelity probe is not kept on disk ({first_line(exc)})")
    while len(_LOADED) >= _KEEP:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[path] = probe
    return probe
