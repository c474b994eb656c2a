"""PSNR loss (NAFNet's): the negative PSNR of each image, averaged over the batch."""

from __future__ import annotations

import math

import torch
from torch import nn

from mcir.constraints import NonNegativeFloat
from mcir.errors import OptionError
from mcir.losses.loss_util import Reduction, check_reduction
from mcir.registry import LOSS_REGISTRY

#: ITU-R BT.601 RGB -> Y weights for [0, 1] inputs and 8-bit output, as in NAFNet's loss.
_Y_COEF = (65.481, 128.553, 24.966)


@LOSS_REGISTRY.register()
class PSNRLoss(nn.Module):
    """``loss_weight · 10/ln(10) · log(mean((pred − target)²) + 1e-8)`` per image, i.e. −PSNR (peak 1).

    Follows megvii-research/NAFNet ``basicsr/models/losses/losses.py``: the mean is over C, H, W of each
    image, then the per-image values are reduced over the batch. The loss is negative (−PSNR in dB), so
    it decreases as PSNR rises.

    Args:
        loss_weight: Factor applied to the reduced loss.
        reduction: ``'mean'`` over the batch (the official one), ``'sum'``, or ``'none'`` (one value per image).
        toY: Compare the BT.601 luma ``(65.481·R + 128.553·G + 24.966·B + 16) / 255`` of RGB inputs instead.
    """

    def __init__(self, loss_weight: NonNegativeFloat = 1.0, reduction: Reduction = "mean", toY: bool = False):
        super().__init__()
        self.loss_weight = float(loss_weight)
        self.reduction = check_reduction(reduction)
        self.toY = bool(toY)
        self.scale = 10.0 / math.log(10.0)
        self.register_buffer("coef", torch.tensor(_Y_COEF).view(1, 3, 1, 1), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            pred: Prediction (N, C, H, W), RGB in [0, 1] when ``toY``.
            target: Ground truth of the same shape.

        Returns:
            A scalar, or shape (N,) with ``reduction='none'``.
        """
        if pred.dim() != 4 or pred.shape != target.shape:
            raise OptionError(
                f"PSNRLoss: needs (N, C, H, W) prediction and target of one shape, got {tuple(pred.shape)} "
                f"and {tuple(target.shape)}"
            )
        if self.toY:
            if pred.shape[1] != 3:
                raise OptionError(f"PSNRLoss: toY needs 3 (RGB) channels, got {pred.shape[1]}", key="toY")
            coef = self.coef.to(pred)
            pred = ((pred * coef).sum(dim=1, keepdim=True) + 16.0) / 255.0
            target = ((target * coef).sum(dim=1, keepdim=True) + 16.0) / 255.0
        per_image = self.scale * torch.log(((pred - target) ** 2).mean(dim=(1, 2, 3)) + 1e-8)
        if self.reduction == "mean":
            per_image = per_image.mean()
        elif self.reduction == "sum":
            per_image = per_image.sum()
        return self.loss_weight * per_image
