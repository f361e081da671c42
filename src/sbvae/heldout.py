"""Evaluation on a region of factor space held out of training: the reconstruction error
there, and whether the latent geometry of position learned on the training region extends to it.

The geometry score: an affine map from the posterior means to (x, y), least-squares fitted on
images from the training region, then scored by R^2 on fresh training-region images and on the
held-out region (mean over x and y). A decoder whose latents lay position out on a smooth grid
keeps the map valid where it never trained; a folded or collapsed layout does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sbvae.config import load_config
from sbvae.data import make_dataset, make_heldout_dataset
from sbvae.evaluate import elbo_statistics
from sbvae.report import read_scores
from sbvae.run import RunPaths, atomic_write_bytes, load_model
from sbvae.viz.geometry import encode_means

HELDOUT_IMAGES = 2_000
POSITION = ("x", "y")


def affine_readout_r2(fit_codes: np.ndarray, fit_targets: np.ndarray, codes: np.ndarray,
                      targets: np.ndarray) -> float:
    """R^2 on (``codes``, ``targets``) of the affine map from codes to targets least-squares
    fitted on (``fit_codes``, ``fit_targets``); the mean over target columns."""
    def design(c: np.ndarray) -> np.ndarray:
        return np.hstack([c.astype(np.float64), np.ones((len(c), 1))])

    weights, *_ = np.linalg.lstsq(design(fit_codes), fit_targets, rcond=None)
    residual = ((targets - design(codes) @ weights) ** 2).sum(axis=0)
    total = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))


def heldout_statistics(run: Path, device: torch.device) -> dict[str, Any] | None:
    """Reconstruction and position geometry on the held-out region (None for a preset without
    one). Kept in ``RUN/heldout.json`` for the run's evaluated step, so a run whose checkpoint
    is not at hand (a fresh clone of the committed results) is still summarised."""
    cached = RunPaths(run).root / "heldout.json"
    step = (read_scores(run) or {}).get("step")
    if cached.is_file():
        stats = json.loads(cached.read_text())
        if stats.get("step") == step and "heldout_position_r2" in stats:
            return stats
    if make_heldout_dataset(load_config(str(RunPaths(run).config)).data.preset, 16) is None:
        return None
    config, model, _ = load_model(run, device)
    held_out = make_heldout_dataset(config.data.preset, config.data.image_size, config.data.supersample)
    inside = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
    seed = config.train.seed
    images = held_out.fixed_set(HELDOUT_IMAGES, seed, "heldout", device).images
    stats: dict[str, Any] = {"images": HELDOUT_IMAGES, "step": step,
                             **elbo_statistics(model, images, config.objective, seed)}
    columns = [inside.factor_names.index(name) for name in POSITION]
    sets = {split: (inside if split != "heldout" else held_out).fixed_set(HELDOUT_IMAGES, seed, split)
            for split in ("geometry-fit", "geometry-test", "heldout")}
    codes = {split: encode_means(model, inside, batch.values, device) for split, batch in sets.items()}
    targets = {split: batch.values[:, columns].numpy() for split, batch in sets.items()}
    fit = (codes["geometry-fit"], targets["geometry-fit"])
    stats["position_r2"] = affine_readout_r2(*fit, codes["geometry-test"], targets["geometry-test"])
    stats["heldout_position_r2"] = affine_readout_r2(*fit, codes["heldout"], targets["heldout"])
    atomic_write_bytes(cached, lambda h: h.write(json.dumps(stats, indent=2).encode()))
    return stats
