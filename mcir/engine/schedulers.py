"""LR schedulers: torch's MultiStepLR / CosineAnnealingLR, BasicSR's restart variants, Restormer's cyclic one."""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import List, Sequence

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR

from mcir.registry import SCHEDULER_REGISTRY

SCHEDULER_REGISTRY.register(MultiStepLR)
SCHEDULER_REGISTRY.register(CosineAnnealingLR)


@SCHEDULER_REGISTRY.register()
class MultiStepRestartLR(LRScheduler):
    """Multiply the LR by ``gamma`` at each milestone; restart to ``base·weight`` at each restart iteration.

    Args:
        optimizer: The optimizer.
        milestones: Iterations where the LR is multiplied by ``gamma``.
        gamma: Decay factor.
        restarts: Iterations where the LR restarts.
        restart_weights: LR multiplier of each restart (same length as ``restarts``).
        last_epoch: Index of the last step (``-1`` to start).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.1,
        restarts: Sequence[int] = (0,),
        restart_weights: Sequence[float] = (1.0,),
        last_epoch: int = -1,
    ):
        if len(restarts) != len(restart_weights):
            raise ValueError("restarts and restart_weights must have the same length")
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        self.restarts = [int(r) for r in restarts]
        self.restart_weights = [float(w) for w in restart_weights]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        """Closed form at ``last_epoch`` (no chaining, so resuming is exact)."""
        it = self.last_epoch
        k = bisect_right(self.restarts, it) - 1
        weight = self.restart_weights[k] if k >= 0 else 1.0
        start = self.restarts[k] if k >= 0 else 0
        n_decays = sum(1 for m in self.milestones if start < m <= it) if start else bisect_right(self.milestones, it)
        return [base * weight * self.gamma**n_decays for base in self.base_lrs]


@SCHEDULER_REGISTRY.register()
class CosineAnnealingRestartLR(LRScheduler):
    """Cosine annealing over consecutive periods, each restarting at ``base·restart_weight`` (BasicSR's).

    Args:
        optimizer: The optimizer.
        periods: Length of each cosine cycle (iterations).
        restart_weights: LR multiplier at the start of each cycle.
        eta_min: Minimum LR.
        last_epoch: Index of the last step (``-1`` to start).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1.0,),
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ):
        if len(periods) != len(restart_weights):
            raise ValueError("periods and restart_weights must have the same length")
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_min = eta_min
        self.cumulative = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        """Closed form at ``last_epoch``."""
        it = self.last_epoch
        idx = min(bisect_right(self.cumulative, it), len(self.periods) - 1)
        start = self.cumulative[idx - 1] if idx > 0 else 0
        period = self.periods[idx]
        weight = self.restart_weights[idx]
        t = min(it - start, period)
        cos = 0.5 * (1 + math.cos(math.pi * t / period))
        return [self.eta_min + weight * (base - self.eta_min) * cos for base in self.base_lrs]


@SCHEDULER_REGISTRY.register()
class CosineAnnealingRestartCyclicLR(CosineAnnealingRestartLR):
    """Cosine annealing over consecutive periods with one minimum LR per period (Restormer's scheduler).

    Args:
        optimizer: The optimizer.
        periods: Length of each cosine cycle (iterations).
        restart_weights: LR multiplier at the start of each cycle.
        eta_mins: Minimum LR of each cycle (same length as ``periods``); a cycle whose minimum equals the
            base LR keeps it constant.
        last_epoch: Index of the last step (``-1`` to start).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: Sequence[int],
        restart_weights: Sequence[float] = (1.0,),
        eta_mins: Sequence[float] = (0.0,),
        last_epoch: int = -1,
    ):
        if len(eta_mins) != len(periods):
            raise ValueError("periods and eta_mins must have the same length")
        self.eta_mins = [float(e) for e in eta_mins]
        super().__init__(optimizer, periods, restart_weights, 0.0, last_epoch)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        """Closed form at ``last_epoch``."""
        it = self.last_epoch
        idx = min(bisect_right(self.cumulative, it), len(self.periods) - 1)
        start = self.cumulative[idx - 1] if idx > 0 else 0
        period, weight, eta = self.periods[idx], self.restart_weights[idx], self.eta_mins[idx]
        cos = 0.5 * (1 + math.cos(math.pi * min(it - start, period) / period))
        return [eta + weight * (base - eta) * cos for base in self.base_lrs]
