"""Training curves from ``metrics.jsonl``: one run, or several overlaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from sbvae.viz.figures import save_figure

PANELS = (("loss", "loss (nats/image)"), ("recon", "reconstruction NLL (nats/image)"),
          ("kl", "KL (nats/image)"), ("discrete_mig", "MIG"))


def _series(rows: list[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in rows if r.get("split") == split and isinstance(r.get(key), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def curves_figure(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Loss, reconstruction, KL (train solid, validation dashed) and MIG against steps; one
    colour per run in ``runs`` (label -> rows of its metrics.jsonl)."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    colours = plt.get_cmap("tab10")
    for i, (label, rows) in enumerate(runs.items()):
        colour = colours(i % 10)
        for ax, (key, _) in zip(axes, PANELS):
            if key == "discrete_mig":
                ax.plot(*_series(rows, "mig", key), "o-", color=colour, label=label, markersize=3)
                continue
            ax.plot(*_series(rows, "train", key), "-", color=colour, linewidth=1, alpha=0.8,
                    label=f"{label} train")
            ax.plot(*_series(rows, "val", key), "--", color=colour, linewidth=1.5, label=f"{label} val")
    for ax, (_, title) in zip(axes, PANELS):
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
