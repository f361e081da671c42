"""BetaVAE score (Higgins et al. 2017), disentanglement_lib's scikit-learn variant.

One point: pick a factor k, draw two batches of ``batch_size`` factor settings, copy factor k
of the first batch into the second, encode both; the feature is the mean over pairs of
``|z1 - z2|`` and the label is k. A ``LogisticRegression`` (scikit-learn defaults, seeded)
is fit on ``num_train`` points (its convergence warnings are silenced: the defaults are kept
for parity); its accuracy there is ``train_accuracy`` and on ``num_eval`` fresh points
``eval_accuracy`` (the reported score).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from sbvae.evaluation.metrics.utils import fit_quietly
from sbvae.evaluation.sampling import EncodeValues, SampleValues

POINTS_PER_CALL = 16
"""Points rendered and encoded together (16 x 2 x 64 images): fewer, larger tensor calls."""


def _points(
    sample_values: SampleValues,
    encode_values: EncodeValues,
    generator: torch.Generator,
    num_factors: int,
    count: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    features, labels = [], []
    for start in range(0, count, POINTS_PER_CALL):
        m = min(POINTS_PER_CALL, count - start)
        ks = torch.randint(num_factors, (m,), generator=generator)
        pairs = sample_values(2 * m * batch_size, generator).view(m, 2, batch_size, -1)
        rows = torch.arange(m)
        pairs[rows, 1, :, ks] = pairs[rows, 0, :, ks]
        codes = encode_values(pairs.reshape(2 * m * batch_size, -1)).reshape(m, 2, batch_size, -1)
        features.append(np.abs(codes[:, 0] - codes[:, 1]).mean(axis=1))
        labels.append(ks.numpy())
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(
    sample_values: SampleValues,
    encode_values: EncodeValues,
    generator: torch.Generator,
    num_factors: int,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    seed: int = 0,
) -> dict[str, float]:
    """BetaVAE score; keys ``train_accuracy`` and ``eval_accuracy``."""
    x_train, y_train = _points(sample_values, encode_values, generator, num_factors, num_train, batch_size)
    if not np.isfinite(x_train).all():
        raise ValueError("codes contain NaN or infinite values")
    if len(np.unique(y_train)) < 2:
        raise ValueError("beta_vae_score needs training points from at least two factors")
    model = LogisticRegression(random_state=seed)
    fit_quietly(model, x_train, y_train)
    x_eval, y_eval = _points(sample_values, encode_values, generator, num_factors, num_eval, batch_size)
    return {"train_accuracy": float(model.score(x_train, y_train)), "eval_accuracy": float(model.score(x_eval, y_eval))}
