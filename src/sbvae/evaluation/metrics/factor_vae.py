"""FactorVAE score (Kim & Mnih 2018) as disentanglement_lib computes it.

1. Global variance of every code dimension over ``num_variance_estimate`` samples (ddof 1);
   dimensions with standard deviation below ``prune_threshold`` (0.05 in the Locatello et al.
   study) are inactive.
2. One vote: pick a factor k, draw ``batch_size`` factor settings, give all of them the first
   one's value of factor k, encode; the vote is (k, argmin over active dims of the batch
   variance divided by the global variance).
3. A majority-vote classifier maps each code dimension to its most-voted factor;
   ``train_accuracy`` on ``num_train`` votes, ``eval_accuracy`` (the reported score) on
   ``num_eval`` fresh votes with the same classifier.

Quirk kept from disentanglement_lib: ``num_active_dims`` reports the length of the active
mask, that is the number of code dimensions, not how many are active; we report the real
count as ``num_active_dims_actual`` too. The argmin index lives in the active subset, as in
disentanglement_lib; that relabelling does not change the accuracies.
"""

from __future__ import annotations

import numpy as np
import torch

from sbvae.evaluation.sampling import EncodeValues, SampleValues

VOTES_PER_CALL = 32
"""Votes rendered and encoded together (32 x 64 images): fewer, larger tensor calls."""


def _votes(
    sample_values: SampleValues,
    encode_values: EncodeValues,
    generator: torch.Generator,
    num_factors: int,
    num_codes: int,
    active: np.ndarray,
    global_var: np.ndarray,
    count: int,
    batch_size: int,
) -> np.ndarray:
    """Vote matrix ``[num_factors, num_codes]`` from ``count`` fixed-factor batches."""
    votes = np.zeros((num_factors, num_codes), dtype=np.int64)
    for start in range(0, count, VOTES_PER_CALL):
        m = min(VOTES_PER_CALL, count - start)
        ks = torch.randint(num_factors, (m,), generator=generator)
        values = sample_values(m * batch_size, generator).view(m, batch_size, -1)
        rows = torch.arange(m)
        values[rows, :, ks] = values[rows, 0, ks][:, None]
        codes = encode_values(values.reshape(m * batch_size, -1)).reshape(m, batch_size, -1)
        ratio = codes.var(axis=1, ddof=1)[:, active] / global_var[active]
        np.add.at(votes, (ks.numpy(), np.argmin(ratio, axis=1)), 1)
    return votes


def factor_vae_score(
    sample_values: SampleValues,
    encode_values: EncodeValues,
    generator: torch.Generator,
    num_factors: int,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
) -> dict[str, float]:
    """FactorVAE score; keys ``train_accuracy``, ``eval_accuracy``, ``num_active_dims``,
    ``num_active_dims_actual``. ``batch_size`` must be at least 2."""
    if batch_size < 2:
        raise ValueError("factor_vae_score needs batch_size >= 2 to estimate a variance")
    codes = encode_values(sample_values(num_variance_estimate, generator))
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    global_var = codes.var(axis=0, ddof=1)
    num_codes = codes.shape[1]
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0, "num_active_dims_actual": 0}
    args = (sample_values, encode_values, generator, num_factors, num_codes, active, global_var)
    train_votes = _votes(*args, num_train, batch_size)
    classifier = np.argmax(train_votes, axis=0)
    columns = np.arange(num_codes)
    train_acc = train_votes[classifier, columns].sum() / train_votes.sum()
    eval_votes = _votes(*args, num_eval, batch_size)
    eval_acc = eval_votes[classifier, columns].sum() / eval_votes.sum()
    return {
        "train_accuracy": float(train_acc),
        "eval_accuracy": float(eval_acc),
        "num_active_dims": len(active),
        "num_active_dims_actual": int(active.sum()),
    }
