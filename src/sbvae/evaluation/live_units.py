"""Decoder units that still fire.

A ReLU channel that is zero at every position of every image gets no gradient and stays off
for good. Counting the channels of each decoder ReLU that fire somewhere, on images of the
run's own data, shows how much of a decoder is left. Training at the full learning rate from
the first step can leave most of the SBD's last hidden layer dead; a learning-rate warm-up
(``train.lr_warmup``) prevents it (see docs/reproduction.md, "Why the learning-rate warm-up").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sbvae.data import build_dataset
from sbvae.evaluation.cache import cached_for_step
from sbvae.training.run_folder import RunPaths, load_model

UNIT_IMAGES = 1_000


def live_channels(decoder: nn.Module, z: torch.Tensor) -> list[tuple[int, int]]:
    """``(channels that fire, channels)`` of each ReLU of ``decoder`` on the latents ``z``, in
    forward order. A channel fires when it is positive at some position for some sample."""
    counts: list[tuple[int, int]] = []

    def count(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        fires = output > 0
        per_channel = fires.flatten(2).any(2) if fires.dim() > 2 else fires
        counts.append((int(per_channel.any(0).sum()), per_channel.shape[1]))

    hooks = [m.register_forward_hook(count) for m in decoder.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            decoder(z)
    finally:
        for hook in hooks:
            hook.remove()
    return counts


def unit_statistics(run: Path, device: torch.device) -> dict[str, Any] | None:
    """``{"step", "images", "layers", "last_hidden_live"}`` of a run's decoder on the posterior
    means of ``UNIT_IMAGES`` images of its data (``layers``: ``[live, channels]`` per ReLU),
    kept in ``RUN/units.json``; None for a run with neither that file nor a checkpoint
    (committed runs carry no weights)."""

    def compute(step: int | None) -> dict[str, Any] | None:
        if not RunPaths(run).checkpoint.is_file():
            return None
        config, model, _ = load_model(run, device)
        data = build_dataset(config.data)
        images = data.fixed_set(UNIT_IMAGES, config.train.seed, "units").images.to(device)
        with torch.no_grad():
            means, _ = model.encoder(images)
        layers = [list(pair) for pair in live_channels(model.decoder, means)]
        return {
            "step": step,
            "images": UNIT_IMAGES,
            "layers": layers,
            "last_hidden_live": layers[-1][0] / layers[-1][1],
        }

    return cached_for_step(run, "units.json", "last_hidden_live", compute)
