"""The sprite renderer: its error against 16x16 supersampling, and its speed against sampling
every pixel (the renderer before issue 28), side by side in one process.

    .venv/bin/python benchmarks/sprite_renderer.py [--sprites 5000] [--repeats 7] [--threads N]

Accuracy: for every sprite preset at 32 and 64 px, ``--sprites`` random sprites drawn from the
preset's factors; per pixel, the mean and largest absolute difference from the same sprites
sampled at 16 x 16 points a pixel; per sprite, the largest relative difference in area and the
largest distance between the centres of mass, in pixels.

Speed: images/s of the renderer and of the same renderer sampling every pixel of the window
(``sample_all=True``: the same images), timed in interleaved rounds (median), on the batch
``sbvae bench`` renders (``colored_sprites``, 64 px, 256 images), on the default training batch
(32 px, 32 images) and at 8 x 8 samples a pixel.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sbvae.data import PRESETS, make_dataset, make_generator
from sbvae.data.dataset import SpriteDataset
from sbvae.data.sprites import SpriteRenderer

SPRITE_PRESETS = [name for name in PRESETS if isinstance(make_dataset(name, 8), SpriteDataset)]


def factors_of(preset: str, size: int, n: int, purpose: str) -> tuple[SpriteDataset, dict[str, torch.Tensor]]:
    data = make_dataset(preset, size)
    assert isinstance(data, SpriteDataset)
    values = data.factors.sample(n, make_generator(0, purpose))
    return data, {name: values[:, i] for i, name in enumerate(data.factor_names)}


def centre_of_mass(cover: torch.Tensor) -> torch.Tensor:
    centres = torch.arange(cover.shape[-1], dtype=cover.dtype) + 0.5
    mass = cover.sum((1, 2))
    return torch.stack([(cover.sum(1) * centres).sum(1), (cover.sum(2) * centres).sum(1)], dim=1) / mass[:, None]


def accuracy(preset: str, size: int, sprites: int) -> dict[str, float]:
    """Errors of the preset's renderer against 16x16 supersampling, in chunks of 200 sprites."""
    data, factors = factors_of(preset, size, sprites, "renderer accuracy")
    reference = SpriteRenderer(size, 1, 16, sample_all=True)
    total, largest, area, centre = 0.0, 0.0, 0.0, 0.0
    for start in range(0, sprites, 200):
        part = {k: v[start : start + 200] for k, v in factors.items()}
        cover, exact = data.renderer.coverage(part, "cpu"), reference.coverage(part, "cpu")
        error = (cover - exact).abs()
        total += float(error.sum())
        largest = max(largest, float(error.max()))
        area = max(area, float((cover.sum((1, 2)) / exact.sum((1, 2)) - 1).abs().max()))
        centre = max(centre, float((centre_of_mass(cover) - centre_of_mass(exact)).norm(dim=1).max()))
    return {"mean": total / (sprites * size * size), "max": largest, "area": area, "centre": centre}


def interleaved_rates(
    renderers: dict[str, SpriteRenderer], factors: dict[str, torch.Tensor], repeats: int
) -> dict[str, float]:
    """Images/s of each renderer drawing ``factors``, each timed once a round for ``repeats``
    rounds after a warm-up: the median."""
    times: dict[str, list[float]] = {name: [] for name in renderers}
    for renderer in renderers.values():
        renderer.render(factors)
    for _ in range(repeats):
        for name, renderer in renderers.items():
            tick = time.perf_counter()
            renderer.render(factors)
            times[name].append(time.perf_counter() - tick)
    return {name: len(factors["x"]) / statistics.median(seconds) for name, seconds in times.items()}


def speed(repeats: int) -> None:
    for size, batch, supersample in ((64, 256, 4), (32, 32, 4), (64, 256, 8)):
        _, factors = factors_of("colored_sprites", size, batch, "bench-render")
        edge, every = (SpriteRenderer(size, 3, supersample, sample_all=all_) for all_ in (False, True))
        rates = interleaved_rates({"edge": edge, "every": every}, factors, repeats)
        print(
            f"{size} px, batch {batch}, {supersample}x{supersample} samples: renderer {rates['edge']:,.0f} images/s, "
            f"sampling every pixel {rates['every']:,.0f} images/s: {rates['edge'] / rates['every']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sprites", type=int, default=5000, help="0: speed only")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.sprites:
        print(f"\nagainst 16x16 supersampling, {args.sprites} random sprites a preset:")
        print("| preset | px | mean abs. pixel error | max abs. pixel error | max area error | max centre shift, px |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for preset in SPRITE_PRESETS:
            for size in (32, 64):
                e = accuracy(preset, size, args.sprites)
                print(
                    f"| {preset} | {size} | {e['mean']:.5f} | {e['max']:.3f} | {100 * e['area']:.1f}% "
                    f"| {e['centre']:.3f} |"
                )
    print()
    speed(args.repeats)


if __name__ == "__main__":
    main()
