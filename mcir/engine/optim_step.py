"""One optimizer step: zero grads, backward, optional gradient clipping, warm-up scaling, step."""

from __future__ import annotations

from typing import Iterable, List, Optional

import torch
from torch import nn


class OptimStep:
    """Owns the mechanics of an update so models only compute losses.

    Warm-up scales the scheduled learning rate during the step only (then restores it), so it composes
    with any scheduler, chainable or not.

    Args:
        optimizer: The optimizer.
        params: Parameters to clip (usually the generator's).
        clip_grad_norm: Max global L2 norm of the gradients, or None.
        warmup_iter: Linear warm-up length in iterations (``<= 0``: none); factor ``min(1, iter / warmup_iter)``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: Iterable[nn.Parameter],
        clip_grad_norm: Optional[float] = None,
        warmup_iter: int = -1,
    ):
        self.optimizer = optimizer
        self.params: List[nn.Parameter] = [p for p in params if p.requires_grad]
        self.clip_grad_norm = clip_grad_norm
        self.warmup_iter = warmup_iter

    def lr_factor(self, iteration: int) -> float:
        """Warm-up factor at ``iteration`` (1-based, as BasicSR)."""
        if self.warmup_iter > 0 and iteration < self.warmup_iter:
            return iteration / self.warmup_iter
        return 1.0

    def step(self, loss: torch.Tensor, iteration: int) -> Optional[float]:
        """Backpropagate ``loss`` and update the parameters.

        Args:
            loss: Scalar loss with a graph to the parameters.
            iteration: Current iteration (1-based).

        Returns:
            The gradient norm before clipping when clipping is on, else None.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = None
        if self.clip_grad_norm is not None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm))
        factor = self.lr_factor(iteration)
        if factor != 1.0:
            scheduled = [g["lr"] for g in self.optimizer.param_groups]
            for g in self.optimizer.param_groups:
                g["lr"] = g["lr"] * factor
            self.optimizer.step()
            for g, lr in zip(self.optimizer.param_groups, scheduled):
                g["lr"] = lr
        else:
            self.optimizer.step()
        return grad_norm

    def current_lr(self, iteration: int) -> float:
        """Learning rate of the first group as applied at ``iteration`` (warm-up included)."""
        return self.optimizer.param_groups[0]["lr"] * self.lr_factor(iteration)
