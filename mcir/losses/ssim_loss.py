"""Differentiable SSIM (Gaussian window) and the SSIM reconstruction loss IDT trains with."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from typing import Literal

from torch import Tensor, nn

from mcir.constraints import NonNegativeFloat, PositiveFloat, PositiveInt
from mcir.errors import OptionError
from mcir.losses.loss_util import Reduction, check_reduction
from mcir.registry import LOSS_REGISTRY

_PADDINGS = ("valid", "zeros")
_FORMS = ("one_minus", "negative")


def gaussian_kernel_1d(window_size: int, sigma: float, dtype: torch.dtype = torch.float32,
                       device: torch.device | None = None) -> Tensor:
    """Normalised 1-D Gaussian ``exp(-(i - c)^2 / (2 sigma^2))`` centred on the middle tap.

    Args:
        window_size: Taps (odd).
        sigma: Standard deviation in pixels.
        dtype: Result dtype.
        device: Result device.

    Returns:
        (window_size,) tensor summing to 1.
    """
    x = torch.arange(window_size, dtype=torch.float64, device=device) - window_size // 2
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def ssim_map(x: Tensor, y: Tensor, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0,
             padding: str = "valid") -> Tensor:
    """Per-pixel, per-channel SSIM (Wang et al. 2004) with a separable Gaussian window.

    ``C1 = (0.01 * data_range)^2``, ``C2 = (0.03 * data_range)^2``; channels are treated independently.

    Args:
        x: (N, C, H, W) image batch.
        y: Reference batch of the same shape.
        window_size: Gaussian window side (odd).
        sigma: Gaussian standard deviation.
        data_range: Value range of the images (1 for [0, 1]).
        padding: ``'valid'`` (only fully covered pixels: skimage / BasicSR / mcir's metric) or ``'zeros'``
            (same-size map with zero padding, as IDT's and many training codes' ``SSIM`` module).

    Returns:
        (N, C, H', W') SSIM map; H' = H - window_size + 1 for ``'valid'``, H for ``'zeros'``.
    """
    n, c, h, w = x.shape
    g = gaussian_kernel_1d(window_size, sigma, dtype=x.dtype, device=x.device)
    pad = window_size // 2 if padding == "zeros" else 0
    # One depth-wise pass over the five moments instead of five separate convolutions.
    stacked = torch.cat((x, y, x * x, y * y, x * y), dim=1)
    kernel_v = g.view(1, 1, -1, 1).expand(5 * c, 1, window_size, 1)
    kernel_h = g.view(1, 1, 1, -1).expand(5 * c, 1, 1, window_size)
    filtered = F.conv2d(stacked, kernel_v, padding=(pad, 0), groups=5 * c)
    filtered = F.conv2d(filtered, kernel_h, padding=(0, pad), groups=5 * c)
    mu1, mu2, e11, e22, e12 = filtered.split(c, dim=1)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    num = (2 * mu12 + c1) * (2 * (e12 - mu12) + c2)
    den = (mu11 + mu22 + c1) * ((e11 - mu11) + (e22 - mu22) + c2)
    return num / den


@LOSS_REGISTRY.register()
class SSIMLoss(nn.Module):
    """SSIM as a loss: ``loss_weight * (1 - SSIM)`` or ``-loss_weight * SSIM``.

    Both forms have the same gradients. IDT (jiexiaou/IDT ``train_derain.py``) trains with
    ``-SSIM`` (``form='negative'``), computed with zero padding (``padding='zeros'``) on RGB [0, 1] images,
    11x11 window, sigma 1.5, averaged over every pixel and channel. ``'one_minus'`` keeps the loss
    non-negative, which MCIR's ``neg_ratio`` and collapse guard rely on.

    Args:
        loss_weight: Factor applied to the reduced loss.
        reduction: ``'none'`` (per-pixel loss map), ``'mean'`` or ``'sum'`` over the SSIM map.
        window_size: Gaussian window side (odd).
        sigma: Gaussian standard deviation.
        data_range: Value range of the images (1 for mcir's [0, 1] tensors).
        padding: ``'valid'`` or ``'zeros'`` (see :func:`ssim_map`).
        form: ``'one_minus'`` (``1 - SSIM``) or ``'negative'`` (``-SSIM``).
    """

    def __init__(
        self,
        loss_weight: NonNegativeFloat = 1.0,
        reduction: Reduction = "mean",
        window_size: PositiveInt = 11,
        sigma: PositiveFloat = 1.5,
        data_range: PositiveFloat = 1.0,
        padding: Literal["valid", "zeros"] = "valid",
        form: Literal["one_minus", "negative"] = "one_minus",
    ):
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise OptionError(f"must be a positive odd number, got {window_size!r}", key="window_size")
        if sigma <= 0:
            raise OptionError(f"must be > 0, got {sigma!r}", key="sigma")
        if data_range <= 0:
            raise OptionError(f"must be > 0, got {data_range!r}", key="data_range")
        if padding not in _PADDINGS:
            raise OptionError(f"must be one of {', '.join(_PADDINGS)}, got {padding!r}", key="padding")
        if form not in _FORMS:
            raise OptionError(f"must be one of {', '.join(_FORMS)}, got {form!r}", key="form")
        self.loss_weight = float(loss_weight)
        self.reduction = check_reduction(reduction)
        self.window_size, self.sigma, self.data_range = int(window_size), float(sigma), float(data_range)
        self.padding, self.form = padding, form

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Compute the weighted, reduced loss.

        Args:
            pred: Prediction (N, C, H, W).
            target: Ground truth of the same shape.

        Returns:
            ``loss_weight`` times the reduced loss (a per-pixel map if ``reduction='none'``).
        """
        if pred.shape != target.shape:
            raise OptionError(
                f"SSIMLoss: prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}"
            )
        if self.padding == "valid" and min(pred.shape[-2:]) < self.window_size:
            raise OptionError(
                f"SSIMLoss: images of {tuple(pred.shape[-2:])} pixels are smaller than the {self.window_size}-pixel "
                "window (use padding: zeros or larger patches)"
            )
        ssim = ssim_map(pred, target, self.window_size, self.sigma, self.data_range, self.padding)
        loss = 1.0 - ssim if self.form == "one_minus" else -ssim
        if self.reduction == "mean":
            loss = loss.mean()
        elif self.reduction == "sum":
            loss = loss.sum()
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        return (f"loss_weight={self.loss_weight}, reduction={self.reduction!r}, form={self.form!r}, "
                f"padding={self.padding!r}, window_size={self.window_size}, sigma={self.sigma}")
