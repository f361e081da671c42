"""DCI: Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018), as in
disentanglement_lib: gradient-boosted-tree importances and classification accuracy."""

from __future__ import annotations

import numpy as np
import scipy.stats
from joblib import Parallel, delayed
from sklearn.ensemble import GradientBoostingClassifier

from sbvae.evaluation.metrics.utils import check_split

__all__ = [
    "completeness_from_importance",
    "dci",
    "disentanglement_from_importance",
    "importance_matrix_gbt",
]

_EPS = 1e-11  # dlib adds this to every importance before taking entropies


def _as_matrix(importance: np.ndarray) -> np.ndarray:
    m = np.asarray(importance, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"importance matrix must be 2-D [D, K], got shape {m.shape}")
    if not np.isfinite(m).all() or (m < 0).any():
        raise ValueError("importance matrix must be finite and non-negative")
    return m


def disentanglement_from_importance(importance: np.ndarray) -> float:
    """DCI disentanglement of an importance matrix ``[D codes, K factors]``.

    Per code: 1 - entropy (base K) of its row + 1e-11, normalised; weighted by the row's share of
    the total importance (uniform weights if the matrix is all zero). With K = 1 the base-1
    entropy is 0/0 and the result is NaN, as in dlib.
    """
    m = _as_matrix(importance)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = 1.0 - scipy.stats.entropy(m.T + _EPS, base=m.shape[1])
    weights = m if m.sum() != 0.0 else np.ones_like(m)
    code_weight = weights.sum(axis=1) / weights.sum()
    return float(np.sum(per_code * code_weight))


def completeness_from_importance(importance: np.ndarray) -> float:
    """DCI completeness of an importance matrix ``[D codes, K factors]``.

    Per factor: 1 - entropy (base D) of its column + 1e-11, normalised; weighted by the column's
    share of the total importance (uniform weights if the matrix is all zero).
    """
    m = _as_matrix(importance)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_factor = 1.0 - scipy.stats.entropy(m + _EPS, base=m.shape[0])
    weights = m if m.sum() != 0.0 else np.ones_like(m)
    factor_weight = weights.sum(axis=0) / weights.sum()
    return float(np.sum(per_factor * factor_weight))


def _fit_factor(
    codes_train: np.ndarray, labels_train: np.ndarray, codes_test: np.ndarray, labels_test: np.ndarray, seed: int | None
) -> tuple[np.ndarray, float, float]:
    """One factor's trees: (|feature importances| [D], train accuracy, test accuracy)."""
    model = GradientBoostingClassifier(random_state=seed)
    model.fit(codes_train, labels_train)
    return (
        np.abs(model.feature_importances_),
        float(np.mean(model.predict(codes_train) == labels_train)),
        float(np.mean(model.predict(codes_test) == labels_test)),
    )


def importance_matrix_gbt(
    codes_train: np.ndarray,
    labels_train: np.ndarray,
    codes_test: np.ndarray,
    labels_test: np.ndarray,
    seed: int | None = None,
    n_jobs: int | None = None,
) -> tuple[np.ndarray, float, float]:
    """Fit one ``GradientBoostingClassifier`` per factor on the raw train codes.

    Returns ``(importance [D, K], mean train accuracy, mean test accuracy)``; column k holds
    ``|feature_importances_|`` of factor k's model. sklearn defaults throughout (100 trees,
    depth 3, learning rate 0.1), ``random_state=seed``. Inputs as in ``dci``. The factors are
    independent fits, so ``n_jobs`` worker processes (joblib's convention: None is 1, -1 is
    every core) give the same numbers sooner.
    """
    c_tr, l_tr, c_te, l_te = check_split(codes_train, labels_train, codes_test, labels_test)
    fits = Parallel(n_jobs=n_jobs)(
        delayed(_fit_factor)(c_tr, l_tr[:, k], c_te, l_te[:, k], seed) for k in range(l_tr.shape[1])
    )
    importance = np.stack([f[0] for f in fits], axis=1)
    return importance, float(np.mean([f[1] for f in fits])), float(np.mean([f[2] for f in fits]))


def dci(
    codes_train: np.ndarray,
    labels_train: np.ndarray,
    codes_test: np.ndarray,
    labels_test: np.ndarray,
    seed: int | None = None,
    n_jobs: int | None = None,
) -> dict[str, float]:
    """dlib's DCI scores.

    codes ``[N, D]`` floats, labels ``[N, K]`` integer class indices (dlib: ``[D, N]``,
    ``[K, N]``); dlib's study uses 10,000 train and 5,000 test points. Returns
    ``dci_disentanglement``, ``dci_completeness`` (from the GBT importance matrix, see
    ``importance_matrix_gbt``), ``dci_informativeness_train`` and ``dci_informativeness_test``
    (dlib's ``disentanglement``, ``completeness``, ``informativeness_train/test``).

    Quirks kept from dlib: informativeness is the mean classification *accuracy* over factors
    (not the error of the DCI paper); the trees see the raw, unstandardised codes; and dlib's
    trees are unseeded, so its D and C jitter at the ~1e-3 level between runs. ``seed=None``
    reproduces that (unseeded); an int makes the result repeatable. Cost: 100 trees per class
    per factor, the slowest metric by far (timings in docs/metrics.md); ``n_jobs`` fits the
    factors in parallel processes (same result).
    """
    importance, acc_train, acc_test = importance_matrix_gbt(
        codes_train, labels_train, codes_test, labels_test, seed=seed, n_jobs=n_jobs
    )
    return {
        "dci_disentanglement": disentanglement_from_importance(importance),
        "dci_completeness": completeness_from_importance(importance),
        "dci_informativeness_train": acc_train,
        "dci_informativeness_test": acc_test,
    }
