"""Animated traversals: every latent moves at once, one row per latent, one column per input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from sbvae.models import VAE
from sbvae.objectives import ACTIVE_KL
from sbvae.training.run_folder import atomic_write_bytes
from sbvae.viz.figures import kl_order, traversal_images
from sbvae.viz.grid import make_grid, to_uint8

LABEL_WIDTH = 150  # pixels of the left margin holding the latent names


def sweep(span: float, frames: int) -> torch.Tensor:
    """Offsets ``-span -> +span -> -span`` in ``frames`` steps (a seamless loop)."""
    half = max(2, frames // 2 + 1)
    up = torch.linspace(-span, span, half)
    return torch.cat([up, up.flip(0)[1:-1]])


@torch.no_grad()
def traversal_frames(
    model: VAE, images: torch.Tensor, kl_per_dim: torch.Tensor, likelihood: str, span: float = 2.0, frames: int = 24
) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """``([T, C, H', W'] grids in [0, 1], latent order, offsets)``: frame ``t`` moves every
    latent (row, highest KL first) by ``offsets[t]`` from each input's (column) posterior mean."""
    means, _ = model.encoder(images)
    order = kl_order(kl_per_dim)
    offsets = sweep(span, frames)
    decoded = traversal_images(model, means, order, offsets, likelihood)  # [rows, T, n, C, H, W]
    grids = torch.stack([make_grid(decoded[:, t].flatten(0, 1), rows=len(order)) for t in range(len(offsets))])
    return grids, order, offsets


def _annotate(frame: np.ndarray, order: list[int], kl_per_dim: torch.Tensor, offset: float) -> Image.Image:
    """The frame with a left margin naming each row's latent and the current offset on top."""
    height, width = frame.shape[:2]
    canvas = Image.new("RGB", (width + LABEL_WIDTH, height + 18), (255, 255, 255))
    canvas.paste(Image.fromarray(frame), (LABEL_WIDTH, 18))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), f"offset from posterior mean {offset:+.2f}", fill=(0, 0, 0))
    row_height = height / len(order)
    for r, dim in enumerate(order):
        kl = float(kl_per_dim[dim])
        text = f"z{dim} KL {kl:.2f}" + ("" if kl >= ACTIVE_KL else " off")
        draw.text((4, 18 + (r + 0.5) * row_height - 6), text, fill=(0, 0, 0) if kl >= ACTIVE_KL else (150, 150, 150))
    return canvas


def traversal_gif(
    model: VAE,
    images: torch.Tensor,
    kl_per_dim: torch.Tensor,
    likelihood: str,
    path: Path,
    span: float = 2.0,
    frames: int = 24,
    duration_ms: int = 120,
) -> None:
    """Save the animated traversal of ``images`` (a few inputs) as a looping GIF."""
    grids, order, offsets = traversal_frames(model, images, kl_per_dim, likelihood, span, frames)
    upscale = max(1, 64 // images.shape[-1])
    pictures = [_annotate(to_uint8(g, upscale), order, kl_per_dim, float(o)) for g, o in zip(grids, offsets)]
    atomic_write_bytes(
        path,
        lambda handle: pictures[0].save(
            handle, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0
        ),
    )
