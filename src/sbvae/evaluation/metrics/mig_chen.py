"""Chen et al. (2018) MIG: continuous mutual-information estimates from posterior samples.

This is the estimator of the beta-TCVAE paper and its reference code (rtqichen/beta-tcvae),
not disentanglement_lib's binned MIG (``sbvae.evaluation.metrics.mig``); the two numbers are not
interchangeable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sbvae.evaluation.metrics.utils import check_codes, check_labels

__all__ = ["mig_chen"]

_LOG_2PI = math.log(2.0 * math.pi)


def _entropy_per_dim(points: np.ndarray, means: np.ndarray, logvars: np.ndarray, block_elements: int) -> np.ndarray:
    """-mean_s log q(z_s) per dimension ``[D]``, q = (1/n) sum_n N(mean_n, exp(logvar_n)).

    ``points`` is ``[S, D]``; ``means`` / ``logvars`` are the n mixture components ``[n, D]``.
    Streams over blocks of points and of components (a running log-sum-exp), so no array larger
    than about ``block_elements`` values is formed.
    """
    num_points, dims = points.shape
    num_comp = means.shape[0]
    inv_var = np.exp(-logvars)
    const = -0.5 * (logvars + _LOG_2PI)
    comp_block = max(1, min(num_comp, block_elements // dims))
    point_block = max(1, block_elements // (comp_block * dims))
    total = np.zeros(dims)
    for s0 in range(0, num_points, point_block):
        z = points[s0 : s0 + point_block]
        run_max = np.full(z.shape, -np.inf)
        run_sum = np.zeros(z.shape)
        for c0 in range(0, num_comp, comp_block):
            sl = slice(c0, c0 + comp_block)
            # log N(z; mean, var) for every (component, point, dim), built in place
            logp = np.subtract(z[None, :, :], means[sl, None, :])
            np.square(logp, out=logp)
            logp *= -0.5 * inv_var[sl, None, :]
            logp += const[sl, None, :]
            new_max = np.maximum(run_max, logp.max(axis=0))
            run_sum *= np.exp(run_max - new_max)
            logp -= new_max
            np.exp(logp, out=logp)
            run_sum += logp.sum(axis=0)
            run_max = new_max
        log_q = run_max + np.log(run_sum) - math.log(num_comp)
        total -= log_q.sum(axis=0)
    return total / num_points


def _subset_entropy(
    rows: np.ndarray,
    samples: np.ndarray,
    means: np.ndarray,
    logvars: np.ndarray,
    num_samples: int,
    rng: np.random.Generator,
    block_elements: int,
) -> np.ndarray:
    picked = rows if rows.size <= num_samples else rng.choice(rows, size=num_samples, replace=False)
    return _entropy_per_dim(samples[picked], means[rows], logvars[rows], block_elements)


def mig_chen(
    means: np.ndarray,
    logvars: np.ndarray,
    labels: np.ndarray,
    factor_sizes: Sequence[int] | None = None,
    factors: Sequence[int] | None = None,
    num_samples: int = 10_000,
    seed: int | None = 0,
    check_grid: bool = True,
    block_elements: int = 1 << 22,
) -> dict[str, float | list[float] | list[int]]:
    """Chen et al. 2018 MIG on a full-factorial dataset.

    ``means`` and ``logvars`` are the Gaussian posterior parameters ``[N, D]`` (log-variances,
    not Chen's log-sigma) of every image of the grid, ``labels`` ``[N, K]`` their integer factor
    indices (one row per factor combination, any order; dlib-style arrays would be transposed).
    ``factor_sizes`` gives |V_k| (default: the number of distinct labels per factor);
    ``factors`` selects the factors to score (default all; Chen scores dSprites without shape).

    One sample z ~ q(z|x) per image is drawn. H(z_j) is estimated at up to ``num_samples``
    of these samples (a seeded subsample without replacement, as Chen's ``randperm``) as
    -mean log q(z_j), with q(z_j) the mixture of all N posteriors; H(z_j | v_k) the same within
    each value's subset of images, averaged with the empirical weight of each value (1/|V_k| on
    the grid). I = H(z_j) - H(z_j | v_k), sorted over j, clamped at 0 and divided by
    log |V_k|; the result is the mean top-1 minus top-2 gap over the scored factors.

    Returns ``mig_chen``, ``mig_chen_per_factor`` and ``mig_chen_factors`` (the scored indices).
    Cost is O(N * min(N, num_samples) * D) per scored factor plus the marginal, streamed in
    blocks of ``block_elements`` values (about 32 MB each), so memory stays bounded; the whole
    of dSprites is slow on a CPU, lower ``num_samples`` to trade accuracy for time.
    ``seed`` seeds both the posterior samples and the subsample (None: fresh entropy).
    ``check_grid`` requires each factor combination exactly once (N = prod |V_k|).
    """
    means = check_codes(means, "means").astype(np.float64)
    logvars = check_codes(logvars, "logvars").astype(np.float64)
    if logvars.shape != means.shape:
        raise ValueError(f"means and logvars must have the same shape, got {means.shape} and {logvars.shape}")
    labels_arr = np.asarray(labels)
    if labels_arr.ndim == 2 and labels_arr.shape[0] != means.shape[0]:
        raise ValueError(
            f"means and labels have a different number of samples (N = {means.shape[0]} vs {labels_arr.shape[0]})"
        )
    labels_arr = check_labels(labels_arr)
    n, num_factors = labels_arr.shape
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    if block_elements < 1:
        raise ValueError(f"block_elements must be positive, got {block_elements}")

    if factor_sizes is None:
        sizes = [int(np.unique(labels_arr[:, k]).size) for k in range(num_factors)]
    else:
        sizes = [int(s) for s in factor_sizes]
        if len(sizes) != num_factors:
            raise ValueError(f"factor_sizes has {len(sizes)} entries but labels have {num_factors} factors")
        for k, size in enumerate(sizes):
            if labels_arr[:, k].min() < 0 or labels_arr[:, k].max() >= size:
                raise ValueError(f"labels of factor {k} must lie in 0..{size - 1} (factor_sizes)")
    if check_grid:
        distinct = np.unique(labels_arr, axis=0).shape[0]
        if n != math.prod(sizes) or distinct != n:
            raise ValueError(
                f"labels are not a full-factorial grid: {n} rows, {distinct} distinct "
                f"combinations, factor sizes {sizes} (product {math.prod(sizes)}); "
                "pass check_grid=False to skip this check"
            )
    chosen = list(range(num_factors)) if factors is None else [int(k) for k in factors]
    if not chosen or len(set(chosen)) != len(chosen) or not all(0 <= k < num_factors for k in chosen):
        raise ValueError(f"factors must be distinct indices in 0..{num_factors - 1}, got {factors!r}")

    rng = np.random.default_rng(seed)
    samples = means + np.exp(0.5 * logvars) * rng.standard_normal(means.shape)
    all_rows = np.arange(n)
    marginal = _subset_entropy(all_rows, samples, means, logvars, num_samples, rng, block_elements)
    per_factor = []
    for k in chosen:
        conditional = np.zeros(means.shape[1])
        for value in np.unique(labels_arr[:, k]):
            rows = np.flatnonzero(labels_arr[:, k] == value)
            conditional += (
                rows.size / n * _subset_entropy(rows, samples, means, logvars, num_samples, rng, block_elements)
            )
        info = np.clip(np.sort(marginal - conditional)[::-1], 0.0, None) / math.log(sizes[k])
        per_factor.append(float(info[0] - info[1]))
    return {"mig_chen": float(np.mean(per_factor)), "mig_chen_per_factor": per_factor, "mig_chen_factors": chosen}
