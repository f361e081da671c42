"""Evaluation on a region of factor space held out of training: the reconstruction error
there, and whether the latent geometry of position learned on the training region extends to it.

The geometry score is :mod:`sbvae.evaluation.position`'s affine map from the posterior means to (x, y),
fitted on the training region and scored by R^2 on it and on the held-out region. A decoder
whose latents lay position out on a smooth grid keeps the map valid where it never trained; a
folded or collapsed layout does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sbvae.config import load_config
from sbvae.data import make_dataset, make_heldout_dataset
from sbvae.evaluation.cache import cached_for_step
from sbvae.evaluation.position import (
    GEOMETRY_IMAGES,
    affine_readout_r2,
    fitted_position_r2,
    position_codes,
)
from sbvae.training.run_folder import RunPaths, load_model
from sbvae.training.validation import elbo_statistics

HELDOUT_IMAGES = GEOMETRY_IMAGES


def heldout_statistics(run: Path, device: torch.device) -> dict[str, Any] | None:
    """Reconstruction and position geometry on the held-out region (None for a preset without
    one, and for data read from a file: ``data.path`` replaces the preset). Kept in
    ``RUN/heldout.json`` for the run's evaluated step."""

    def compute(step: int | None) -> dict[str, Any] | None:
        data = load_config(str(RunPaths(run).config)).data
        if data.path is not None or make_heldout_dataset(data.preset, 16) is None:
            return None
        config, model, _ = load_model(run, device)
        held_out = make_heldout_dataset(config.data.preset, config.data.image_size, config.data.supersample)
        assert held_out is not None  # checked above at a small size
        inside = make_dataset(config.data.preset, config.data.image_size, config.data.supersample)
        seed = config.train.seed
        images = held_out.fixed_set(HELDOUT_IMAGES, seed, "heldout", device).images
        stats: dict[str, Any] = {
            "images": HELDOUT_IMAGES,
            "step": step,
            **elbo_statistics(model, images, config.objective, seed),
        }
        fit, stats["position_r2"] = fitted_position_r2(model, inside, seed, device)
        held = position_codes(model, inside, "heldout", seed, device, source=held_out)
        stats["heldout_position_r2"] = affine_readout_r2(*fit, *held)
        return stats

    return cached_for_step(run, "heldout.json", "heldout_position_r2", compute)
