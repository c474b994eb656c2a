"""Seed statistics: mean ± std over seeds and paired gains with a 95 % Student-t interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

# Two-sided 95 % critical values of Student's t for 1-30 degrees of freedom (standard table values).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_critical(dof: int) -> float:
    """Two-sided 95 % critical value of Student's t with ``dof`` degrees of freedom (normal beyond 30)."""
    if dof < 1:
        raise ValueError("needs at least one degree of freedom")
    return _T975[dof - 1] if dof <= len(_T975) else 1.96


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class Gain:
    """Mean paired difference (method − baseline) over seeds with its 95 % interval."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def verdict(self) -> str:
        """``better`` / ``worse`` when the interval excludes 0, else ``within seed noise``."""
        if self.n < 2:
            return "one seed: no interval"
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "within seed noise"


def paired_gain(method: Sequence[float], baseline: Sequence[float]) -> Gain:
    """Gain of a method over the baseline from per-seed values paired by seed.

    Pairing by seed removes what the two runs share (initialisation, data order), so the interval
    measures the method's effect against seed-to-seed noise.

    Args:
        method: The method's value for each seed.
        baseline: The baseline's value for the same seeds, in the same order.

    Returns:
        The mean difference and its 95 % Student-t interval (the interval is the mean itself for one seed).
    """
    if len(method) != len(baseline) or not method:
        raise ValueError("needs the same non-zero number of values for method and baseline")
    diffs = [m - b for m, b in zip(method, baseline)]
    mean, std = mean_std(diffs)
    if len(diffs) < 2:
        return Gain(mean, mean, mean, 1)
    half = t_critical(len(diffs) - 1) * std / math.sqrt(len(diffs))
    return Gain(mean, mean - half, mean + half, len(diffs))
