"""Fidelity: what a model's reconstructions keep of each factor, read back by a probe.

A probe (:mod:`sbvae.evaluation.probe`) trained on ground-truth images reads every factor from
a picture. Fresh ground-truth samples are encoded, their posterior means decoded, and the
probe reads the reconstructions; it also reads the ground-truth images themselves (the
*control*: what the probe can read at all) on the same samples. Per factor:

* a named category (sprites' shape): classification accuracy; *chance* is the accuracy of
  always answering the samples' most common class. The probe reads blurred outlines, so a
  category counts as kept when the picture tells it apart from the others (a square drawn as
  a disc beside hearts drawn as ovals counts), not only when it is drawn as itself.
* an angle over a whole turn (hue, sprites' orientation, chairs' azimuth): R^2 of the cosine
  and sine of the angle, over both; a symmetric shape looks the same turned (a square by a
  quarter turn, an ellipse by a half turn), so orientation is partly unreadable even on ground
  truth, which the control shows.
* any other factor (position, scale, saturation, ...): R^2, ``1 - MSE / variance`` of the
  factor over the samples; chance (the samples' mean for every answer) is 0.

Keys, flat scalars (``metrics.json`` ``scores`` and the ``fidelity`` rows of
``metrics.jsonl``): ``fidelity_F`` the score of factor F on the reconstructions,
``fidelity_F_control`` on the ground truth, ``fidelity_F_chance`` chance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from sbvae.config import Config
from sbvae.data import GroundTruthDataset, build_dataset, make_generator, require_ground_truth
from sbvae.errors import UserError
from sbvae.evaluation.probe import Probe, Reading, data_identity, load_or_train_probe
from sbvae.models import VAE
from sbvae.objectives.base import to_image

FIDELITY_SAMPLES = 2_000
"""Ground-truth samples a fidelity score draws by default."""
PREFIX = "fidelity_"
CONTROL, CHANCE = "_control", "_chance"


def accuracy(logits: torch.Tensor, classes: torch.Tensor) -> float:
    """The share of rows whose largest logit is the true class."""
    return float((logits.argmax(dim=1) == classes).double().mean())


def r_squared(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """``1 - sum of squared errors / sum of squared deviations from the mean``, over every
    column of ``[N, W]`` together (0: no better than the mean; negative: worse)."""
    target = target.double()
    spread = float(((target - target.mean(dim=0)) ** 2).sum())
    error = float(((predicted.double() - target) ** 2).sum())
    return 1.0 - error / spread if spread > 0 else 0.0


def r_squared_by_class(
    predicted: torch.Tensor, target: torch.Tensor, classes: torch.Tensor, names: Sequence[str]
) -> dict[str, float]:
    """:func:`r_squared` over the rows of each class (``classes`` ``[N]`` indexes ``names``)."""
    return {name: r_squared(predicted[classes == i], target[classes == i]) for i, name in enumerate(names)}


def score(reading: Reading, outputs: torch.Tensor, values: torch.Tensor) -> float:
    """How well a probe's outputs ``[N, reading.width]`` read the factor of ``values`` ``[N, K]``."""
    target = reading.target(values)
    return accuracy(outputs, target) if reading.kind == "class" else r_squared(outputs, target)


def chance(reading: Reading, values: torch.Tensor) -> float:
    """The score of the best constant answer: the most common class's share, or 0 for R^2."""
    if reading.kind != "class":
        return 0.0
    return float(torch.bincount(reading.target(values), minlength=reading.width).max()) / max(len(values), 1)


def measure(reading: Reading) -> str:
    """``accuracy`` or ``r2``: what the factor's score is."""
    return "accuracy" if reading.kind == "class" else "r2"


def scores_from_outputs(
    probe: Probe,
    values: torch.Tensor,
    reconstructed: torch.Tensor,
    truth: torch.Tensor,
    factors: Sequence[str] | None = None,
) -> dict[str, float]:
    """The fidelity keys of ``factors`` (default: all), from the probe's outputs on the
    reconstructions and on the ground-truth images of the factor ``values``."""
    scores = {}
    for reading, recon, control in zip(probe.readings, probe.split(reconstructed), probe.split(truth)):
        if factors is not None and reading.name not in factors:
            continue
        key = PREFIX + reading.name
        scores[key] = score(reading, recon, values)
        scores[key + CONTROL] = score(reading, control, values)
        scores[key + CHANCE] = chance(reading, values)
    return scores


def fidelity_scores(
    probe: Probe,
    true_values: torch.Tensor,
    recon_images: torch.Tensor,
    gt_images: torch.Tensor,
    factors: Sequence[str] | None = None,
) -> dict[str, float]:
    """Fidelity of ``recon_images`` to the factor values ``true_values`` ``[N, K]`` that made
    ``gt_images`` (both ``[N, C, H, W]`` in [0, 1]): the keys of the module docstring."""
    return scores_from_outputs(probe, true_values, probe.read(recon_images), probe.read(gt_images), factors)


@torch.inference_mode()
def reconstruct(model: VAE, images: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The decoded posterior means of ``images``, as images in [0, 1]."""
    mean, _ = model.encoder(images)
    return to_image(model.decode(mean), likelihood)


def model_fidelity(
    model: VAE,
    data: GroundTruthDataset,
    probe: Probe,
    likelihood: str,
    samples: int = FIDELITY_SAMPLES,
    seed: int = 0,
    device: torch.device | str = "cpu",
    factors: Sequence[str] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Fidelity of ``model``'s reconstructions of ``samples`` ground-truth images of ``data``,
    drawn with ``seed`` (generator purpose ``fidelity``) and reconstructed in batches."""
    values = data.draw(samples, make_generator(seed, "fidelity"))
    reconstructed, truth = [], []
    for start in range(0, samples, batch_size):
        images = data.render(values[start : start + batch_size], device)
        truth.append(probe.read(images))
        reconstructed.append(probe.read(reconstruct(model, images, likelihood)))
    return scores_from_outputs(probe, values, torch.cat(reconstructed), torch.cat(truth), factors)


def parse_factors(text: str | Sequence[str] | None, data: GroundTruthDataset) -> list[str] | None:
    """``"shape,x"`` or a list -> those factor names of ``data`` (None: every factor); an
    unknown name is a one-line :class:`UserError`."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [n for n in names if n not in data.factor_names]
    if unknown or not names:
        raise UserError(
            f"unknown fidelity factor {', '.join(unknown) or '(none given)'} for {data.name} "
            f"(factors: {', '.join(data.factor_names)})"
        )
    return names


def fidelity_keys(scores: dict[str, Any]) -> dict[str, Any]:
    """The fidelity keys among ``scores``."""
    return {k: v for k, v in scores.items() if k.startswith(PREFIX)}


def fidelity_table(scores: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    """Factor -> (score on the reconstructions, control, chance), from flat fidelity keys."""
    table = {}
    for key, control in scores.items():
        if key.startswith(PREFIX) and key.endswith(CONTROL):
            name = key[len(PREFIX) : -len(CONTROL)]
            recon, luck = scores.get(PREFIX + name), scores.get(PREFIX + name + CHANCE)
            if isinstance(recon, (int, float)) and isinstance(luck, (int, float)):
                table[name] = (float(recon), float(control), float(luck))
    return table


def fidelity_probe(config: Config, log: Callable[[str], None] = lambda _: None) -> tuple[GroundTruthDataset, Probe]:
    """The data of ``config`` and its probe (see :func:`sbvae.evaluation.probe.load_or_train_probe`;
    cached in the folder of ``data.cache``); a one-line :class:`UserError` for data without
    ground truth."""
    data = require_ground_truth(build_dataset(config.data), "the fidelity of reconstructions")
    return data, load_or_train_probe(data, data_identity(config.data), config.data.cache, log=log)


def run_fidelity(
    config: Config,
    model: VAE,
    device: torch.device | str,
    samples: int = FIDELITY_SAMPLES,
    seed: int = 0,
    factors: str | Sequence[str] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, float], dict[str, str]]:
    """Fidelity of a model trained on ``config``'s data, read by its probe (:func:`fidelity_probe`);
    returns the keys and each factor's measure (``accuracy`` or ``r2``)."""
    data, probe = fidelity_probe(config, log)
    names = parse_factors(factors, data)
    scores = model_fidelity(model, data, probe, config.objective.likelihood, samples, seed, device, names)
    measures = {r.name: measure(r) for r in probe.readings if names is None or r.name in names}
    return scores, measures
