"""BasicSR's PSNR/SSIM written out step by step (a fresh array at every step, no shortcuts).

This is the plain formulation that mcir's faster metric code (shared preparation, lookup-table Y, in-place
SSIM map) must reproduce bit for bit; the metric tests and ``benchmarks/eval_throughput.py`` compare against
it. Use :mod:`mcir.metrics.psnr_ssim` for real work.
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def plain_y(img: np.ndarray) -> np.ndarray:
    """Float Y of a BGR uint8 image as BasicSR's ``to_y_channel``: float32 / 255, BT.601 row, float32, * 255.

    Args:
        img: ``(H, W, 3)`` BGR uint8 image.

    Returns:
        ``(H, W)`` float64 Y in [16, 235].
    """
    unit = img.astype(np.float32) / 255.0
    y = np.dot(unit, [24.966, 128.553, 65.481]) + 16.0
    return ((y / 255.0).astype(np.float32) * 255.0).astype(np.float64)


def plain_ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two float64 ``(H, W)`` channels: 11x11 Gaussian (sigma 1.5) ``filter2D``, 'valid' part.

    Args:
        a: First channel, values in [0, 255].
        b: Second channel of the same shape.

    Returns:
        The mean of the SSIM map.
    """
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    kernel = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel.transpose())
    mu1 = cv2.filter2D(a, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(b, -1, window)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = cv2.filter2D(a**2, -1, window)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = cv2.filter2D(b**2, -1, window)[5:-5, 5:-5] - mu2_sq
    sigma12 = cv2.filter2D(a * b, -1, window)[5:-5, 5:-5] - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def plain_psnr_ssim_y(out: np.ndarray, gt: np.ndarray, crop: int) -> Tuple[float, float]:
    """PSNR and SSIM on Y after removing ``crop`` pixels per side, each converting to Y on its own as BasicSR.

    Args:
        out: Restored BGR uint8 image.
        gt: Reference BGR uint8 image of the same shape.
        crop: Border removed from every side (> 0).

    Returns:
        ``(psnr, ssim)``.
    """
    a, b = plain_y(out[crop:-crop, crop:-crop]), plain_y(gt[crop:-crop, crop:-crop])
    psnr = float(10.0 * np.log10(255.0 * 255.0 / np.mean((a - b) ** 2)))
    a, b = plain_y(out[crop:-crop, crop:-crop]), plain_y(gt[crop:-crop, crop:-crop])
    return psnr, plain_ssim_channel(a, b)
