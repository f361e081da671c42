"""SAP score (Separated Attribute Predictability, Kumar et al. 2018), as in disentanglement_lib."""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from sbvae.evaluation.metrics.utils import check_split

__all__ = ["sap", "sap_from_score_matrix", "sap_score_matrix"]


def sap_score_matrix(
    codes_train: np.ndarray,
    labels_train: np.ndarray,
    codes_test: np.ndarray,
    labels_test: np.ndarray,
    continuous_factors: bool = False,
) -> np.ndarray:
    """Predictability of each factor from each single code dimension, ``[D, K]``.

    Discrete mode: test accuracy of ``LinearSVC(C=0.01, class_weight="balanced")`` fit on the one
    train code dimension. Continuous mode: squared Pearson correlation between code and factor
    label on the *train* split (ddof 1; 0 where the code's variance is <= 1e-12); the test split
    is ignored, as in dlib. Inputs as in ``sap``.
    """
    c_tr, l_tr, c_te, l_te = check_split(codes_train, labels_train, codes_test, labels_test)
    c_tr = c_tr.astype(np.float64)
    num_codes, num_factors = c_tr.shape[1], l_tr.shape[1]
    scores = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        for j in range(num_factors):
            if continuous_factors:
                cov = np.cov(c_tr[:, i], l_tr[:, j].astype(np.float64), ddof=1)
                if cov[0, 0] > 1e-12:
                    scores[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
            else:
                model = LinearSVC(C=0.01, class_weight="balanced")
                model.fit(c_tr[:, i : i + 1], l_tr[:, j])
                scores[i, j] = np.mean(model.predict(c_te[:, i : i + 1]) == l_te[:, j])
    return scores


def sap_from_score_matrix(scores: np.ndarray) -> float:
    """Mean over factors of (best - second-best) score over codes; ``scores`` is ``[D >= 2, K]``."""
    m = np.asarray(scores, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2 or m.shape[1] < 1:
        raise ValueError(f"score matrix must be [D >= 2, K >= 1], got shape {m.shape}")
    ordered = np.sort(m, axis=0)
    return float(np.mean(ordered[-1] - ordered[-2]))


def sap(
    codes_train: np.ndarray,
    labels_train: np.ndarray,
    codes_test: np.ndarray,
    labels_test: np.ndarray,
    continuous_factors: bool = False,
) -> dict[str, float]:
    """dlib's SAP score: ``{"sap_score": float}`` (dlib's key is ``SAP_score``).

    codes ``[N, D]`` floats, labels ``[N, K]`` integer class indices (dlib: ``[D, N]``,
    ``[K, N]``); the study uses 10,000 train / 5,000 test points and ``continuous_factors=False``.
    See ``sap_score_matrix`` for the two modes; in continuous mode the factor *class indices*
    (not physical values) are correlated with the codes and only the train split is used.

    Note: dlib's LinearSVC was unseeded and, with the scikit-learn of its time, solved the dual
    problem by randomised coordinate descent; current scikit-learn (``dual="auto"``) solves the
    same objective in the primal for these 1-feature problems, which is deterministic. Scores
    agree with dlib up to solver tolerance.
    """
    return {
        "sap_score": sap_from_score_matrix(
            sap_score_matrix(codes_train, labels_train, codes_test, labels_test, continuous_factors)
        )
    }
