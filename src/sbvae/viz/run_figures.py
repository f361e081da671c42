"""Every figure of a run, from its checkpoint: what ``sbvae visualize RUN_DIR`` writes.

The figures and their files are listed in ``sbvae.training.run_folder.FIGURE_FILES``. Each is written through
a temporary file, so a failure never replaces an earlier good picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from sbvae.config import Config
from sbvae.data import GroundTruthDataset, build_dataset, require_ground_truth
from sbvae.errors import UserError
from sbvae.models import VAE
from sbvae.training.device import select_device
from sbvae.training.run_folder import FIGURE_FILES, RunPaths, load_model, read_metrics
from sbvae.training.validation import elbo_statistics
from sbvae.viz.animation import traversal_gif
from sbvae.viz.curves import curves_figure
from sbvae.viz.data import factors_figure
from sbvae.viz.figures import (
    kl_figure,
    prior_samples_figure,
    reconstructions_figure,
    traversals_figure,
)
from sbvae.viz.geometry import factor_plane, geometry_figure, geometry_panel

GIF_INPUTS = 4
NEED_FACTORS = ("geometry", "data")
"""Figures drawn only for data with ground-truth factors (a set of images has none)."""


def parse_figure_names(text: str | Sequence[str] | None) -> list[str]:
    """``"geometry,kl"`` or a list -> validated names in report order; ``None``/``"all"`` -> all."""
    if text is None or text == "all":
        return list(FIGURE_FILES)
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [n for n in names if n not in FIGURE_FILES]
    if unknown or not names:
        raise UserError(f"unknown figure {', '.join(unknown) or '(none given)'} (known: {', '.join(FIGURE_FILES)})")
    return [n for n in FIGURE_FILES if n in names]


def check_factors(data: GroundTruthDataset, factors: Sequence[str] | None = None) -> tuple[str, str]:
    """Two distinct factor names of ``data`` (its ``plane_factors`` if ``factors`` is None) or a
    one-line :class:`UserError`."""
    factors = data.plane_factors if factors is None else factors
    if len(factors) != 2 or factors[0] == factors[1]:
        raise UserError(f"the geometry plot needs two different factors, not {','.join(factors)}")
    for name in factors:
        if name not in data.factor_names:
            raise UserError(f"{data.name} has no factor '{name}' (factors: {', '.join(data.factor_names)})")
    return factors[0], factors[1]


def write_figures(
    config: Config,
    model: VAE,
    paths: RunPaths,
    names: Sequence[str] | None = None,
    factors: Sequence[str] | None = None,
    device: torch.device | str = "cpu",
    label: str | None = None,
) -> dict[str, Path]:
    """Draw the named figures of an in-memory ``model`` into ``paths``; returns name -> file.
    ``factors``: the geometry plot's two factors (default: the dataset's ``plane_factors``)."""
    names = parse_figure_names(names)
    data = build_dataset(config.data)
    if not isinstance(data, GroundTruthDataset):  # images alone: no factors to plot
        names = [name for name in names if name not in NEED_FACTORS]
    plane = None
    if "geometry" in names:
        assert isinstance(data, GroundTruthDataset)
        plane = factor_plane(data, check_factors(data, factors))
    likelihood = config.objective.likelihood
    model.eval()
    val = data.fixed_set(config.data.val_size, config.train.seed, "val", device).images
    kl = torch.tensor(elbo_statistics(model, val, config.objective, config.train.seed)["kl_per_dim"])

    def geometry(path: Path) -> None:
        assert plane is not None  # drawn only when asked for, and then the plane is made
        factors = require_ground_truth(data, "the geometry plot")
        panel = geometry_panel(label or config.model.decoder.upper(), model, factors, plane, device)
        geometry_figure([panel], plane, factors, path)

    draw = {
        "geometry": geometry,
        "traversals": lambda path: traversals_figure(model, val[0], kl, likelihood, path),
        "traversal_gif": lambda path: traversal_gif(model, val[:GIF_INPUTS], kl, likelihood, path),
        "reconstructions": lambda path: reconstructions_figure(model, val[:10], likelihood, path),
        "prior_samples": lambda path: prior_samples_figure(model, likelihood, path, seed=config.train.seed),
        "kl": lambda path: kl_figure(kl, path),
        "curves": lambda path: curves_figure({label or "run": read_metrics(paths.metrics)}, path),
        "data": lambda path: factors_figure(require_ground_truth(data, "the data figure"), path),
    }
    written = {}
    with torch.no_grad():
        for name in names:
            draw[name](paths.figure(name))
            written[name] = paths.figure(name)
    return written


def visualize_run(
    run_dir: str | Path,
    names: Sequence[str] | str | None = None,
    factors: Sequence[str] | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Path]:
    """Load a run's model and write its figures into the run folder; returns name -> file."""
    asked = names is not None and names != "all"
    names = parse_figure_names(names)
    device = device if isinstance(device, torch.device) else select_device(device)
    config, model, _ = load_model(run_dir, device)
    wanted = [name for name in names if name in NEED_FACTORS]
    if asked and wanted:
        require_ground_truth(build_dataset(config.data), f"the {' and '.join(wanted)} figures")
    return write_figures(config, model, RunPaths(Path(run_dir)), names, factors, device)
