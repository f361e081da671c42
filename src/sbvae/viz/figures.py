"""The two pictures every training run ends with: reconstructions and latent traversals."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from sbvae.models import VAE  # noqa: E402
from sbvae.objectives import to_image  # noqa: E402
from sbvae.viz.grid import make_grid, to_uint8  # noqa: E402

ACTIVE_KL = 0.1
"""A latent whose mean KL (nats) is below this is marked inactive."""


def _upscale_for(size: int) -> int:
    return max(1, 128 // size)


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Save a figure through a temporary file so a good earlier picture is never half-replaced."""
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


@torch.no_grad()
def reconstructions_figure(model: VAE, images: torch.Tensor, likelihood: str, path: Path) -> None:
    """Inputs (top row) over reconstructions from the posterior mean (bottom row)."""
    mean, _ = model.encoder(images)
    outputs = to_image(model.decode(mean), likelihood)
    grid = make_grid(torch.cat([images, outputs]).cpu(), rows=2)
    n = len(images)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * n), 2.8))
    ax.imshow(to_uint8(grid, _upscale_for(images.shape[-1])), interpolation="nearest")
    ax.set_yticks([grid.shape[1] * _upscale_for(images.shape[-1]) * f for f in (0.25, 0.75)])
    ax.set_yticklabels(["input", "reconstruction"])
    ax.set_xticks([])
    ax.set_title("Reconstructions (posterior mean)")
    save_figure(fig, path)


@torch.no_grad()
def traversals_figure(model: VAE, image: torch.Tensor, kl_per_dim: torch.Tensor, likelihood: str,
                      path: Path, low: float = -2.0, high: float = 2.0, steps: int = 9) -> None:
    """One row per latent, most informative (highest KL) first; each row sets that latent to
    ``steps`` values from ``low`` to ``high`` with the others at ``image``'s posterior mean."""
    mean, _ = model.encoder(image[None])
    order = torch.argsort(kl_per_dim.cpu(), descending=True)
    values = torch.linspace(low, high, steps, device=mean.device)
    codes = mean.repeat(len(order) * steps, 1)
    for row, dim in enumerate(order.tolist()):
        codes[row * steps : (row + 1) * steps, dim] = values
    frames = to_image(model.decode(codes), likelihood).cpu()
    up = _upscale_for(image.shape[-1])
    grid = make_grid(frames, rows=len(order))
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * steps, 0.9 * len(order) + 0.8))
    ax.imshow(to_uint8(grid, up), interpolation="nearest")
    row_height = grid.shape[1] * up / len(order)
    col_width = grid.shape[2] * up / steps
    ax.set_yticks([(r + 0.5) * row_height for r in range(len(order))])
    labels = []
    for dim in order.tolist():
        kl = float(kl_per_dim[dim])
        labels.append(f"z{dim}  KL {kl:.2f}" + ("" if kl >= ACTIVE_KL else " (inactive)"))
    ax.set_yticklabels(labels)
    ax.set_xticks([(c + 0.5) * col_width for c in range(steps)])
    ax.set_xticklabels([f"{v:+.1f}" for v in values.tolist()])
    ax.set_xlabel("latent value (others at the posterior mean)")
    ax.set_title("Latent traversals, ordered by KL")
    save_figure(fig, path)
