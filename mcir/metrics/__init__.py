"""Image quality metrics (PSNR, SSIM, LPIPS, NIQE), registered in ``METRIC_REGISTRY``.

A ``val.metrics`` section is checked by the option schema and computed by :class:`mcir.metrics.metric_set.MetricSet`.
"""

from __future__ import annotations

from mcir.metrics import color, lpips_metric, niqe, psnr_ssim
from mcir.metrics.lpips_metric import calculate_lpips
from mcir.metrics.niqe import calculate_niqe
from mcir.metrics.psnr_ssim import calculate_psnr, calculate_psnr_ssim, calculate_ssim

__all__ = [
    "calculate_lpips", "calculate_niqe", "calculate_psnr", "calculate_psnr_ssim", "calculate_ssim", "color",
    "lpips_metric", "niqe", "psnr_ssim",
]
