"""A picture of a dataset: sample images captioned with their exact factors."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.figure import Figure

from sbvae.data import Batch, Dataset, GroundTruthDataset
from sbvae.viz.figures import save_figure
from sbvae.viz.grid import make_grid, to_uint8

SHORT_NAMES = {
    "scale": "sc", "orientation": "o", "hue": "h", "saturation": "s", "value": "v",
    "floor_hue": "floor", "wall_hue": "wall", "object_hue": "obj", "seat_width": "w", "leg_length": "leg",
    "back_height": "back", "back_tilt": "tilt", "azimuth": "az", "elevation": "el",
}  # fmt: skip
GROUPS = (("shape", "scale", "orientation"), ("x", "y"), ("hue", "saturation", "value"))
"""Factors captioned together on one line, when a dataset has them; the others go three to a line."""


def describe_factors(data: GroundTruthDataset, values: list[float]) -> str:
    """A short caption such as ``heart sc0.80 o1.57 / x0.42 y0.10 / h0.31 s0.77 v0.90``: a factor
    whose values have names (a shape) shows the name, any other its short name and value."""
    parts = {}
    for name, value in zip(data.factor_names, values):
        named = getattr(data.factor(name), "value_names", None) is not None
        text = data.value_text(name, value)
        parts[name] = text if named else f"{SHORT_NAMES.get(name, name)}{text}"
    lines = [[parts[k] for k in group if k in parts] for group in GROUPS]
    grouped = {k for group in GROUPS for k in group}
    rest = [parts[k] for k in data.factor_names if k not in grouped]
    lines += [rest[i : i + 3] for i in range(0, len(rest), 3)]
    return "\n".join(" ".join(line) for line in lines if line)


def data_figure(data: Dataset, batch: Batch, path: Path, columns: int = 8) -> None:
    """Save the batch's images in a grid, each titled with its factor values (data without
    factors: the images alone)."""
    n = len(batch.images)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(1.9 * columns, 2.3 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    up = max(1, 128 // data.image_size)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = batch.images[i]
        if image.shape[0] == 1:
            image = image.repeat(3, 1, 1)
        ax.imshow(to_uint8(image, up), interpolation="nearest")
        if isinstance(data, GroundTruthDataset):
            ax.set_title(describe_factors(data, batch.values[i].tolist()), fontsize=7)
    what = "samples and their factors" if isinstance(data, GroundTruthDataset) else "samples (no factors)"
    fig.suptitle(f"{data.name}, {data.image_size}px: {what}")
    save_figure(fig, path)


def factors_figure(data: GroundTruthDataset, path: Path, steps: int = 9) -> None:
    """One row per factor: that factor swept over its range, every other one at its centre."""
    names = data.factor_names
    rows = []
    for column, name in enumerate(names):
        values = data.centre_values(steps)
        span = data.factor(name).span(steps)
        values[:, column] = span[torch.linspace(0, len(span) - 1, steps).round().long()]
        rows.append(data.render(values))
    up = max(1, 64 // data.image_size)
    grid = make_grid(torch.cat(rows), rows=len(names))
    fig = Figure(figsize=(1.0 + 0.8 * steps, 0.8 * len(names) + 0.8))
    ax = fig.subplots()
    ax.imshow(to_uint8(grid, up), interpolation="nearest")
    ax.set_yticks([(r + 0.5) * grid.shape[1] * up / len(names) for r in range(len(names))])
    ax.set_yticklabels(names)
    ax.set_xticks([])
    ax.set_xlabel("each factor from its lowest to its highest value; the others at their centre")
    ax.set_title(f"{data.name}, {data.image_size}px: one factor at a time")
    save_figure(fig, path)
