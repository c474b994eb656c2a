"""Seed statistics of the reproduction harness against hand-computed values."""

from __future__ import annotations

import math

import pytest

from mcir.repro.stats import mean_std, paired_gain, t_critical


def test_mean_std_uses_the_sample_std():
    mean, std = mean_std([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert std == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert mean_std([5.0]) == (5.0, 0.0)


def test_paired_gain_interval_and_verdicts():
    base = [30.0, 30.5, 29.8]
    better = [30.2, 30.7, 30.1]  # diffs 0.2, 0.2, 0.3
    g = paired_gain(better, base)
    d_mean, d_std = mean_std([0.2, 0.2, 0.3])
    half = 4.303 * d_std / math.sqrt(3)
    assert g.mean == pytest.approx(d_mean)
    assert (g.low, g.high) == pytest.approx((d_mean - half, d_mean + half))
    assert g.verdict == "better"
    assert paired_gain(base, better).verdict == "worse"
    noisy = paired_gain([30.3, 30.1, 29.9], base)  # diffs +0.3, -0.4, +0.1
    assert noisy.low < 0 < noisy.high and noisy.verdict == "within seed noise"
    assert paired_gain([1.0], [0.5]).verdict == "one seed: no interval"


def test_t_table():
    assert t_critical(1) == 12.706 and t_critical(2) == 4.303 and t_critical(100) == 1.96
    with pytest.raises(ValueError):
        t_critical(0)
