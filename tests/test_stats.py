"""Welch interval, p-value and the claim verdict, and one group's t interval, on fixed numbers."""

from __future__ import annotations

import math

import pytest
import scipy.stats

from sbvae.study.stats import compare, describe, verdict


def test_matches_scipy_welch_test():
    a, b = [0.31, 0.28, 0.35, 0.30, 0.33], [0.12, 0.20, 0.15, 0.09, 0.18]
    result = compare(a, b)
    reference = scipy.stats.ttest_ind(a, b, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.difference == pytest.approx(sum(a) / 5 - sum(b) / 5)
    assert result.ci_low < result.difference < result.ci_high and result.ci_low > 0
    assert verdict(result) == "reproduced"
    assert verdict(compare(b, a)) == "not reproduced"


def test_overlapping_groups_are_inconclusive():
    result = compare([0.2, 0.4, 0.3], [0.25, 0.35, 0.3])
    assert result.ci_low < 0 < result.ci_high and verdict(result) == "inconclusive"


def test_lower_is_better_flips_the_verdict():
    errors_sbd, errors_deconv = [3.0, 3.1, 2.9], [5.0, 5.2, 4.9]
    assert verdict(compare(errors_sbd, errors_deconv), higher_is_better=False) == "reproduced"


def test_one_seed_concludes_nothing():
    result = compare([0.3], [0.1])
    assert math.isnan(result.ci_low) and math.isnan(result.p_value) and verdict(result) == "inconclusive"


def test_one_groups_interval_matches_scipy():
    values = [0.31, 0.28, 0.35, 0.30, 0.33]
    result = describe(values)
    low, high = scipy.stats.t.interval(0.95, 4, loc=sum(values) / 5, scale=scipy.stats.sem(values))
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    assert result.n == 5 and result.sd == pytest.approx(scipy.stats.tstd(values))
    one = describe([0.5])
    assert one.mean == 0.5 and math.isnan(one.sd) and math.isnan(one.ci_low) and math.isnan(one.ci_high)
    assert describe([2.0, 2.0]).ci_low == describe([2.0, 2.0]).ci_high == 2.0  # no spread: the point
