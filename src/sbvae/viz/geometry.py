"""The paper's latent-space geometry plot.

Every factor but two is held at its centre. A grid of lines is drawn in the plane of the two
factors (lines of constant ``a`` sampled densely along ``b``, and the other way round), each
line rendered and encoded (posterior means). The two latents that carry the factors are the
ones with the highest mutual information with each (20-bin discretisation, as MIG does). In
the latent panel each line keeps its colour: straight, orthogonal lines mean the two factors
are disentangled; warped or folded ones mean they are entangled.

Where a held factor is tied to the plane's (the hue of ``dependent_sprites`` stays within 0.15
of x), a point whose centre value the data never holds gets that factor's nearest value the
data does hold, so the lines follow the data. Points that no held value brings into the data
(positions outside its disc, the held-out block) are drawn faint: there the plot shows
extrapolation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sbvae.data import GroundTruthDataset
from sbvae.evaluation.metrics.utils import discrete_entropy, discrete_mutual_info, discretize
from sbvae.evaluation.sampling import encode_means
from sbvae.models import VAE
from sbvae.viz.figures import save_figure


@dataclass(frozen=True)
class FactorPlane:
    """Points on a grid of lines in the plane of factors ``names`` (others at their centre).

    ``values`` ``[L, P, K]``: line ``l`` point ``p``; the first lines hold ``names[0]``
    constant, the rest hold ``names[1]`` constant. ``columns``: the two factors' columns.
    ``inside`` ``[L, P]``: whether the data's factor distribution holds the point.
    ``moved``: the held factors moved off their centre at some points to bring them inside.
    """

    names: tuple[str, str]
    columns: tuple[int, int]
    values: torch.Tensor
    first_lines: int  # how many lines hold names[0] constant
    inside: np.ndarray
    moved: tuple[str, ...] = ()

    @property
    def plane(self) -> np.ndarray:
        """``[L, P, 2]`` coordinates of every point in the factor plane."""
        return self.values[..., list(self.columns)].numpy()


def factor_plane(data: GroundTruthDataset, names: tuple[str, str], lines: int = 7, points: int = 32) -> FactorPlane:
    """The grid of lines of ``geometry_figure``; ``KeyError`` for a factor ``data`` lacks."""
    if names[0] == names[1]:
        raise ValueError(f"pick two different factors, not {names[0]} twice")
    columns = (
        data.factor_names.index(data.factor(names[0]).names[0]),
        data.factor_names.index(data.factor(names[1]).names[0]),
    )
    coarse = [data.factor(n).span(lines) for n in names]
    dense = [data.factor(n).span(points) for n in names]
    groups = []
    for held, moving in ((0, 1), (1, 0)):  # lines of constant names[held]
        n_lines, n_points = len(coarse[held]), len(dense[moving])
        values = data.centre_values(n_lines * n_points).view(n_lines, n_points, -1)
        values[:, :, columns[held]] = coarse[held][:, None]
        values[:, :, columns[moving]] = dense[moving][None, :]
        groups.append(values)
    if groups[0].shape[1] != groups[1].shape[1]:  # two discrete factors of different sizes
        size = min(g.shape[1] for g in groups)
        groups = [g[:, torch.linspace(0, g.shape[1] - 1, size).round().long()] for g in groups]
    values = torch.cat(groups)
    flat, moved = _into_the_data(data, values.reshape(-1, values.shape[-1]), columns)
    inside = data.factors.contains(flat).reshape(values.shape[:2])
    return FactorPlane((names[0], names[1]), columns, flat.reshape(values.shape), len(groups[0]), inside.numpy(), moved)


def _into_the_data(
    data: GroundTruthDataset, values: torch.Tensor, plane_columns: tuple[int, int], candidates: int = 129
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Move each held factor, one at a time, of the points the data does not hold to the value
    nearest its centre that brings them inside; the names of the factors moved."""
    values, moved = values.clone(), []
    for column, name in enumerate(data.factor_names):
        outside = ~data.factors.contains(values)
        if column in plane_columns or not outside.any():
            continue
        factor = data.factor(name)
        span = factor.span(candidates)
        span = span[(span - factor.centre).abs().argsort()]  # nearest the centre first
        rows = outside.nonzero()[:, 0]
        trial = values[rows].repeat_interleave(len(span), 0)  # every point with every candidate
        trial[:, column] = span.repeat(len(rows))
        fits = data.factors.contains(trial).view(len(rows), len(span))
        found = fits.any(1)
        values[rows[found], column] = span[fits[found].int().argmax(1)]  # the first that fits
        if (values[:, column] != factor.centre).any():
            moved.append(name)
    return values, tuple(moved)


def choose_latents(codes: np.ndarray, labels: np.ndarray) -> tuple[tuple[int, int], tuple[float, float]]:
    """The latent with the highest mutual information with each of two factors.

    ``codes`` ``[N, D]``, ``labels`` ``[N, 2]``. When both factors pick the same latent, the
    factor with the larger MI keeps it and the other takes its next best. Returns the two
    latent indices and their MI normalised by each factor's entropy (1 = determines it).
    """
    mi = discrete_mutual_info(discretize(codes), labels)  # [D, 2]
    mi = mi / np.maximum(discrete_entropy(labels), 1e-12)[None, :]
    first, second = int(np.argmax(mi[:, 0])), int(np.argmax(mi[:, 1]))
    if first == second:
        other = 1 if mi[first, 0] >= mi[second, 1] else 0
        ranked = [int(d) for d in np.argsort(-mi[:, other]) if d != first]
        chosen = [first, first]
        chosen[other] = ranked[0]
        first, second = chosen
    return (first, second), (float(mi[first, 0]), float(mi[second, 1]))


@dataclass(frozen=True)
class GeometryPanel:
    """One model's latent geometry: the chosen latents, their MI, and the plotted points."""

    label: str
    dims: tuple[int, int]
    mi: tuple[float, float]
    points: np.ndarray  # [L, P, 2]: the chosen latents' posterior means along every line


def geometry_panel(
    label: str,
    model: VAE,
    data: GroundTruthDataset,
    plane: FactorPlane,
    device: torch.device | str = "cpu",
    grid_points: int = 16,
) -> GeometryPanel:
    """Encode ``plane``'s lines and pick the latents from the points of a ``grid_points``² grid
    of the plane that the data holds (tied held factors moved as in :func:`factor_plane`)."""
    names = plane.names
    a, b = (data.factor(n).span(grid_points) for n in names)
    grid = data.centre_values(len(a) * len(b)).view(len(a), len(b), -1)
    grid[:, :, plane.columns[0]] = a[:, None]
    grid[:, :, plane.columns[1]] = b[None, :]
    labels = np.stack(np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij"), -1).reshape(-1, 2)
    grid, _ = _into_the_data(data, grid.reshape(len(labels), -1), plane.columns)
    inside = data.factors.contains(grid)
    codes = encode_means(model, data, grid[inside], device)
    dims, mi = choose_latents(codes.reshape(int(inside.sum()), -1), labels[inside.numpy()])
    codes = encode_means(model, data, plane.values, device)
    return GeometryPanel(label, dims, mi, codes[..., list(dims)])


def line_colours(first: int, second: int) -> list[tuple[float, float, float, float]]:
    """Lines of constant first factor in blues to greens, of constant second in reds to yellows."""
    cool, warm = matplotlib.colormaps["winter"], matplotlib.colormaps["autumn"]
    return [cool(i / max(first - 1, 1)) for i in range(first)] + [warm(i / max(second - 1, 1)) for i in range(second)]


def _draw_lines(ax: Axes, points: np.ndarray, inside: np.ndarray, colours: Sequence[tuple[float, ...]]) -> None:
    """Each line faint, then its stretches inside the data solid on top."""
    for line, held, colour in zip(points, inside, colours):
        ax.plot(line[:, 0], line[:, 1], "-", color=colour, linewidth=0.8, alpha=0.25)
        solid = np.where(held[:, None], line, np.nan)
        ax.plot(solid[:, 0], solid[:, 1], "-", color=colour, linewidth=1.2, alpha=0.9)
        ax.plot(solid[:, 0], solid[:, 1], ".", color=colour, markersize=3)


def geometry_figure(panels: list[GeometryPanel], plane: FactorPlane, data: GroundTruthDataset, path: Path) -> None:
    """The ground-truth grid of lines, then each panel's latent geometry, side by side."""
    colours = line_colours(plane.first_lines, len(plane.values) - plane.first_lines)
    n = 1 + len(panels)
    fig = Figure(figsize=(4.2 * n, 4.4))
    axes = fig.subplots(1, n, squeeze=False)
    ax = axes[0, 0]
    _draw_lines(ax, plane.plane, plane.inside, colours)
    ax.set_xlabel(plane.names[0])
    ax.set_ylabel(plane.names[1])
    ax.set_title("ground truth: the factor plane")
    ax.set_box_aspect(1)  # square, whatever the two factors' units
    held = [
        f"{name}={data.value_text(name, data.factor(name).centre)}"
        for name in data.factor_names
        if name not in plane.names
    ]
    for ax, panel in zip(axes[0, 1:], panels):
        _draw_lines(ax, panel.points, plane.inside, colours)
        ax.set_xlabel(f"z{panel.dims[0]} (carries {plane.names[0]}, MI {panel.mi[0]:.2f})")
        ax.set_ylabel(f"z{panel.dims[1]} (carries {plane.names[1]}, MI {panel.mi[1]:.2f})")
        ax.set_title(f"{panel.label}: posterior means")
    moved = (
        (
            f" ({', '.join(plane.moved)} moved to the nearest value the data holds where it ties "
            f"{'it' if len(plane.moved) == 1 else 'them'} to the plane)"
        )
        if plane.moved
        else ""
    )
    faint = "; faint: outside the training data" if not plane.inside.all() else ""
    fig.suptitle(
        "Latent-space geometry (straight, orthogonal lines = disentangled)\n"
        f"other factors held at {', '.join(held)}{moved}; MI normalised by the factor's entropy{faint}",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)
