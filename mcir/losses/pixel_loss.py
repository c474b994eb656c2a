"""Pixel losses: L1, MSE and Charbonnier, with optional element-wise weights."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from mcir.constraints import NonNegativeFloat, PositiveFloat
from mcir.errors import OptionError
from mcir.losses.loss_util import Reduction, check_reduction, weight_reduce_loss
from mcir.registry import LOSS_REGISTRY


class _PixelLoss(nn.Module):
    """Shared constructor and forward of element-wise losses; subclasses define ``elementwise``.

    Args:
        loss_weight: Factor applied to the reduced loss.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
    """

    def __init__(self, loss_weight: NonNegativeFloat = 1.0, reduction: Reduction = "mean"):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.reduction = check_reduction(reduction)

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        """Map ``pred - target`` to the per-element loss."""
        raise NotImplementedError

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Compute the weighted, reduced loss.

        Args:
            pred: Prediction (N, C, H, W).
            target: Ground truth of the same shape.
            weight: Optional element-wise weight broadcastable to ``pred``.

        Returns:
            ``loss_weight`` times the reduced loss (a map if ``reduction='none'``).
        """
        if pred.shape != target.shape:
            # Silent broadcasting would hide a network/dataset scale mismatch.
            raise OptionError(
                f"{type(self).__name__}: prediction shape {tuple(pred.shape)} != target shape "
                f"{tuple(target.shape)} (does the network's upscale match the dataset's scale?)"
            )
        loss = self.elementwise(pred - target)
        return self.loss_weight * weight_reduce_loss(loss, weight, self.reduction)


@LOSS_REGISTRY.register()
class L1Loss(_PixelLoss):
    """Mean absolute error ``|pred - target|``.

    Args:
        loss_weight: Factor applied to the reduced loss.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
    """

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        """Returns: ``|diff|``."""
        return diff.abs()


@LOSS_REGISTRY.register()
class MSELoss(_PixelLoss):
    """Mean squared error ``(pred - target)**2``.

    Args:
        loss_weight: Factor applied to the reduced loss.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
    """

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        """Returns: ``diff**2``."""
        return diff * diff


@LOSS_REGISTRY.register()
class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss ``sqrt((pred - target)**2 + eps)``, a differentiable L1.

    Args:
        loss_weight: Factor applied to the reduced loss.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        eps: Added under the square root (BasicSR's convention: not squared).
    """

    def __init__(self, loss_weight: NonNegativeFloat = 1.0, reduction: Reduction = "mean", eps: PositiveFloat = 1e-12):
        super().__init__(loss_weight, reduction)
        if eps <= 0:
            raise OptionError(f"must be > 0, got {eps!r}", key="eps")
        self.eps = float(eps)

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        """Returns: ``sqrt(diff**2 + eps)``."""
        return torch.sqrt(diff * diff + self.eps)
