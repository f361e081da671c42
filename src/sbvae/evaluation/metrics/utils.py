"""Shared pieces of the array metrics: input checks, the histogram discretiser, plug-in MI.

Layout: codes are ``[N, D]`` floats and factor labels ``[N, K]`` integer class indices, one row
per sample. disentanglement_lib (dlib) stores both transposed (``[D, N]`` and ``[K, N]``); the
numbers are the same.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "check_codes",
    "check_codes_labels",
    "check_labels",
    "check_split",
    "discrete_entropy",
    "discrete_mutual_info",
    "discretize",
    "standardize",
]


def check_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
    """Validate a code matrix ``[N, D]`` and return it as a float array.

    Floating dtypes are kept (dlib discretises float32 codes with float32 bin edges); other
    numeric dtypes become float64. Raises ``ValueError`` for a non-2-D array, fewer than two
    samples or two code dimensions, or any NaN / infinite value.
    """
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D], got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    n, d = arr.shape
    if n < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {n}")
    if d < 2:
        raise ValueError(f"{name} needs at least 2 code dimensions, got {d}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.flatnonzero(~finite.all(axis=0))
        kind = "NaN" if np.isnan(arr).any() else "infinite"
        raise ValueError(f"{name} contain {kind} values (code dimension(s) {bad.tolist()})")
    return arr


def check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """Validate factor labels ``[N, K]`` (integer class indices) and return them as int64.

    Raises ``ValueError`` for a non-2-D array, no factors, non-integer values, or a factor that
    takes only one value (its entropy is 0, so MIG would divide by zero).
    """
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, K], got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one factor column")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name} must be integer class indices, got non-integer values")
    elif arr.dtype.kind not in "biu":
        raise ValueError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    constant = [k for k in range(arr.shape[1]) if arr.shape[0] == 0 or np.all(arr[:, k] == arr[0, k])]
    if constant:
        raise ValueError(
            f"{name}: factor(s) {constant} take only one value; drop them (a constant factor has zero entropy)"
        )
    return arr


def check_codes_labels(
    codes: np.ndarray, labels: np.ndarray, names: tuple[str, str] = ("codes", "labels")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate codes ``[N, D]`` with their factor labels ``[N, K]``; return ``(codes, labels)``.

    dlib's layout is transposed (``[D, N]``, ``[K, N]``). Raises ``ValueError`` naming the
    problem: non-2-D arrays, a different number of samples, NaN or infinite codes, fewer than two
    code dimensions, non-integer labels, or a factor that takes only one value.
    """
    codes_arr = np.asarray(codes)
    labels_arr = np.asarray(labels)
    if codes_arr.ndim == 2 and labels_arr.ndim == 2 and codes_arr.shape[0] != labels_arr.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} have a different number of samples "
            f"(N = {codes_arr.shape[0]} vs {labels_arr.shape[0]})"
        )
    return check_codes(codes_arr, names[0]), check_labels(labels_arr, names[1])


def check_split(
    codes_train: np.ndarray, labels_train: np.ndarray, codes_test: np.ndarray, labels_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate a train and a test split (each as ``check_codes_labels``) with matching D and K."""
    c_tr, l_tr = check_codes_labels(codes_train, labels_train, ("codes_train", "labels_train"))
    c_te, l_te = check_codes_labels(codes_test, labels_test, ("codes_test", "labels_test"))
    if c_tr.shape[1] != c_te.shape[1]:
        raise ValueError(
            f"codes_train and codes_test have a different number of code dimensions "
            f"({c_tr.shape[1]} vs {c_te.shape[1]})"
        )
    if l_tr.shape[1] != l_te.shape[1]:
        raise ValueError(
            f"labels_train and labels_test have a different number of factors ({l_tr.shape[1]} vs {l_te.shape[1]})"
        )
    return c_tr, l_tr, c_te, l_te


def _check_num_bins(num_bins: int) -> int:
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    return int(num_bins)


def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """dlib's histogram discretiser: integer bin labels ``[N, D]`` in ``1..num_bins``.

    Per code dimension: ``num_bins`` equal-width bins between its min and max (exactly numpy's
    ``histogram`` edges, computed in the codes' float dtype), keep the ``num_bins`` left edges and
    ``digitize`` against them, so the minimum gets label 1 and the maximum label ``num_bins``.
    A constant dimension gets a single label. dlib returns the same labels as floats, in its
    transposed ``[D, N]`` layout; here they are int64 ``[N, D]``. Codes are not validated
    (use ``check_codes``).
    """
    num_bins = _check_num_bins(num_bins)
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"codes must be a 2-D array [N, D], got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=np.int64)
    for d in range(arr.shape[1]):
        column = arr[:, d]
        left_edges = np.histogram_bin_edges(column, bins=num_bins)[:-1]
        out[:, d] = np.digitize(column, left_edges)
    return out


def _dense_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Relabel a 1-D label vector to 0..C-1 (sorted order); return (labels, C)."""
    uniques, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(-1), uniques.size


def _mi_from_labels(true: np.ndarray, n_true: int, pred: np.ndarray, n_pred: int) -> float:
    """Plug-in MI (nats) of two dense labellings, the same arithmetic as sklearn's
    ``mutual_info_score(true, pred)``: contingency table rows = ``true``, terms below machine
    epsilon dropped, total clipped at 0, and 0 when either side has a single class."""
    if n_true == 1 or n_pred == 1:
        return 0.0
    table = np.bincount(true * n_pred + pred, minlength=n_true * n_pred).reshape(n_true, n_pred)
    rows, cols = np.nonzero(table)
    joint = table[rows, cols]
    total = int(joint.sum())
    row_sums = table.sum(axis=1)
    col_sums = table.sum(axis=0)
    p_joint = joint / total
    log_outer = -np.log(row_sums[rows].astype(np.int64) * col_sums[cols].astype(np.int64))
    log_outer = log_outer + np.log(total) + np.log(total)
    terms = p_joint * (np.log(joint) - np.log(total)) + p_joint * log_outer
    terms = np.where(np.abs(terms) < np.finfo(terms.dtype).eps, 0.0, terms)
    return float(max(terms.sum(), 0.0))


def discrete_mutual_info(code_labels: np.ndarray, factor_labels: np.ndarray) -> np.ndarray:
    """Plug-in mutual information matrix ``[D, K]`` in nats between discrete labellings.

    Entry ``[i, j]`` equals ``sklearn.metrics.mutual_info_score(factor_labels[:, j],
    code_labels[:, i])`` (dlib's ``discrete_mutual_info``; its inputs are ``[D, N]`` and
    ``[K, N]``), computed with one ``bincount`` per pair instead of sklearn's input checks.
    """
    a = np.asarray(code_labels)
    b = np.asarray(factor_labels)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"label arrays must be 2-D with the same number of rows, got shapes {a.shape} and {b.shape}")
    dense_a = [_dense_labels(a[:, i]) for i in range(a.shape[1])]
    dense_b = [_dense_labels(b[:, j]) for j in range(b.shape[1])]
    out = np.zeros((a.shape[1], b.shape[1]))
    for i, (code, n_code) in enumerate(dense_a):
        for j, (factor, n_factor) in enumerate(dense_b):
            out[i, j] = _mi_from_labels(factor, n_factor, code, n_code)
    return out


def discrete_entropy(labels: np.ndarray) -> np.ndarray:
    """Plug-in entropy ``[K]`` in nats of each label column (dlib: ``mutual_info_score(y, y)``)."""
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be a 2-D array [N, K], got shape {arr.shape}")
    out = np.zeros(arr.shape[1])
    for j in range(arr.shape[1]):
        dense, n = _dense_labels(arr[:, j])
        out[j] = _mi_from_labels(dense, n, dense, n)
    return out


def standardize(
    codes: np.ndarray, mean: np.ndarray | None = None, std: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dlib's ``normalize_data``: per-dimension z-score (population std), returns (z, mean, std).

    Pass the train ``mean`` / ``std`` to normalise test codes. Deviation from dlib: a zero
    standard deviation is replaced by 1 (dlib divides by zero and its classifiers then fail).
    """
    arr = np.asarray(codes)
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)  # float32 stays float32, as in dlib
    if mean is None:
        mean = arr.mean(axis=0)
    if std is None:
        std = arr.std(axis=0)
        std = np.where(std > 0, std, 1.0)
    return (arr - mean) / std, mean, std


def fit_quietly(model: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """Fit a scikit-learn model without its convergence warnings: disentanglement_lib's
    defaults (e.g. ``LogisticRegression(max_iter=100)``) often stop early, and we keep them
    for parity, so the warning says nothing the user can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)
