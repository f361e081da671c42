"""Modularity and explicitness (Ridgeway & Mozer 2018), as in disentanglement_lib."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from sbvae.evaluation.metrics.utils import (
    _check_num_bins,
    check_split,
    discrete_mutual_info,
    discretize,
    fit_quietly,
    standardize,
)

__all__ = ["explicitness_per_factor", "modularity_explicitness", "modularity_from_mutual_info"]


def modularity_from_mutual_info(mutual_info: np.ndarray) -> float:
    """Modularity of an MI matrix ``[D codes, K factors]``.

    Per code: theta = largest squared MI, delta = (sum of squared MI - theta) / (theta (K - 1)),
    score = 1 - delta, or 0 for a code with no information; mean over codes. With K = 1 the ratio
    is 0/0 and the result is NaN, as in dlib.
    """
    m = np.asarray(mutual_info, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"mutual information matrix must be 2-D [D, K], got shape {m.shape}")
    squared = m**2
    theta = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (squared.sum(axis=1) - theta) / (theta * (m.shape[1] - 1.0))
    per_code = 1.0 - delta
    per_code[theta == 0.0] = 0.0
    return float(np.mean(per_code))


def explicitness_per_factor(
    codes_train: np.ndarray, factor_train: np.ndarray, codes_test: np.ndarray, factor_test: np.ndarray
) -> tuple[float, float]:
    """Train and test ROC-AUC of a default ``LogisticRegression`` predicting one factor.

    Codes should already be standardised. The AUC is the macro average over the factor's
    classes of one-vs-rest AUC of ``predict_proba``, as dlib computes it with a
    MultiLabelBinarizer. Deviation: dlib crashes when a class is missing from a split; here such
    a class is left out of that split's average (identical numbers whenever dlib has any).
    """
    model = fit_quietly(LogisticRegression(), codes_train, factor_train)
    return (_macro_auc(model, codes_train, factor_train), _macro_auc(model, codes_test, factor_test))


def _macro_auc(model: LogisticRegression, codes: np.ndarray, factor: np.ndarray) -> float:
    proba = model.predict_proba(codes)
    onehot = (factor[:, None] == model.classes_[None, :]).astype(np.int64)
    positives = onehot.sum(axis=0)
    usable = (positives > 0) & (positives < len(factor))
    if not usable.any():
        return float("nan")
    # Unweighted mean of per-class AUCs == roc_auc_score(..., average="macro") on the indicator.
    return float(np.mean([roc_auc_score(onehot[:, c], proba[:, c]) for c in np.flatnonzero(usable)]))


def modularity_explicitness(
    codes_train: np.ndarray,
    labels_train: np.ndarray,
    codes_test: np.ndarray,
    labels_test: np.ndarray,
    num_bins: int = 20,
) -> dict[str, float]:
    """dlib's modularity and explicitness scores.

    codes ``[N, D]`` floats, labels ``[N, K]`` integer class indices (dlib: ``[D, N]``,
    ``[K, N]``); the study uses 10,000 train and 5,000 test points. Returns
    ``modularity_score`` (from the plug-in MI between ``num_bins``-bin discretised *train* codes
    and the factors, see ``modularity_from_mutual_info``), and ``explicitness_score_train`` /
    ``explicitness_score_test``: codes z-scored with the train mean and population std, one
    default ``LogisticRegression`` per factor fit on train, mean over factors of its ROC-AUC on
    each split (``explicitness_per_factor``). scikit-learn's default LogisticRegression often stops
    at 100 iterations; the defaults are kept for parity with dlib and the warning silenced.
    Deviation: a constant code dimension is standardised with std 1 instead of dividing by zero.
    """
    num_bins = _check_num_bins(num_bins)
    c_tr, l_tr, c_te, l_te = check_split(codes_train, labels_train, codes_test, labels_test)
    mutual_info = discrete_mutual_info(discretize(c_tr, num_bins), l_tr)
    z_train, mean, std = standardize(c_tr)
    z_test, _, _ = standardize(c_te, mean, std)
    aucs = np.array([explicitness_per_factor(z_train, l_tr[:, k], z_test, l_te[:, k]) for k in range(l_tr.shape[1])])
    return {
        "modularity_score": modularity_from_mutual_info(mutual_info),
        "explicitness_score_train": float(np.mean(aucs[:, 0])),
        "explicitness_score_test": float(np.mean(aucs[:, 1])),
    }
