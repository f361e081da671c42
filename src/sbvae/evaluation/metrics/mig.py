"""Mutual Information Gap, disentanglement_lib's binned ("discrete") estimator."""

from __future__ import annotations

import numpy as np

from sbvae.evaluation.metrics.utils import (
    check_codes_labels,
    discrete_entropy,
    discrete_mutual_info,
    discretize,
)

__all__ = ["mig", "mig_from_mutual_info"]


def mig_from_mutual_info(mutual_info: np.ndarray, entropies: np.ndarray) -> np.ndarray:
    """Per-factor gap ``[K]``: (largest - second-largest MI over codes) / factor entropy.

    ``mutual_info`` is ``[D, K]`` (D >= 2) and ``entropies`` ``[K]``, both in nats.
    """
    m = np.asarray(mutual_info, dtype=np.float64)
    h = np.asarray(entropies, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2 or h.shape != (m.shape[1],):
        raise ValueError(f"need mutual_info [D >= 2, K] and entropies [K], got {m.shape} and {h.shape}")
    top = np.sort(m, axis=0)[::-1]
    return (top[0] - top[1]) / h


def mig(codes: np.ndarray, labels: np.ndarray, num_bins: int = 20) -> dict[str, float | list[float]]:
    """dlib's MIG: ``{"discrete_mig": float, "mig_per_factor": [K floats]}``.

    codes ``[N, D]`` floats, labels ``[N, K]`` integer class indices (dlib: ``[D, N]``, ``[K, N]``).
    Each code dimension is discretised into ``num_bins`` equal-width bins (``discretize``), the
    plug-in MI ``[D, K]`` with the factors is computed in nats, and for every factor the gap
    between the two most informative codes is divided by the plug-in entropy of the *observed*
    labels (slightly below log K for a finite sample, as in dlib); the score is the mean gap.
    Only one set of samples is used (dlib's ``num_train``, 10,000 points). Binning makes the
    score invariant to monotone increasing per-dimension transforms (up to values falling exactly
    on a bin edge).
    """
    codes, labels = check_codes_labels(codes, labels)
    mutual_info = discrete_mutual_info(discretize(codes, num_bins), labels)
    per_factor = mig_from_mutual_info(mutual_info, discrete_entropy(labels))
    return {"discrete_mig": float(np.mean(per_factor)), "mig_per_factor": [float(v) for v in per_factor]}
