"""Training curves from ``metrics.jsonl``: one run, or several overlaid; the ELBO's terms, the
terms of the method each run trained (a total-correlation estimate, a discriminator's loss and
accuracy, ...), MIG, and the fidelity of reconstructions when it was logged."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from sbvae.evaluation.fidelity import PREFIX, fidelity_table
from sbvae.objectives import TERMS
from sbvae.training.run_folder import split_rows
from sbvae.viz.figures import save_figure

PANELS = (
    ("loss", "loss (nats/image)"),
    ("recon", "reconstruction NLL (nats/image)"),
    ("kl", "KL (nats/image)"),
    ("discrete_mig", "MIG"),
)
FIDELITY_PANEL = ("fidelity", "fidelity of reconstructions\n(accuracy or R^2 per factor)")
COLUMNS = 4
STYLES: tuple[Literal["-", "--", ":", "-."], ...] = ("-", "--", ":", "-.")


def panels(runs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """The panels to draw: :data:`PANELS`, with the methods' own terms found in the runs'
    training rows inserted before MIG, and fidelity after it when a run logged it."""
    found = dict.fromkeys(k for rows in runs.values() for r in rows if r.get("split") == "train" for k in r)
    own = [(key, TERMS[key]) for key in TERMS if key in found]
    fidelity = [FIDELITY_PANEL] if fidelity_factors(runs) else []
    return [*PANELS[:-1], *own, PANELS[-1], *fidelity]


def fidelity_factors(runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The factors of every run's ``fidelity`` rows, in the order first met."""
    rows = (r for rows in runs.values() for r in split_rows(rows, "fidelity"))
    return list(dict.fromkeys(name for r in rows for name in fidelity_table(r)))


def fidelity_panel(ax: Axes, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Fidelity against steps: a colour per factor, a line style per run (named in the panel
    when there are several)."""
    factors = fidelity_factors(runs)
    colours = matplotlib.colormaps["tab10" if len(factors) <= 10 else "tab20"]
    lowest = 0.0
    for i, rows in enumerate(runs.values()):
        for j, name in enumerate(factors):
            steps, values = _series(rows, "fidelity", PREFIX + name)
            ax.plot(steps, values, STYLES[i % len(STYLES)], marker="o", color=colours(j % colours.N), markersize=2.5)
            lowest = min([lowest, *(v for v in values if math.isfinite(v))])
    ax.set_ylim(max(lowest, -0.5) - 0.05, 1.05)  # an R^2 far below 0 would squash the rest
    handles = [Line2D([], [], color=colours(j % colours.N), label=name) for j, name in enumerate(factors)]
    if len(runs) > 1:
        handles += [
            Line2D([], [], color="grey", linestyle=STYLES[i % len(STYLES)], label=label) for i, label in enumerate(runs)
        ]
    ax.legend(handles=handles, fontsize=6, ncol=2, loc="lower right", frameon=False)


def _series(rows: list[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in split_rows(rows, split, key) if isinstance(r[key], (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


def settled_range(curves: list[list[float]]) -> tuple[float, float] | None:
    """A y-range over every curve without its first tenth, whose first steps are orders of
    magnitude above the rest and would flatten everything after them on a shared axis. Values
    that are not finite (a diverged step's) are left out."""
    values = [v for curve in curves for v in curve[len(curve) // 10 :] if math.isfinite(v)]
    if not values:
        return None
    low, high = min(values), max(values)
    pad = 0.05 * (high - low) or 1.0
    return low - pad, high + pad


def curves_figure(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Loss, reconstruction, KL (train solid, validation dashed), the methods' own terms (train),
    MIG and fidelity against steps, four panels a row; one colour per run in ``runs`` (label -> rows of
    its metrics.jsonl), named in one legend."""
    drawn = panels(runs)
    grid_rows = -(-len(drawn) // COLUMNS)
    fig = Figure(figsize=(4.2 * min(COLUMNS, len(drawn)), 3.4 * grid_rows + 0.2 * -(-len(runs) // 5)))
    grid = fig.subplots(grid_rows, min(COLUMNS, len(drawn)), squeeze=False).ravel()
    for spare in grid[len(drawn) :]:
        spare.set_visible(False)
    axes = grid[: len(drawn)]
    colours = matplotlib.colormaps["tab10" if len(runs) <= 10 else "tab20"]
    shown: dict[str, list[list[float]]] = {key: [] for key, _ in drawn}
    for i, (label, rows) in enumerate(runs.items()):
        colour = colours(i % colours.N)
        for ax, (key, _) in zip(axes, drawn):
            if key == "discrete_mig":
                ax.plot(*_series(rows, "mig", key), "o-", color=colour, label=label, markersize=3)
                continue
            if key == FIDELITY_PANEL[0]:
                continue  # drawn for every run at once below
            train_steps, train_values = _series(rows, "train", key)
            ax.plot(train_steps, train_values, "-", color=colour, linewidth=1, alpha=0.8, label=label)
            val_steps, val_values = _series(rows, "val", key)
            ax.plot(val_steps, val_values, "--", color=colour, linewidth=1.5)
            shown[key] += [train_values, val_values]
    plain = {key for key, _ in PANELS[:-1]}  # drawn for training and validation
    for ax, (key, title) in zip(axes, drawn):
        if key == FIDELITY_PANEL[0]:
            fidelity_panel(ax, runs)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_title(f"{title}\ntrain solid, validation dashed" if key in plain else title, fontsize=10)
        ax.grid(alpha=0.3)
        limits = settled_range(shown[key]) if key not in ("discrete_mig", FIDELITY_PANEL[0]) else None
        if limits is not None:
            ax.set_ylim(*limits)
    handles, labels = axes[0].get_legend_handles_labels()
    legend_rows = -(-len(labels) // 5)
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06 * legend_rows / grid_rows, 1, 1))
    save_figure(fig, path)
