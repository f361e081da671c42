"""Label-free scores of disentanglement_lib's ``unsupervised_metrics``: Gaussian total
correlation, Gaussian Wasserstein dependency, and mean pairwise discrete MI between codes."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from sbvae.evaluation.metrics.utils import (
    _check_num_bins,
    check_codes,
    discrete_mutual_info,
    discretize,
)

__all__ = ["gaussian_total_correlation", "gaussian_wasserstein_correlation", "unsupervised_scores"]


def _check_cov(cov: np.ndarray) -> np.ndarray:
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 1:
        raise ValueError(f"covariance must be a square 2-D matrix, got shape {c.shape}")
    return c


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """KL(N(0, cov) || N(0, diag cov)) = 0.5 (sum_j log cov_jj - log det cov), in nats.

    A zero-variance dimension gives NaN or inf, as in dlib.
    """
    c = _check_cov(cov)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(0.5 * (np.sum(np.log(np.diag(c))) - np.linalg.slogdet(c)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, cov) and N(0, diag cov):
    2 tr(cov) - 2 tr(sqrtm(diag(cov) cov)). The matrix square root's (round-off) imaginary part
    is dropped."""
    c = _check_cov(cov)
    root = scipy.linalg.sqrtm(np.diag(c)[:, None] * c)
    return float(2.0 * np.trace(c) - 2.0 * np.real(np.trace(root)))


def unsupervised_scores(codes: np.ndarray, num_bins: int = 20) -> dict[str, float]:
    """dlib's unsupervised scores of codes ``[N, D]`` (dlib: ``[D, N]``; it uses 10,000 points).

    With cov the sample covariance (ddof 1) of the codes: ``gaussian_total_correlation``,
    ``gaussian_wasserstein_correlation`` and ``gaussian_wasserstein_correlation_norm`` (divided by
    tr cov); ``mutual_info_score`` is the mean off-diagonal entry of the plug-in MI matrix (nats)
    between all pairs of ``num_bins``-bin discretised code dimensions. No labels are used.
    """
    num_bins = _check_num_bins(num_bins)
    codes = check_codes(codes)  # float32 stays float32 for the discretiser, as in dlib
    d = codes.shape[1]
    cov = np.cov(codes, rowvar=False, ddof=1)  # computed in float64
    wasserstein = gaussian_wasserstein_correlation(cov)
    binned = discretize(codes, num_bins)
    mi = discrete_mutual_info(binned, binned)
    np.fill_diagonal(mi, 0.0)
    return {
        "gaussian_total_correlation": gaussian_total_correlation(cov),
        "gaussian_wasserstein_correlation": wasserstein,
        "gaussian_wasserstein_correlation_norm": float(wasserstein / np.trace(cov)),
        "mutual_info_score": float(mi.sum() / (d * d - d)),
    }
