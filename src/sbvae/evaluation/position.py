"""How cleanly a run's latents lay out position: the number behind the paper's latent-geometry
plot.

An affine map from the posterior means to the sprite's (x, y) is least-squares fitted on
images of the training distribution and scored by R^2 (mean over x and y) on fresh images of
the same distribution. Near 1 when the latents hold position on a flat grid (any rotation or
scaling of it), lower when the layout is folded, warped or partly collapsed. The held-out
evaluation (:mod:`sbvae.evaluation.heldout`) scores the same fitted map on a region never trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbvae.data import GroundTruthDataset, build_dataset
from sbvae.evaluation.cache import cached_for_step
from sbvae.evaluation.sampling import encode_means
from sbvae.models import VAE
from sbvae.training.run_folder import load_model

GEOMETRY_IMAGES = 2_000
POSITION = ("x", "y")


def affine_readout_r2(fit_codes: np.ndarray, fit_targets: np.ndarray, codes: np.ndarray, targets: np.ndarray) -> float:
    """R^2 on (``codes``, ``targets``) of the affine map from codes to targets least-squares
    fitted on (``fit_codes``, ``fit_targets``); the mean over target columns."""

    def design(c: np.ndarray) -> np.ndarray:
        return np.hstack([c.astype(np.float64), np.ones((len(c), 1))])

    weights, *_ = np.linalg.lstsq(design(fit_codes), fit_targets, rcond=None)
    residual = ((targets - design(codes) @ weights) ** 2).sum(axis=0)
    total = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))


def position_codes(
    model: VAE,
    data: GroundTruthDataset,
    split: str,
    seed: int,
    device: torch.device,
    source: GroundTruthDataset | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of ``GEOMETRY_IMAGES`` fixed images of ``source`` (default ``data``),
    encoded as ``data``'s factors, and their (x, y)."""
    batch = (source or data).fixed_set(GEOMETRY_IMAGES, seed, split)
    columns = [data.factor_names.index(name) for name in POSITION]
    return encode_means(model, data, batch.values, device), batch.values[:, columns].numpy()


def fitted_position_r2(
    model: VAE, data: GroundTruthDataset, seed: int, device: torch.device
) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """The (codes, positions) the map is fitted on, and its R^2 on fresh images of ``data``."""
    fit = position_codes(model, data, "geometry-fit", seed, device)
    return fit, affine_readout_r2(*fit, *position_codes(model, data, "geometry-test", seed, device))


def position_statistics(run: Path, device: torch.device) -> dict[str, Any]:
    """``{"step", "images", "position_r2"}`` of a run, kept in ``RUN/position.json`` for the
    run's evaluated step; ``position_r2`` is None for data without an x and a y factor (a 3D
    scene, a file without them, images without factors)."""

    def compute(step: int | None) -> dict[str, Any]:
        config, model, _ = load_model(run, device)
        data = build_dataset(config.data)
        if not isinstance(data, GroundTruthDataset) or not set(POSITION) <= set(data.factor_names):
            return {"step": step, "images": 0, "position_r2": None}
        _, r2 = fitted_position_r2(model, data, config.train.seed, device)
        return {"step": step, "images": GEOMETRY_IMAGES, "position_r2": r2}

    stats = cached_for_step(run, "position.json", "position_r2", compute)
    assert stats is not None  # compute always gives a result
    return stats
