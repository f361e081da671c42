"""Groups of runs over seeds: one group's mean with its t interval (:func:`describe`); two
groups compared (e.g. SBD and DeConv) with Welch's t interval and test (:func:`compare`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.stats


@dataclass(frozen=True)
class Comparison:
    """``a - b`` for two groups of per-seed values."""

    mean_a: float
    std_a: float
    mean_b: float
    std_b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Interval:
    """A group's mean over its per-seed values, their sample sd and the t interval of the mean."""

    mean: float
    sd: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(values: list[float], confidence: float = 0.95) -> Interval:
    """The mean of ``values`` with its Student t confidence interval; with fewer than two values
    the sd and the interval are NaN."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean()) if len(x) else math.nan
    sd = float(x.std(ddof=1)) if len(x) > 1 else math.nan
    low = high = math.nan
    if len(x) > 1:
        half = scipy.stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * sd / math.sqrt(len(x))
        low, high = mean - half, mean + half
    return Interval(mean, sd, low, high, len(x))


def compare(a: list[float], b: list[float], confidence: float = 0.95) -> Comparison:
    """Mean difference with a Welch t confidence interval and the two-sided Welch p-value.

    With fewer than two values in a group (or no spread at all) the interval and the p-value
    are NaN: nothing can be concluded.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    sd_a = float(x.std(ddof=1)) if len(x) > 1 else math.nan
    sd_b = float(y.std(ddof=1)) if len(y) > 1 else math.nan
    low = high = p = math.nan
    if len(x) > 1 and len(y) > 1:
        va, vb = sd_a**2 / len(x), sd_b**2 / len(y)
        se = math.sqrt(va + vb)
        if se > 0:
            dof = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
            half = scipy.stats.t.ppf(0.5 + confidence / 2, dof) * se
            low, high = diff - half, diff + half
            p = float(2 * scipy.stats.t.sf(abs(diff) / se, dof))
    mean_a = float(x.mean()) if len(x) else math.nan
    mean_b = float(y.mean()) if len(y) else math.nan
    return Comparison(mean_a, sd_a, mean_b, sd_b, diff, low, high, p, len(x), len(y))


def verdict(result: Comparison, higher_is_better: bool = True) -> str:
    """``reproduced`` when the interval excludes 0 on the claimed side (a better than b),
    ``not reproduced`` when it excludes 0 on the other side, else ``inconclusive``."""
    if math.isnan(result.ci_low):
        return "inconclusive"
    better = result.ci_low > 0 if higher_is_better else result.ci_high < 0
    worse = result.ci_high < 0 if higher_is_better else result.ci_low > 0
    return "reproduced" if better else "not reproduced" if worse else "inconclusive"
