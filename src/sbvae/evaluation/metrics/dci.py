"""DCI: Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018), as in
disentanglement_lib: gradient-boosted-tree importances and classification accuracy."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.stats
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.ensemble import GradientBoostingClassifier

from sbvae.evaluation.metrics.utils import check_split

__all__ = [
    "FactorFit",
    "completeness_from_importance",
    "dci",
    "dci_from_fits",
    "disentanglement_from_importance",
    "estimate_fit_seconds",
    "fit_factors",
    "importance_matrix",
    "trees_per_stage",
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


class FactorFit(NamedTuple):
    """One factor's trees: ``|feature importances|`` [D], train and test accuracy, and the
    seconds the fit and its predictions took (in whichever process ran them)."""

    importance: np.ndarray
    train_accuracy: float
    test_accuracy: float
    seconds: float


def _fit_factor(
    codes_train: np.ndarray, labels_train: np.ndarray, codes_test: np.ndarray, labels_test: np.ndarray, seed: int | None
) -> FactorFit:
    tick = time.perf_counter()
    model = GradientBoostingClassifier(random_state=seed)
    model.fit(codes_train, labels_train)
    return FactorFit(
        np.abs(model.feature_importances_),
        float(np.mean(model.predict(codes_train) == labels_train)),
        float(np.mean(model.predict(codes_test) == labels_test)),
        time.perf_counter() - tick,
    )


def trees_per_stage(labels: np.ndarray) -> int:
    """Regression trees a boosting stage fits for these class labels: one per class, or one
    for two classes."""
    classes = len(np.unique(labels))
    return 1 if classes <= 2 else classes


def fit_factors(
    codes_train: np.ndarray,
    labels_train: np.ndarray,
    codes_test: np.ndarray,
    labels_test: np.ndarray,
    seed: int | None = None,
    n_jobs: int | None = None,
    on_fit: Callable[[int], None] | None = None,
) -> list[FactorFit]:
    """One ``GradientBoostingClassifier`` per factor on the raw train codes, in factor order.

    sklearn defaults throughout (100 stages, depth 3, learning rate 0.1), ``random_state=seed``.
    The factors are independent fits, so ``n_jobs`` worker processes (joblib's convention: None
    is 1, -1 is every core) give the same numbers sooner; the factors with the most trees
    start first and the rest fill in beside them. ``on_fit(done)`` is called as fits finish.
    """
    c_tr, l_tr, c_te, l_te = check_split(codes_train, labels_train, codes_test, labels_test)
    factors = range(l_tr.shape[1])
    largest_first = sorted(factors, key=lambda k: -trees_per_stage(l_tr[:, k]))
    fits = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fit_factor)(c_tr, l_tr[:, k], c_te, l_te[:, k], seed) for k in largest_first
    )
    by_factor = {}
    for k, fit in zip(largest_first, fits, strict=True):
        by_factor[k] = fit
        if on_fit is not None:
            on_fit(len(by_factor))
    return [by_factor[k] for k in factors]


def estimate_fit_seconds(
    codes_train: np.ndarray, labels_train: np.ndarray, n_jobs: int | None = None, stages: int = 2
) -> float:
    """Seconds ``fit_factors`` should take on these codes and labels: ``stages`` boosting stages
    of the factor with the fewest trees, timed, scaled to every factor's trees and spread over
    ``n_jobs`` processes."""
    trees = [trees_per_stage(labels_train[:, k]) for k in range(labels_train.shape[1])]
    k = int(np.argmin(trees))
    tick = time.perf_counter()
    GradientBoostingClassifier(n_estimators=stages, random_state=0).fit(codes_train, labels_train[:, k])
    per_tree = (time.perf_counter() - tick) / (stages * trees[k])
    return per_tree * GradientBoostingClassifier().n_estimators * sum(trees) / effective_n_jobs(n_jobs)


def importance_matrix(fits: Sequence[FactorFit]) -> tuple[np.ndarray, float, float]:
    """``(importance [D, K], mean train accuracy, mean test accuracy)`` of the fits of
    ``fit_factors``; column k holds ``|feature_importances_|`` of factor k's model."""
    importance = np.stack([f.importance for f in fits], axis=1)
    return importance, float(np.mean([f.train_accuracy for f in fits])), float(np.mean([f.test_accuracy for f in fits]))


def dci_from_fits(fits: Sequence[FactorFit]) -> dict[str, float]:
    """The scores of ``dci`` from the per-factor fits of ``fit_factors``."""
    importance, acc_train, acc_test = importance_matrix(fits)
    return {
        "dci_disentanglement": disentanglement_from_importance(importance),
        "dci_completeness": completeness_from_importance(importance),
        "dci_informativeness_train": acc_train,
        "dci_informativeness_test": acc_test,
    }


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
    ``fit_factors`` and ``importance_matrix``), ``dci_informativeness_train`` and
    ``dci_informativeness_test`` (dlib's ``disentanglement``, ``completeness``,
    ``informativeness_train/test``).

    Quirks kept from dlib: informativeness is the mean classification *accuracy* over factors
    (not the error of the DCI paper); the trees see the raw, unstandardised codes; and dlib's
    trees are unseeded, so its D and C jitter at the ~1e-3 level between runs. ``seed=None``
    reproduces that (unseeded); an int makes the result repeatable. Cost: 100 trees per class
    per factor, the slowest metric by far (timings in docs/metrics.md); ``n_jobs`` fits the
    factors in parallel processes (same result).
    """
    return dci_from_fits(fit_factors(codes_train, labels_train, codes_test, labels_test, seed, n_jobs))
