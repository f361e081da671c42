"""``sbvae bench``: how fast this machine trains, renders and encodes, measured side by side.

Every candidate is timed in the same run, interleaved repeat by repeat, and the median is
reported, so a busy machine slows all of them alike and the ratios stay meaningful even when
the absolute numbers do not. What is measured:

* training images/s of the step ``sbvae train`` runs, :meth:`Trainer.train_step` itself
  (render a fresh batch, forward, backward, Adam step), for the SBD (the paper's: four 3x3
  layers of 64 channels on an unpadded grid) and the DeConv VAE, at 32 and 64 px and batch 16
  and 64; for the SBD also a straightforward reference kept here (tile z, concatenate the
  coordinates, one conv stack; swapped into the same step) and our model's speed as a ratio to
  it: ours as ``sbvae train`` runs it (factorised first layer, ``train.channels_last``), with
  the batch accumulated in micro-batches of 16 (``train.micro_batch``), optionally under
  ``torch.compile`` (``--compile``), and on one thread against all of them;
* achieved GFLOP/s: nominal FLOPs of a training step (3 x the straightforward forward pass's
  multiply-adds x 2) per second, against a large float32 matrix product timed in the same
  rounds on as many threads (the practical limit of the machine);
* the renderer against a per-image Pillow polygon renderer (how spriteworld and the peers
  draw), both anti-aliased by 4x4 supersampling, at 64 px;
* the 3D scenes' renderers (``objects_room``, ``chairs``) at 32 px (and 64), images/s of a
  batch of 64 looked up (what training gets once a combination has been drawn before) and
  ray-cast afresh (the first time), each against the training images/s of the default model
  (the ``default`` preset) at that size, timed on the sprite preset with as many channels
  (sprites render in a small part of the step, so the step is the model's);
* the default preset's training step under every objective (``objective.name``), as a cost
  ratio to beta-VAE's (FactorVAE's budget: 1.3x);
* evaluation encoding (render + encode, as the metrics do) against the encoder's forward pass;
* peak resident memory of a training step above the resting process (Linux ``VmHWM``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from sbvae.config import OBJECTIVES, Config, DataConfig, ModelConfig, TrainConfig, load_config
from sbvae.data import SceneDataset, make_dataset, make_generator
from sbvae.data.sprites import MARGIN, SHAPES, UNIT, hsv_to_rgb
from sbvae.errors import UserError
from sbvae.evaluation.sampling import GroundTruthSampler
from sbvae.models import VAE, SpatialBroadcastDecoder, build_vae
from sbvae.training.device import available_cores
from sbvae.training.loop import Trainer

PAPER_SBD = ModelConfig(decoder="sbd", sbd_layers=4, sbd_channels=64, sbd_kernel=3, broadcast="valid")
DECONV = ModelConfig(decoder="deconv")
MODELS = {"sbd": PAPER_SBD, "deconv": DECONV}
MICRO_BATCH = 16


class ReferenceSBD(nn.Module):
    """The Spatial Broadcast decoder as every public implementation writes it, sharing the
    weights of ``model``: tile z over the grid, concatenate the coordinates, run the convs."""

    coords: torch.Tensor

    def __init__(self, model: SpatialBroadcastDecoder) -> None:
        super().__init__()
        self.convs, self.grid_size = model.convs, model.grid_size
        self.register_buffer("coords", model.coords.clone(), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n, g = len(z), self.grid_size
        tiled = z[:, :, None, None].expand(n, z.shape[1], g, g)
        return self.convs(torch.cat([tiled, self.coords[None].expand(n, 2, g, g)], dim=1))


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run`` over ``repeats`` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        run()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def forward_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs (2 x multiply-adds) of the convolutions and linear layers in one forward pass."""
    total = 0

    def count(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += 2 * out.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        elif isinstance(module, nn.ConvTranspose2d):
            total += 2 * args[0].numel() * module.out_channels * math.prod(module.kernel_size)
        elif isinstance(module, nn.Linear):
            total += 2 * out.numel() * module.in_features

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    with torch.no_grad():
        model(*inputs)
    for hook in hooks:
        hook.remove()
    return total


BENCH_FOLDER = Path(tempfile.gettempdir()) / "sbvae-bench"
"""The run folder the benchmark's Trainers are given; a Trainer writes only in ``save()``,
which the benchmark never calls, so nothing is written there."""


def bench_config(model: ModelConfig, size: int, batch: int, **train: Any) -> Config:
    """``model`` on coloured sprites at ``size`` px, batch ``batch``; ``train`` overrides further
    ``train.*`` fields (``micro_batch``, ``channels_last``, ``compile``)."""
    return Config(
        data=DataConfig(preset="colored_sprites", image_size=size),
        model=model,
        train=TrainConfig(batch_size=batch, **train),
    )


def straightforward(model: VAE) -> VAE:
    """Swap ``model``'s SBD decoder, in place, for :class:`ReferenceSBD` on the same weights
    (a DeConv decoder stays); returns ``model``."""
    if isinstance(model.decoder, SpatialBroadcastDecoder):
        model.decoder = ReferenceSBD(model.decoder)
    return model


@functools.cache
def nominal_flops(decoder: str, size: int) -> float:
    """FLOPs per image of a training step (3 x the forward pass) of the straightforward model."""
    model = straightforward(build_vae(MODELS[decoder], size, 3))
    latent_dim = MODELS[decoder].latent_dim
    return 3 * forward_flops(model, torch.zeros(1, 3, size, size), torch.zeros(1, latent_dim))


@dataclass
class TrainCase:
    """One training configuration to time: ``Trainer.train_step`` of a Trainer built from
    ``config`` (the step ``sbvae train`` runs), built on first use."""

    name: str
    config: Config
    reference: bool = False  # the straightforward SBD swapped in (plain NCHW, as peers run it)
    threads: int = 0  # run with this many threads (0: the process's setting)

    @functools.cached_property
    def trainer(self) -> Trainer:
        trainer = Trainer(self.config, BENCH_FOLDER, torch.device("cpu"))
        if self.reference:
            straightforward(trainer.model)  # the optimizer's parameters are shared, so unchanged
        return trainer

    @property
    def batch_size(self) -> int:
        return self.config.train.batch_size

    @property
    def flops_per_image(self) -> float:
        """Nominal, of the straightforward model."""
        return nominal_flops(self.config.model.decoder, self.config.data.image_size)

    def step(self) -> None:
        saved = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            self.trainer.train_step()
        finally:
            torch.set_num_threads(saved)


def train_cases(
    sizes: list[int], batches: list[int], compiled: bool = False, thread_sweep: bool = False
) -> list[TrainCase]:
    """At every size and batch: the reference SBD, ours (factorised first layer, channels
    last), ours in micro-batches of 16, DeConv; optionally ours compiled, and ours in
    micro-batches on one thread (against all threads) at the largest size and batch."""
    cases = []
    for size in sizes:
        for batch in batches:
            tag = f"{size}px b{batch}"
            micro = MICRO_BATCH if batch > MICRO_BATCH else 0
            chunked = f"sbd-micro{micro}" if micro else "sbd"
            cases += [
                TrainCase(
                    f"sbd-reference {tag}", bench_config(PAPER_SBD, size, batch, channels_last=False), reference=True
                ),
                TrainCase(f"sbd {tag}", bench_config(PAPER_SBD, size, batch)),
            ]
            if micro:
                cases.append(TrainCase(f"{chunked} {tag}", bench_config(PAPER_SBD, size, batch, micro_batch=micro)))
            if compiled:
                cases.append(
                    TrainCase(
                        f"{chunked}-compiled {tag}",
                        bench_config(PAPER_SBD, size, batch, micro_batch=micro, compile=True),
                    )
                )
            cases.append(TrainCase(f"deconv {tag}", bench_config(DECONV, size, batch)))
            if thread_sweep and size == max(sizes) and batch == max(batches) and torch.get_num_threads() > 1:
                cases.append(
                    TrainCase(
                        f"{chunked}-1thread {tag}", bench_config(PAPER_SBD, size, batch, micro_batch=micro), threads=1
                    )
                )
    return cases


SCENES = {"objects_room": "colored_sprites", "chairs": "dsprites"}
"""Each 3D scene, and the sprite preset with as many channels on which the default model's
training step is timed beside it."""
SCENE_BATCH = 64


@dataclass
class SceneCase:
    """A scene's renderer at ``size`` px on a fixed batch of factor values, looked up or
    ray-cast afresh, and the default model's training step at that size."""

    preset: str
    size: int

    @functools.cached_property
    def data(self) -> SceneDataset:
        data = make_dataset(self.preset, self.size)
        assert isinstance(data, SceneDataset)
        return data

    @functools.cached_property
    def values(self) -> torch.Tensor:
        return self.data.factors.sample(SCENE_BATCH, make_generator(0, "bench-scene"))

    @functools.cached_property
    def training(self) -> TrainCase:
        sprites = SCENES[self.preset]
        config = load_config("default", [f"data.preset={sprites}", f"data.image_size={self.size}"])
        return TrainCase(f"default model on {sprites} {self.size}px", config)

    def look_up(self) -> None:
        self.data.render(self.values)  # ray-cast on the first call (the warm-up), looked up after

    def cast(self) -> None:
        self.data.renderer.cast(self.values)


FACTOR_VAE_BUDGET = 1.3
"""The most a FactorVAE step may cost, as a multiple of a beta-VAE step of the same model."""


def objective_cases() -> list[TrainCase]:
    """The default preset's training step under every objective, beta-VAE first."""
    return [TrainCase(f"{name} default", load_config("default", [f"objective.name={name}"])) for name in OBJECTIVES]


def scene_cases(sizes: list[int]) -> list[SceneCase]:
    return [SceneCase(preset, size) for size in sizes for preset in SCENES]


def peak_step_memory_mb(decoder: str, size: int, batch: int) -> float | None:
    """Peak RSS of one training step above the process's RSS just before it, in MB, measured
    in a fresh Python process (so no earlier case's cached memory hides it); None off Linux."""
    probe = [sys.executable, "-m", "sbvae.bench", "memory-probe", decoder, str(size), str(batch)]
    # Large blocks straight from and back to the OS, so resident memory follows live tensors.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "SBVAE_BENCH_THREADS": str(torch.get_num_threads())}
    done = subprocess.run(probe, check=False, capture_output=True, text=True, timeout=600, env=env)
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _memory_probe(decoder: str, size: int, batch: int) -> float:
    """Run inside the fresh process: build one case, take a step (one-time allocations: Adam's
    state, kernel caches), reset the peak, take another step."""
    case = next(c for c in train_cases([size], [batch]) if c.name == f"{decoder} {size}px b{batch}")
    torch.set_num_threads(int(os.environ.get("SBVAE_BENCH_THREADS", torch.get_num_threads())))
    case.step()
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kb("VmRSS")
    case.step()
    return (_status_kb("VmHWM") - before) / 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def pillow_render(values: torch.Tensor, names: tuple[str, ...], size: int, supersample: int = 4) -> np.ndarray:
    """Draw each sprite on its own Pillow canvas at ``supersample`` x the size, as polygons,
    then box-filter down (the straightforward per-image renderer the benchmark compares to)."""
    col = {n: i for i, n in enumerate(names)}
    fine = size * supersample
    out = np.zeros((len(values), size, size, 3), dtype=np.uint8)
    rgb = hsv_to_rgb(
        values[:, col["hue"]].float(), values[:, col["saturation"]].float(), values[:, col["value"]].float()
    )
    for i, v in enumerate(values.tolist()):
        image = Image.new("RGB", (fine, fine))
        radius = v[col["scale"]] * UNIT * fine
        cx, cy = ((MARGIN + (1 - 2 * MARGIN) * v[col[k]]) * fine for k in ("x", "y"))
        angle = v[col["orientation"]]
        outline = _unit_outline(SHAPES[int(v[col["shape"]])])
        cos, sin = math.cos(angle), math.sin(angle)
        points = [(cx + radius * (cos * u - sin * w), cy + radius * (sin * u + cos * w)) for u, w in outline]
        ImageDraw.Draw(image).polygon(points, fill=tuple(int(255 * c) for c in rgb[i].tolist()))
        out[i] = np.asarray(image.resize((size, size), Image.Resampling.BOX))
    return out


def _unit_outline(shape: str, count: int = 48) -> list[tuple[float, float]]:
    """A polygon close to the renderer's unit shape: area 4, centre of mass at the origin."""
    if shape == "square":
        return [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    t = np.linspace(0, 2 * math.pi, count, endpoint=False)
    if shape == "ellipse":
        b = math.sqrt(2 / math.pi)
        u, w = 2 * b * np.cos(t), b * np.sin(t)
    else:  # the classic heart curve, pointing down (+y) like the renderer's
        u = np.sin(t) ** 3
        w = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)) / 16
    cross = u * np.roll(w, -1) - np.roll(u, -1) * w  # shoelace terms
    area = cross.sum() / 2
    cu = ((u + np.roll(u, -1)) * cross).sum() / (6 * area)
    cw = ((w + np.roll(w, -1)) * cross).sum() / (6 * area)
    k = math.sqrt(4 / abs(area))
    return list(zip(((u - cu) * k).tolist(), ((w - cw) * k).tolist()))


def machine_load() -> tuple[float, int]:
    cores = available_cores()
    return os.getloadavg()[0], cores


MATMUL_SIZE = 3072


def _matmul(threads: int = 0) -> Callable[[], object]:
    """One float32 ``MATMUL_SIZE``-square matrix product (on ``threads`` threads if given)."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)

    def run() -> object:
        saved = torch.get_num_threads()
        torch.set_num_threads(threads or saved)
        out = a @ b
        torch.set_num_threads(saved)
        return out

    return run


def run_benchmark(
    quick: bool = False, repeats: int | None = None, compiled: bool = False, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Measure everything in the module docstring; returns the numbers (also what the table
    shows). ``compiled`` adds our SBD under ``torch.compile`` (``train.compile``)."""
    repeats = repeats or (3 if quick else 5)
    load, cores = machine_load()
    if load > 0.5:
        log(
            f"warning: the machine is busy (load {load:.1f} on {cores} cores): the ratios below are "
            "measured side by side and stay meaningful, the absolute rates do not"
            + (
                "; threads that share busy cores wait for each other (compare the 1-thread row)"
                if torch.get_num_threads() > 1
                else ""
            )
        )
    sizes, batches = ([32], [16, 64]) if quick else ([32, 64], [16, 64])
    cases = train_cases(sizes, batches, compiled=compiled, thread_sweep=True)
    timed: dict[str, Callable[[], object]] = {c.name: c.step for c in cases}
    scenes = scene_cases(sizes)
    for scene in scenes:
        timed[f"look up {scene.preset} {scene.size}px"] = scene.look_up
        timed[f"ray-cast {scene.preset} {scene.size}px"] = scene.cast
        timed.setdefault(scene.training.name, scene.training.step)
    objectives = objective_cases()
    timed.update({c.name: c.step for c in objectives})
    timed["matmul"] = _matmul()
    if any(c.threads for c in cases):
        timed["matmul-1thread"] = _matmul(1)
    for name, run in timed.items():  # warm-up (and compilation)
        tick = time.perf_counter()
        run()
        if time.perf_counter() - tick > 5:
            log(f"{name}: first step {time.perf_counter() - tick:.0f} s (compilation)")
    times: dict[str, list[float]] = {name: [] for name in timed}
    for r in range(repeats):  # interleaved: every case once per round
        for name, run in timed.items():
            tick = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - tick)
        log(f"round {r + 1}/{repeats} done")
    flops = 2 * MATMUL_SIZE**3
    peak = flops / statistics.median(times["matmul"]) / 1e9
    one = times.get("matmul-1thread")
    peak_one = flops / statistics.median(one) / 1e9 if one else peak  # 1 thread is only timed when a case uses it
    train: dict[str, dict[str, Any]] = {}
    for c in cases:
        rate = c.batch_size / statistics.median(times[c.name])
        decoder, size, batch_text = c.name.split()
        plain = not (c.config.train.compile or c.threads)  # the memory probe rebuilds only the plain cases
        gflops = c.flops_per_image * rate / 1e9
        memory = peak_step_memory_mb(decoder, int(size[:-2]), int(batch_text[1:])) if plain else None
        train[c.name] = {
            "images_per_sec": rate,
            "gflops": gflops,
            "fraction_of_matmul": gflops / (peak_one if c.threads == 1 else peak),
            "peak_step_mb": memory,
        }
    for c in cases:
        kind, tag = c.name.split(" ", 1)
        if kind.startswith("sbd") and kind != "sbd-reference":
            ref = train[f"sbd-reference {tag}"]
            train[c.name]["speedup_vs_reference"] = train[c.name]["images_per_sec"] / ref["images_per_sec"]

    scene_rates: dict[str, dict[str, Any]] = {}
    for scene in scenes:
        tag = f"{scene.preset} {scene.size}px"
        training = scene.training.batch_size / statistics.median(times[scene.training.name])
        looked_up = SCENE_BATCH / statistics.median(times[f"look up {tag}"])
        cast = SCENE_BATCH / statistics.median(times[f"ray-cast {tag}"])
        scene_rates[tag] = {
            "looked_up_images_per_sec": looked_up,
            "ray_cast_images_per_sec": cast,
            "training_images_per_sec": training,
            "training_case": scene.training.name,
            "looked_up_vs_training": looked_up / training,
            "ray_cast_vs_training": cast / training,
        }

    beta_vae = statistics.median(times[objectives[0].name])
    objective_costs = {
        c.name.split()[0]: {
            "images_per_sec": c.batch_size / statistics.median(times[c.name]),
            "step_cost_vs_beta_vae": statistics.median(times[c.name]) / beta_vae,
        }
        for c in objectives
    }

    data = make_dataset("colored_sprites", 64)
    values = data.factors.sample(256, make_generator(0, "bench-render"))
    ours = 256 / median_seconds(lambda: data.render(values), repeats)
    few = values[:32]
    pillow = 32 / median_seconds(lambda: pillow_render(few, data.factor_names, 64), repeats)

    model = build_vae(PAPER_SBD, 64, 3).eval()
    sampler = GroundTruthSampler(data, model, torch.device("cpu"))
    batch = data.render(values)
    with torch.inference_mode():
        forward = 256 / median_seconds(lambda: model.encoder(batch), repeats)
    encode = 256 / median_seconds(lambda: sampler.encode_values(values), repeats)
    return {
        "load": load,
        "cores": cores,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "torch": torch.__version__,
        "matmul_gflops": peak,
        "matmul_gflops_1thread": peak_one,
        "train": train,
        "render_64px": {"ours_images_per_sec": ours, "pillow_images_per_sec": pillow, "ratio": ours / pillow},
        "scenes": scene_rates,
        "objectives": objective_costs,
        "encode_64px": {
            "render_and_encode_images_per_sec": encode,
            "encoder_forward_images_per_sec": forward,
            "ratio": encode / forward,
        },
    }


def recipe_config(spec: str) -> Config:
    """A recipe as ``sbvae bench --recipe`` takes it: a preset or YAML file, then optional
    ``key=value`` overrides, separated by spaces (``"default model.sbd_channels=32"``)."""
    if not spec.split():
        raise UserError("--recipe is empty: give a preset or YAML file, then optional key=value overrides")
    name, *overrides = spec.split()
    return load_config(name, overrides)


def recipe_benchmark(
    specs: list[str], repeats: int = 5, log: Callable[[str], None] = print
) -> dict[str, dict[str, Any]]:
    """Training images/s of each recipe and of the ``default`` preset, timed interleaved in the
    same rounds (``Trainer.train_step``, on this process's threads), so a run's training seconds
    can be computed as its images seen over its recipe's rate, whatever else the machine was
    doing while it trained. Returns ``{spec: {"images_per_sec", "vs_default"}}``."""
    cases = [TrainCase(spec, recipe_config(spec)) for spec in dict.fromkeys(["default", *specs])]
    for case in cases:  # warm-up
        case.step()
    times: dict[str, list[float]] = {c.name: [] for c in cases}
    for r in range(repeats):
        for case in cases:
            tick = time.perf_counter()
            case.step()
            times[case.name].append(time.perf_counter() - tick)
        log(f"round {r + 1}/{repeats} done")
    rates = {c.name: c.batch_size / statistics.median(times[c.name]) for c in cases}
    return {name: {"images_per_sec": rate, "vs_default": rate / rates["default"]} for name, rate in rates.items()}


def format_recipes(result: dict[str, dict[str, Any]]) -> str:
    """The recipe comparison as a Markdown table."""
    lines = ["| recipe | training images/s | vs default |", "| --- | ---: | ---: |"]
    lines += [f"| {n} | {r['images_per_sec']:,.0f} | {r['vs_default']:.2f}x |" for n, r in result.items()]
    return "\n".join(lines)


def format_report(result: dict[str, Any]) -> str:
    """The benchmark as a Markdown table (what ``sbvae bench`` prints)."""
    peak = result["matmul_gflops"]
    one = result.get("matmul_gflops_1thread")
    lines = [
        f"float32 matrix product: {peak:.0f} GFLOP/s ({result['threads']} threads"
        + (f"; {one:.0f} on 1 thread" if one else "")
        + f"), load {result['load']:.1f} on {result['cores']} cores, median of {result['repeats']}",
        "",
        "| training | images/s | GFLOP/s | % of matmul | vs reference SBD | step peak MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["train"].items():
        speedup = f"{row['speedup_vs_reference']:.2f}x" if "speedup_vs_reference" in row else ""
        mb = f"{row['peak_step_mb']:.0f}" if row["peak_step_mb"] is not None else "n/a"
        lines.append(
            f"| {name} | {row['images_per_sec']:.0f} | {row['gflops']:.1f} | "
            f"{100 * row['fraction_of_matmul']:.0f}% | {speedup} | {mb} |"
        )
    if result.get("scenes"):
        lines += [
            "",
            "| 3D scene, 4x4 supersampling | looked up, images/s | ray-cast, images/s | default model trains, "
            "images/s | looked up / training | ray-cast / training |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, row in result["scenes"].items():
            lines.append(
                f"| {name} | {row['looked_up_images_per_sec']:,.0f} | {row['ray_cast_images_per_sec']:,.0f} | "
                f"{row['training_images_per_sec']:,.0f} | {row['looked_up_vs_training']:,.0f}x | "
                f"{row['ray_cast_vs_training']:.1f}x |"
            )
    if result.get("objectives"):
        lines += ["", "| objective, default preset | images/s | step cost vs beta_vae |", "| --- | ---: | ---: |"]
        for name, row in result["objectives"].items():
            budget = f" (budget {FACTOR_VAE_BUDGET}x)" if name == "factor_vae" else ""
            lines.append(f"| {name} | {row['images_per_sec']:,.0f} | {row['step_cost_vs_beta_vae']:.2f}x{budget} |")
    r, e = result["render_64px"], result["encode_64px"]
    lines += [
        "",
        (
            f"renderer, 64 px, 4x4 supersampling: {r['ours_images_per_sec']:,.0f} images/s; per-image "
            f"Pillow: {r['pillow_images_per_sec']:,.0f} images/s ({r['ratio']:.1f}x)"
        ),
        (
            f"evaluation encoding, 64 px: {e['render_and_encode_images_per_sec']:,.0f} images/s "
            f"(render + encode); encoder forward alone {e['encoder_forward_images_per_sec']:,.0f} "
            f"images/s ({e['ratio']:.2f} of it)"
        ),
    ]
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__" and sys.argv[1:2] == ["memory-probe"]:
    print(_memory_probe(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
