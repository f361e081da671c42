"""Pictures of one model: reconstructions, traversals, prior samples, KL per latent.

Every figure of sbvae is a :class:`matplotlib.figure.Figure` drawn and saved directly, without
pyplot: no backend is selected or changed, so importing sbvae in a notebook leaves its backend
as it was, and no figure lingers in pyplot's global state.
"""

from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from sbvae.models import VAE
from sbvae.objectives import ACTIVE_KL, to_image
from sbvae.training.run_folder import atomic_write_bytes
from sbvae.viz.grid import make_grid, to_uint8


def _upscale_for(size: int) -> int:
    return max(1, 128 // size)


def save_figure(fig: Figure, path: Path) -> None:
    """Save ``fig`` atomically (format from the suffix), so a good earlier picture is never
    half-replaced."""
    fmt = path.suffix.lstrip(".") or "png"
    atomic_write_bytes(path, lambda handle: fig.savefig(handle, format=fmt, dpi=100, bbox_inches="tight"))


@torch.no_grad()
def reconstructions_figure(model: VAE, images: torch.Tensor, likelihood: str, path: Path) -> None:
    """Inputs (top row) over reconstructions from the posterior mean (bottom row)."""
    mean, _ = model.encoder(images)
    outputs = to_image(model.decode(mean), likelihood)
    grid = make_grid(torch.cat([images, outputs]).cpu(), rows=2)
    n = len(images)
    fig = Figure(figsize=(max(4.0, 1.1 * n), 2.8))
    ax = fig.subplots()
    ax.imshow(to_uint8(grid, _upscale_for(images.shape[-1])), interpolation="nearest")
    ax.set_yticks([grid.shape[1] * _upscale_for(images.shape[-1]) * f for f in (0.25, 0.75)])
    ax.set_yticklabels(["input", "reconstruction"])
    ax.set_xticks([])
    ax.set_title("Reconstructions (posterior mean)")
    save_figure(fig, path)


def kl_order(kl_per_dim: torch.Tensor) -> list[int]:
    """Latent indices, most informative (highest KL) first."""
    return torch.argsort(torch.as_tensor(kl_per_dim).cpu(), descending=True, stable=True).tolist()


def latent_labels(kl_per_dim: torch.Tensor, order: list[int]) -> list[str]:
    """``z3  KL 2.41`` per latent in ``order``, marking latents below ``ACTIVE_KL``."""
    return [
        f"z{d}  KL {float(kl_per_dim[d]):.2f}" + ("" if float(kl_per_dim[d]) >= ACTIVE_KL else " (inactive)")
        for d in order
    ]


@torch.no_grad()
def traversal_images(
    model: VAE, means: torch.Tensor, order: list[int], offsets: torch.Tensor, likelihood: str
) -> torch.Tensor:
    """Decoded traversals ``[len(order), len(offsets), len(means), C, H, W]`` in [0, 1].

    Entry ``[r, t, i]`` is input ``i``'s posterior mean with latent ``order[r]`` moved by
    ``offsets[t]`` (all other latents unchanged).
    """
    rows, steps, n = len(order), len(offsets), len(means)
    codes = means[None, None].repeat(rows, steps, 1, 1)  # [rows, steps, n, D]
    for r, dim in enumerate(order):
        codes[r, :, :, dim] += offsets.to(means.device)[:, None]
    images = to_image(model.decode(codes.reshape(rows * steps * n, -1)), likelihood)
    return images.reshape(rows, steps, n, *images.shape[1:]).clamp(0, 1).cpu()


@torch.no_grad()
def traversals_figure(
    model: VAE,
    image: torch.Tensor,
    kl_per_dim: torch.Tensor,
    likelihood: str,
    path: Path,
    span: float = 2.0,
    steps: int = 9,
) -> None:
    """One row per latent, highest KL first; each row moves that latent from ``-span`` to
    ``+span`` around ``image``'s posterior mean, the other latents staying at the mean."""
    mean, _ = model.encoder(image[None])
    order = kl_order(kl_per_dim)
    offsets = torch.linspace(-span, span, steps)
    frames = traversal_images(model, mean, order, offsets, likelihood)[:, :, 0]
    up = _upscale_for(image.shape[-1])
    grid = make_grid(frames.flatten(0, 1), rows=len(order))
    fig = Figure(figsize=(1.0 + 0.9 * steps, 0.9 * len(order) + 0.8))
    ax = fig.subplots()
    ax.imshow(to_uint8(grid, up), interpolation="nearest")
    row_height = grid.shape[1] * up / len(order)
    col_width = grid.shape[2] * up / steps
    ax.set_yticks([(r + 0.5) * row_height for r in range(len(order))])
    ax.set_yticklabels(latent_labels(kl_per_dim, order))
    ax.set_xticks([(c + 0.5) * col_width for c in range(steps)])
    ax.set_xticklabels([f"{v:+.1f}" for v in offsets.tolist()])
    ax.set_xlabel("offset from the posterior mean (other latents at the mean)")
    ax.set_title("Latent traversals, ordered by KL")
    save_figure(fig, path)


@torch.no_grad()
def prior_samples_figure(model: VAE, likelihood: str, path: Path, count: int = 32, seed: int = 0) -> None:
    """Decoded draws from the prior N(0, I)."""
    device = next(model.parameters()).device
    z = torch.randn(count, model.encoder.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    images = to_image(model.decode(z), likelihood).cpu()
    rows = max(1, count // 8)
    grid = make_grid(images[: rows * (count // rows)], rows=rows)
    fig = Figure(figsize=(9, 1.2 * rows + 0.6))
    ax = fig.subplots()
    ax.imshow(to_uint8(grid, _upscale_for(images.shape[-1])), interpolation="nearest")
    ax.axis("off")
    ax.set_title("Samples from the prior (z ~ N(0, I), decoded)")
    save_figure(fig, path)


def kl_figure(kl_per_dim: torch.Tensor, path: Path) -> None:
    """Mean KL of every latent (nats per image), highest first, inactive ones greyed."""
    order = kl_order(kl_per_dim)
    values = [float(kl_per_dim[d]) for d in order]
    colours = ["tab:blue" if v >= ACTIVE_KL else "lightgrey" for v in values]
    fig = Figure(figsize=(1.0 + 0.5 * len(order), 3.2))
    ax = fig.subplots()
    ax.bar(range(len(order)), values, color=colours)
    ax.axhline(ACTIVE_KL, color="grey", linestyle=":", linewidth=1, label=f"active threshold {ACTIVE_KL}")
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"z{d}" for d in order])
    ax.set_ylabel("KL (nats per image)")
    ax.set_title(f"KL per latent: {sum(v >= ACTIVE_KL for v in values)} of {len(order)} active")
    ax.legend(fontsize=8)
    save_figure(fig, path)
