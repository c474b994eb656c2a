"""Reduction helpers shared by element-wise losses."""

from __future__ import annotations

from typing import Literal, Optional

import torch

from mcir.errors import OptionError

REDUCTIONS = ("none", "mean", "sum")
#: The ``reduction`` option of the losses.
Reduction = Literal["none", "mean", "sum"]


def check_reduction(reduction: str) -> str:
    """Validate a reduction name.

    Args:
        reduction: One of ``'none'``, ``'mean'``, ``'sum'``.

    Returns:
        ``reduction`` unchanged.

    Raises:
        OptionError: (key ``reduction``) for any other value.
    """
    if reduction not in REDUCTIONS:
        raise OptionError(f"must be one of {', '.join(REDUCTIONS)}, got {reduction!r}", key="reduction")
    return reduction


def weight_reduce_loss(
    loss: torch.Tensor, weight: Optional[torch.Tensor] = None, reduction: str = "mean"
) -> torch.Tensor:
    """Apply an optional element-wise weight to a loss map, then reduce it.

    With a weight, ``'mean'`` divides by the sum of the weight broadcast to the loss shape, so a
    (N, 1, H, W) weight on a (N, C, H, W) loss counts each pixel C times (BasicSR's convention).

    Args:
        loss: Element-wise loss, e.g. (N, C, H, W).
        weight: Optional tensor broadcastable to ``loss``.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.

    Returns:
        The loss map (``'none'``) or a scalar.
    """
    check_reduction(reduction)
    if weight is not None:
        weight = weight.to(loss).expand_as(loss)
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if weight is None:
        return loss.mean()
    # All-zero weights would give 0/0; the clamp turns that into a zero loss instead of NaN.
    return loss.sum() / weight.sum().clamp_min(torch.finfo(loss.dtype).tiny)
