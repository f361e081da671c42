"""What ``sbvae explore`` shows, without the web: trained runs loaded for interactive decoding.

An :class:`ExploreSession` holds one or more runs (model in eval mode, its data, the KL of
every latent, which factor each latent carries, the latent-geometry lines) and answers the
page's questions: start from a data sample, from chosen factor values or from a prior draw,
and decode any latent vector. It keeps no per-user state: the page holds the latents and
sends them with every request, so any number of tabs can explore at once.

Several runs are compared on the same input: the sliders are the first run's latents, highest
KL first, and each other run moves the latent that carries the same factor (highest mutual
information, 20-bin discretisation as in MIG), with its sign flipped where it runs the other
way. Data without ground truth pairs latents by KL rank instead.
"""

from __future__ import annotations

import base64
import contextlib
import io
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sbvae.config import Config
from sbvae.data import Continuous, Dataset, GroundTruthDataset, build_dataset, make_generator
from sbvae.errors import CheckpointError, UserError
from sbvae.evaluation.metrics.utils import discrete_entropy, discrete_mutual_info, discretize
from sbvae.evaluation.sampling import GroundTruthSampler, encode_means
from sbvae.models import VAE
from sbvae.objectives import ACTIVE_KL, to_image
from sbvae.training.run_folder import load_model
from sbvae.training.validation import elbo_statistics
from sbvae.viz.geometry import choose_latents, factor_plane, line_colours
from sbvae.viz.grid import to_uint8

MATCH_SAMPLES = 2_000
"""Ground-truth samples encoded to find which factor each latent carries."""
LATENT_LIMIT = 50.0
"""Latent values the app decodes: |z| up to this (the prior puts almost nothing past 5)."""
MAX_SEED = 2**31 - 1
DEMO_RUNS = ("sbd", "deconv")


class RequestError(ValueError):
    """A request the app cannot answer (bad or out-of-range parameters); the message says why."""


@dataclass
class ExploreRun:
    """One loaded run: its model and everything the page shows about its latents."""

    name: str
    path: Path
    config: Config
    model: VAE
    data: Dataset
    kl: list[float]
    order: list[int]  # latent indices, highest KL first
    carries: list[dict[str, Any] | None] = field(default_factory=list)  # per latent: factor, mi, sign
    geometry: dict[str, Any] | None = None

    @property
    def latent_dim(self) -> int:
        return self.model.encoder.latent_dim

    @property
    def likelihood(self) -> str:
        return self.config.objective.likelihood

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "decoder": self.config.model.decoder,
            "data": self.data.name,
            "image_size": self.data.image_size,
            "latent_dim": self.latent_dim,
            "kl": [round(v, 4) for v in self.kl],
            "order": self.order,
            "active": [v >= ACTIVE_KL for v in self.kl],
            "carries": self.carries,
            "geometry": self.geometry,
        }


def png_data_url(image: torch.Tensor) -> str:
    """A ``data:image/png`` URL of one ``[C, H, W]`` image in [0, 1]."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode()


def png_bytes(image: torch.Tensor) -> bytes:
    """PNG bytes of one ``[C, H, W]`` image in [0, 1] (grey for one channel)."""
    array = to_uint8(image.detach().cpu())
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def demo_run_dirs() -> list[Path]:
    """The folders of the two small models shipped with sbvae (SBD and DeConv, coloured sprites)."""
    root = Path(str(resources.files("sbvae.explore") / "demo"))
    folders = [root / name for name in DEMO_RUNS]
    missing = [str(f) for f in folders if not (f / "checkpoint.pt").is_file()]
    if missing:
        raise UserError(f"the demo models are missing from this installation ({', '.join(missing)})")
    return folders


DECODER_LABELS = {"sbd": "SBD", "deconv": "DeConv"}


def _run_name(path: Path, config: Config, taken: set[str]) -> str:
    """``SBD`` for a folder named after its decoder, else ``SBD folder``; unique among ``taken``."""
    label = DECODER_LABELS.get(config.model.decoder, config.model.decoder)
    base = label if path.name.lower() == config.model.decoder else f"{label} {path.name}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name


def load_run(path: str | Path, device: torch.device, taken: set[str] | None = None) -> ExploreRun:
    """Load a run folder for exploring: model, data, KL per latent (on the run's validation set)."""
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"run folder not found: {folder}")
    if not folder.is_dir():
        raise CheckpointError(f"not a run folder: {folder}")
    try:
        config, model, _ = load_model(folder, device)
    except PermissionError as exc:
        raise CheckpointError(f"cannot read run folder {folder}: {exc.strerror}") from None
    data = build_dataset(config.data)
    val = data.fixed_set(config.data.val_size, config.train.seed, "val", device).images
    kl = [float(v) for v in elbo_statistics(model, val, config.objective, config.train.seed)["kl_per_dim"]]
    order = sorted(range(len(kl)), key=lambda d: (-kl[d], d))
    return ExploreRun(_run_name(folder, config, taken or set()), folder, config, model, data, kl, order)


@dataclass(frozen=True)
class FactorCodes:
    """A run's posterior means of ground-truth samples and what they say about each latent."""

    codes: np.ndarray  # [N, D]
    labels: np.ndarray  # [N, K]
    mi: np.ndarray  # [D, K]: mutual information normalised by the factor's entropy
    sign: np.ndarray  # [D, K]: +1 where the latent grows with the factor's label, else -1


def _factor_codes(run: ExploreRun, seed: int) -> FactorCodes | None:
    """Encode ``MATCH_SAMPLES`` samples of the run's data; None for data without ground truth."""
    if not isinstance(run.data, GroundTruthDataset):
        return None
    sampler = GroundTruthSampler(run.data, run.model, next(run.model.parameters()).device)
    codes, labels = sampler.codes_and_labels(MATCH_SAMPLES, make_generator(seed, "explore-match"))
    mi = discrete_mutual_info(discretize(codes), labels)
    mi = mi / np.maximum(discrete_entropy(labels), 1e-12)[None, :]
    sign = np.sign((codes - codes.mean(0)).T @ (labels - labels.mean(0)))
    sign[sign == 0] = 1
    return FactorCodes(codes, labels, mi, sign)


def _geometry(run: ExploreRun, found: FactorCodes | None) -> dict[str, Any] | None:
    """The latent-geometry plot's lines (as in ``sbvae visualize``) drawn in the two latents
    that carry the data's plane factors on the same samples as the sliders' labels, so the
    marked point moves with the sliders named after those factors."""
    data = run.data
    if found is None or not isinstance(data, GroundTruthDataset):
        return None
    plane = factor_plane(data, data.plane_factors)
    dims, mi = choose_latents(found.codes, found.labels[:, list(plane.columns)])
    device = next(run.model.parameters()).device
    points = encode_means(run.model, data, plane.values, device)[..., list(dims)]
    colours = line_colours(plane.first_lines, len(plane.values) - plane.first_lines)
    return {
        "factors": list(plane.names),
        "dims": list(dims),
        "mi": [round(v, 3) for v in mi],
        "lines": np.round(points, 4).tolist(),
        "inside": plane.inside.tolist(),
        "colours": ["#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in colour[:3])) for colour in colours],
    }


def _factor_controls(data: GroundTruthDataset) -> list[dict[str, Any]]:
    controls = []
    for name in data.factor_names:
        factor = data.factor(name)
        if isinstance(factor, Continuous):
            controls.append({"name": name, "kind": "continuous", "low": factor.low, "high": factor.high})
        else:
            names = factor.value_names
            values = factor.values.tolist()
            labels = list(names) if names is not None else [data.value_text(name, v) for v in values]
            controls.append({"name": name, "kind": "discrete", "values": values, "labels": labels})
    return controls


class ExploreSession:
    """Runs loaded for exploring side by side; thread-safe (one decoding at a time)."""

    def __init__(self, runs: Sequence[ExploreRun], seed: int = 0) -> None:
        if not runs:
            raise UserError("give at least one run folder (or --demo)")
        first = runs[0]
        for run in runs[1:]:
            if (run.data.image_size, run.data.channels) != (first.data.image_size, first.data.channels):
                raise UserError(
                    f"{run.path} makes {run.data.image_size} px images with {run.data.channels} channels, "
                    f"{first.path} {first.data.image_size} px with {first.data.channels}: "
                    "runs shown side by side need the same images"
                )
        self.runs = list(runs)
        self.data = first.data
        self.lock = threading.Lock()
        self.ground_truth = isinstance(self.data, GroundTruthDataset) and all(
            isinstance(r.data, GroundTruthDataset) and r.data.factor_names == self.data.factor_names for r in runs
        )
        with torch.no_grad():
            found = [_factor_codes(run, seed) for run in self.runs]
            for run, codes in zip(self.runs, found):
                run.geometry = _geometry(run, codes)
                if codes is not None and self.ground_truth:
                    best = codes.mi.argmax(1)
                    run.carries = [
                        {"factor": self.factor_names[k], "mi": round(float(codes.mi[d, k]), 3)}
                        for d, k in enumerate(best)
                    ]
        information = [(f.mi, f.sign) for f in found if f is not None] if self.ground_truth else []
        self.slots = self._match(information)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.data.factor_names if isinstance(self.data, GroundTruthDataset) else ()

    def _match(self, information: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
        """One slot per latent of the first run (highest KL first): the latent each run moves
        for it and the sign it moves with."""
        first = self.runs[0]
        slots: list[dict[str, Any]] = [{"dims": [d], "signs": [1]} for d in first.order]
        for j, run in enumerate(self.runs[1:], start=1):
            free = list(run.order)
            assigned: list[tuple[int, int] | None] = [None] * len(slots)
            if information:
                mi0, sign0 = information[0]
                mij, signj = information[j]
                for s, d0 in enumerate(first.order):  # active latents: by their factor
                    if first.kl[d0] < ACTIVE_KL:
                        continue
                    k = int(np.argmax(mi0[d0]))
                    active = [d for d in free if run.kl[d] >= ACTIVE_KL]
                    if not active:
                        break
                    best = max(active, key=lambda d, k=k: (mij[d, k], -free.index(d)))  # type: ignore[misc]
                    free.remove(best)
                    assigned[s] = (best, int(sign0[d0, k] * signj[best, k]))
            for s in range(len(slots)):  # the rest: by KL rank
                if assigned[s] is None and free:
                    assigned[s] = (free.pop(0), 1)
            for slot, pair in zip(slots, assigned):
                slot["dims"].append(None if pair is None else pair[0])
                slot["signs"].append(1 if pair is None else pair[1])
        return slots

    def describe(self) -> dict[str, Any]:
        """Everything the page needs to lay itself out."""
        return {
            "runs": [r.describe() for r in self.runs],
            "image_size": self.data.image_size,
            "ground_truth": self.ground_truth,
            "factors": _factor_controls(self.data) if isinstance(self.data, GroundTruthDataset) else [],
            "slots": self.slots,
            "latent_limit": LATENT_LIMIT,
            "active_kl": ACTIVE_KL,
        }

    # ------------------------------------------------------------------ requests

    def factor_values(self, chosen: Any) -> torch.Tensor:
        """``[1, K]`` values from ``{factor: value}`` (missing factors at their centre); discrete
        factors snap to their nearest grid value; out-of-range values raise :class:`RequestError`."""
        data = self.data
        if not isinstance(data, GroundTruthDataset):
            raise RequestError("this data has no ground-truth factors to set")
        if not isinstance(chosen, dict):
            raise RequestError("'values' must be an object {factor: value}")
        unknown = [k for k in chosen if k not in data.factor_names]
        if unknown:
            raise RequestError(f"unknown factor {_shown(unknown[0])} (factors: {', '.join(data.factor_names)})")
        values = data.centre_values(1)
        for column, name in enumerate(data.factor_names):
            if name not in chosen:
                continue
            value = _number(chosen[name], f"factor {name}")
            factor = data.factor(name)
            if isinstance(factor, Continuous):
                if not factor.low <= value <= factor.high:
                    raise RequestError(f"factor {name} must lie in [{factor.low}, {factor.high}], not {value}")
                value = min(value, np.nextafter(factor.high, factor.low))
            else:
                low, high = float(factor.values.min()), float(factor.values.max())
                if not low - 1e-9 <= value <= high + 1e-9:
                    raise RequestError(f"factor {name} must lie in [{low}, {high}], not {value}")
                value = float(factor.values[(factor.values - value).abs().argmin()])
            values[0, column] = value
        return values

    def start(self, mode: Any, seed: Any = 0, values: Any = None) -> dict[str, Any]:
        """A starting point: ``random`` (a data sample from ``seed``), ``factors`` (the image of
        ``values``) or ``prior`` (z ~ N(0, I) from ``seed``). For each run: the posterior mean
        (or the draw), and images of the input and of its reconstruction."""
        seed = _seed(seed)
        factors: torch.Tensor | None = None
        with self.lock, torch.no_grad():
            if mode == "prior":
                result: dict[str, Any] = {"mode": mode, "input": None, "values": None, "inside": None}
                runs = []
                for run in self.runs:
                    z = torch.randn(1, run.latent_dim, generator=make_generator(seed, "explore-prior"))
                    image = self._decode(run, z)
                    runs.append({"mean": _floats(z[0]), "reconstruction": None, "decoded": png_data_url(image)})
                result["runs"] = runs
                return result
            if mode == "random":
                keys = self.data.draw(1, make_generator(seed, "explore-sample"))
                images = self.data.images(keys)
                if isinstance(self.data, GroundTruthDataset):
                    factors = keys
            elif mode == "factors":
                factors = self.factor_values(values)
                assert isinstance(self.data, GroundTruthDataset)
                images = self.data.render(factors)
            else:
                raise RequestError(f"'mode' must be random, factors or prior, not {_shown(mode)}")
            runs = []
            for run in self.runs:
                device = next(run.model.parameters()).device
                mean, _ = run.model.encoder(images.to(device))
                image = self._decode(run, mean)
                runs.append({"mean": _floats(mean[0]), "reconstruction": png_data_url(image), "decoded": None})
        result = {"mode": mode, "input": png_data_url(images[0]), "runs": runs}
        if factors is not None and isinstance(self.data, GroundTruthDataset):
            result["values"] = {n: float(v) for n, v in zip(self.data.factor_names, factors[0].tolist())}
            result["text"] = {n: self.data.value_text(n, float(v)) for n, v in zip(self.data.factor_names, factors[0])}
            result["inside"] = bool(self.data.factors.contains(factors)[0])
        else:
            result["values"], result["inside"] = None, None
        return result

    def latents(self, run_index: Any, z: Any) -> tuple[ExploreRun, torch.Tensor]:
        """Validate a run index and a latent vector for it: ``[1, D]`` float32."""
        if not isinstance(run_index, int) or isinstance(run_index, bool) or not 0 <= run_index < len(self.runs):
            raise RequestError(f"'run' must be an integer in [0, {len(self.runs) - 1}], not {_shown(run_index)}")
        run = self.runs[run_index]
        if not isinstance(z, list) or len(z) != run.latent_dim:
            raise RequestError(f"run {run_index} takes {run.latent_dim} latent values, not {_count(z)}")
        numbers = [_number(v, f"latent {d}") for d, v in enumerate(z)]
        worst = max(range(len(numbers)), key=lambda d: abs(numbers[d]))
        if abs(numbers[worst]) > LATENT_LIMIT:
            limit = LATENT_LIMIT
            raise RequestError(f"latent {worst} is {numbers[worst]}: values must lie in [-{limit}, {limit}]")
        return run, torch.tensor([numbers], dtype=torch.float32)

    def decode(self, run_index: Any, z: Any) -> torch.Tensor:
        """The image ``[C, H, W]`` in [0, 1] that run ``run_index`` decodes from latents ``z``."""
        run, latents = self.latents(run_index, z)
        with self.lock, torch.no_grad():
            return self._decode(run, latents)

    def decode_all(self, latents: Any) -> list[str | None]:
        """PNG data URLs of every run's decoding of its latents (``None`` entries are skipped)."""
        if not isinstance(latents, list) or len(latents) != len(self.runs):
            raise RequestError(f"'latents' must be a list of {len(self.runs)} latent vectors (one per run)")
        checked = [None if z is None else self.latents(i, z) for i, z in enumerate(latents)]
        with self.lock, torch.no_grad():
            return [None if item is None else png_data_url(self._decode(*item)) for item in checked]

    @staticmethod
    def _decode(run: ExploreRun, z: torch.Tensor) -> torch.Tensor:
        device = next(run.model.parameters()).device
        return to_image(run.model.decode(z.to(device)), run.likelihood)[0].cpu()


def _seed(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
        raise RequestError(f"'seed' must be an integer in [0, {MAX_SEED}], not {_shown(value)}")
    return value


def _number(value: Any, what: str) -> float:
    """``value`` as a finite float: JSON numbers only (an integer too large for a float is refused)."""
    number = float("nan")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):
            number = float(value)
    if not math.isfinite(number):
        raise RequestError(f"{what} must be a finite number, not {_shown(value)}")
    return number


def _shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a request may send a 4,000-digit number)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested past the recursion limit, or an int past the digit limit
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _count(value: Any) -> str:
    return f"{len(value)}" if isinstance(value, list) else _shown(value)


def _floats(z: torch.Tensor) -> list[float]:
    return [float(v) for v in z.cpu()]


def open_session(run_dirs: Sequence[str | Path], device: torch.device, seed: int = 0) -> ExploreSession:
    """Load run folders (one-line :class:`UserError` for a missing folder or checkpoint) and
    pair their latents."""
    runs: list[ExploreRun] = []
    for folder in run_dirs:
        runs.append(load_run(folder, device, {r.name for r in runs}))
    return ExploreSession(runs, seed)


__all__ = [
    "ExploreRun",
    "ExploreSession",
    "RequestError",
    "demo_run_dirs",
    "load_run",
    "open_session",
    "png_bytes",
    "png_data_url",
]
