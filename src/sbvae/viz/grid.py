"""Image grids from tensors (no torchvision needed)."""

from __future__ import annotations

import numpy as np
import torch


def make_grid(images: torch.Tensor, rows: int, pad: int = 1, pad_value: float = 0.3) -> torch.Tensor:
    """Tile ``[N, C, H, W]`` images row by row into one ``[C, H', W']`` image.

    ``N`` must be a multiple of ``rows``. One-channel images are repeated to RGB.
    """
    n, c, h, w = images.shape
    if n % rows:
        raise ValueError(f"{n} images do not fill {rows} rows")
    cols = n // rows
    if c == 1:
        images, c = images.repeat(1, 3, 1, 1), 3
    out = torch.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value)
    for i, image in enumerate(images.detach().float().cpu()):
        r, col = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        out[:, top : top + h, left : left + w] = image
    return out


def to_uint8(image: torch.Tensor, upscale: int = 1) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] -> ``[H * upscale, W * upscale, C]`` uint8, nearest neighbour."""
    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if upscale > 1:
        array = array.repeat(upscale, axis=0).repeat(upscale, axis=1)
    return array
