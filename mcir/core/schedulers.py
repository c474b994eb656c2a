"""Learning-rate schedulers: torch's MultiStepLR / CosineAnnealingLR, BasicSR's and Restormer's restart variants."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from typing import Annotated, List, Sequence

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, MultiStepLR

from mcir.constraints import (
    Increasing,
    NonEmpty,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    same_length,
)
from mcir.registry import SCHEDULER_REGISTRY

Milestones = Annotated[Sequence[PositiveInt], Increasing()]
SCHEDULER_REGISTRY.register(MultiStepLR, hints={"milestones": Milestones, "gamma": PositiveFloat, "last_epoch": int})
SCHEDULER_REGISTRY.register(
    CosineAnnealingLR, hints={"T_max": PositiveInt, "eta_min": NonNegativeFloat, "last_epoch": int}
)


@SCHEDULER_REGISTRY.register(relations=(same_length("restarts", "restart_weights"),))
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
        milestones: Milestones,
        gamma: PositiveFloat = 0.1,
        restarts: Annotated[Sequence[NonNegativeInt], Increasing()] = (0,),
        restart_weights: Sequence[NonNegativeFloat] = (1.0,),
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


@SCHEDULER_REGISTRY.register(relations=(same_length("periods", "restart_weights"),))
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
        periods: Annotated[Sequence[PositiveInt], NonEmpty()],
        restart_weights: Sequence[NonNegativeFloat] = (1.0,),
        eta_min: NonNegativeFloat = 0.0,
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


@SCHEDULER_REGISTRY.register(
    relations=(same_length("periods", "restart_weights"), same_length("periods", "eta_mins"))
)
class CosineAnnealingRestartCyclicLR(LRScheduler):
    """Cosine annealing over consecutive periods, each with its own minimum (Restormer's scheduler).

    At step ``t`` in period ``i`` (the first with ``t <= cumulative[i]``, as the official
    ``get_position_from_periods``) the LR is ``eta_mins[i] + restart_weights[i] · (base - eta_mins[i]) ·
    (1 + cos(π (t - start_i) / periods[i])) / 2``. Past the last period the last one's minimum is kept.
    Restormer's deraining recipe, ``periods [92000, 208000]``, ``eta_mins [3e-4, 1e-6]``, holds the base
    LR 3e-4 for 92k steps and then anneals to 1e-6.

    Args:
        optimizer: The optimizer.
        periods: Length of each cycle (iterations).
        restart_weights: LR multiplier of each cycle (same length as ``periods``).
        eta_mins: Minimum LR of each cycle (same length as ``periods``).
        last_epoch: Index of the last step (``-1`` to start).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        periods: Annotated[Sequence[PositiveInt], NonEmpty()],
        restart_weights: Sequence[NonNegativeFloat] = (1.0,),
        eta_mins: Sequence[NonNegativeFloat] = (0.0,),
        last_epoch: int = -1,
    ):
        if not len(periods) == len(restart_weights) == len(eta_mins):
            raise ValueError("periods, restart_weights and eta_mins must have the same length")
        if any(int(p) < 1 for p in periods):
            raise ValueError(f"periods must be positive, got {list(periods)}")
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_mins = [float(e) for e in eta_mins]
        self.cumulative = [sum(self.periods[: i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:  # type: ignore[override]
        """Closed form at ``last_epoch`` (no chaining, so resuming is exact)."""
        it = self.last_epoch
        idx = min(bisect_left(self.cumulative, it), len(self.periods) - 1)
        start = self.cumulative[idx - 1] if idx > 0 else 0
        t = min(it - start, self.periods[idx])
        cos = 0.5 * (1 + math.cos(math.pi * t / self.periods[idx]))
        eta_min, weight = self.eta_mins[idx], self.restart_weights[idx]
        return [eta_min + weight * (base - eta_min) * cos for base in self.base_lrs]
