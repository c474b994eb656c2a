"""PSNR and SSIM with BasicSR's numbers (numpy, BGR) and a batched float64 torch path (RGB).

Conventions:

* Images are in [0, 255] (uint8, or float holding [0, 255]); ``crop_border`` pixels are removed
  from every side before anything else.
* ``test_y_channel=True`` evaluates on BT.601 luma. With ``round_y=False`` (default) Y is the
  float value BasicSR computes (``bgr2ycbcr(img / 255, y_only=True) * 255``, not rounded); with
  ``round_y=True`` Y is rounded to integers like MATLAB's ``rgb2ycbcr`` on uint8, the convention
  of the original MATLAB SR evaluation scripts (slightly different numbers, e.g. Set5 x4 bicubic:
  28.4305 dB vs 28.4176 dB). ``round_y`` has no effect without ``test_y_channel``.
* PSNR uses peak 255 and the MSE over all pixels and channels; identical images give ``inf``.
* SSIM (Wang et al. 2004): 11x11 Gaussian window with sigma 1.5, C1 = (0.01*255)^2,
  C2 = (0.03*255)^2, 'valid' filtering; computed per channel, then averaged over channels.

The numpy functions take **BGR** images (as read by OpenCV) and are registered in
``METRIC_REGISTRY``. :func:`psnr_ssim_torch` takes ``(N, C, H, W)`` **RGB** tensors and returns
per-image values equal to the numpy ones (to ~1e-12).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import cv2
import numpy as np

from mcir.constraints import NonNegativeInt
from mcir.errors import DataError, OptionError
from mcir.metrics.color import y_channel
from mcir.registry import METRIC_REGISTRY

__all__ = ["calculate_psnr", "calculate_psnr_ssim", "calculate_ssim", "reorder_image"]

_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def reorder_image(img: np.ndarray, input_order: str = "HWC") -> np.ndarray:
    """Return ``img`` as HWC: ``(H, W)`` becomes ``(H, W, 1)``, ``(C, H, W)`` is transposed.

    Args:
        img: ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)`` array.
        input_order: ``'HWC'`` or ``'CHW'`` (ignored for 2-D images).

    Returns:
        The HWC view of ``img``.
    """
    if input_order not in ("HWC", "CHW"):
        raise OptionError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}", key="input_order")
    if img.ndim == 2:
        return img[..., None]
    if img.ndim != 3:
        raise DataError(f"expected a 2-D or 3-D image, got shape {img.shape}")
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def _prepare(
    img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool, round_y: bool
) -> Tuple[np.ndarray, np.ndarray]:
    """Check, reorder to HWC, crop and optionally convert both images to float64 Y."""
    img, img2 = np.asarray(img), np.asarray(img2)
    if img.shape != img2.shape:
        raise DataError(f"image shapes differ: {img.shape} vs {img2.shape}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise OptionError(f"crop_border must be an integer >= 0, got {crop_border!r}", key="crop_border")
    img = reorder_image(img, input_order)
    img2 = reorder_image(img2, input_order)
    if crop_border:
        h, w = img.shape[:2]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise DataError(f"crop_border {crop_border} leaves nothing of a {h}x{w} image")
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel:
        return y_channel(img, round_y), y_channel(img2, round_y)
    return img.astype(np.float64), img2.astype(np.float64)


@METRIC_REGISTRY.register()
def calculate_psnr(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: NonNegativeInt,
    input_order: str = "HWC",
    test_y_channel: bool = False,
    round_y: bool = False,
    **kwargs: Any,
) -> float:
    """Peak signal-to-noise ratio (dB, peak 255), as BasicSR's ``calculate_psnr``.

    Args:
        img: Image in [0, 255], BGR if 3 channels; HWC, CHW or HW.
        img2: Reference image of the same shape.
        crop_border: Pixels removed from each side before the computation.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: Compute on the BT.601 Y channel.
        round_y: Round Y to integers (MATLAB convention).
        **kwargs: Ignored (option keys such as ``better``).

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel, round_y)
    return _psnr_prepared(a, b)


def _psnr_prepared(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two prepared (cropped, float64, HWC) images."""
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _gaussian_window() -> np.ndarray:
    """1-D normalised Gaussian of SSIM, shape ``(11,)`` (OpenCV's ``getGaussianKernel`` values)."""
    return cv2.getGaussianKernel(_SSIM_SIZE, _SSIM_SIGMA).ravel()


def _ssim_map(mu1: Any, mu2: Any, e11: Any, e22: Any, e12: Any) -> Any:
    """SSIM map from local means and local second moments; same formula for numpy and torch."""
    mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    var1, var2, cov = e11 - mu11, e22 - mu22, e12 - mu12
    return ((2 * mu12 + _C1) * (2 * cov + _C2)) / ((mu11 + mu22 + _C1) * (var1 + var2 + _C2))


def _ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM of two float64 single-channel images (BasicSR's OpenCV filtering)."""
    g = _gaussian_window()
    window = np.outer(g, g)
    half = _SSIM_SIZE // 2

    def local_mean(a: np.ndarray) -> np.ndarray:
        # The border mode does not matter: the cropped result only uses fully covered pixels.
        return cv2.filter2D(a, -1, window)[half:-half, half:-half]

    mu1, mu2 = local_mean(x), local_mean(y)
    e11, e22, e12 = local_mean(x * x), local_mean(y * y), local_mean(x * y)
    # _ssim_map's operations in the same order, in place on the filter outputs (bit-identical, fewer copies).
    mu12 = mu1 * mu2
    mu11 = np.multiply(mu1, mu1, out=mu1)
    mu22 = np.multiply(mu2, mu2, out=mu2)
    var1 = np.subtract(e11, mu11, out=e11)
    var2 = np.subtract(e22, mu22, out=e22)
    cov = np.subtract(e12, mu12, out=e12)
    num = np.add(np.multiply(mu12, 2, out=mu12), _C1, out=mu12)
    num *= np.add(np.multiply(cov, 2, out=cov), _C2, out=cov)
    den = np.add(np.add(mu11, mu22, out=mu11), _C1, out=mu11)
    den *= np.add(np.add(var1, var2, out=var1), _C2, out=var1)
    num /= den
    return float(num.mean())


@METRIC_REGISTRY.register()
def calculate_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: NonNegativeInt,
    input_order: str = "HWC",
    test_y_channel: bool = False,
    round_y: bool = False,
    **kwargs: Any,
) -> float:
    """Structural similarity, as BasicSR's ``calculate_ssim`` (per channel, then averaged).

    Args:
        img: Image in [0, 255], BGR if 3 channels; HWC, CHW or HW.
        img2: Reference image of the same shape.
        crop_border: Pixels removed from each side before the computation.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: Compute on the BT.601 Y channel.
        round_y: Round Y to integers (MATLAB convention).
        **kwargs: Ignored (option keys such as ``better``).

    Returns:
        SSIM in [-1, 1]; 1 for identical images.
    """
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel, round_y)
    return _ssim_prepared(a, b)


def _ssim_prepared(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two prepared (cropped, float64, HWC) images, averaged over channels."""
    if min(a.shape[:2]) < _SSIM_SIZE:
        raise DataError(f"SSIM needs at least {_SSIM_SIZE}x{_SSIM_SIZE} pixels after cropping, got {a.shape[:2]}")
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))


def calculate_psnr_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: NonNegativeInt,
    input_order: str = "HWC",
    test_y_channel: bool = False,
    round_y: bool = False,
    compute_ssim: bool = True,
) -> Tuple[float, Optional[float]]:
    """PSNR and SSIM of one pair, cropping and converting to Y only once.

    Bit-identical to :func:`calculate_psnr` and :func:`calculate_ssim` called with the same arguments (same
    arithmetic on the same prepared arrays); the evaluator uses it to skip the second preparation.

    Args:
        img: Image in [0, 255], BGR if 3 channels; HWC, CHW or HW.
        img2: Reference image of the same shape.
        crop_border: Pixels removed from each side before the computation.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: Compute on the BT.601 Y channel.
        round_y: Round Y to integers (MATLAB convention).
        compute_ssim: Also compute SSIM (the expensive part).

    Returns:
        ``(psnr, ssim)``; ``ssim`` is ``None`` when ``compute_ssim`` is False.
    """
    a, b = _prepare(img, img2, crop_border, input_order, test_y_channel, round_y)
    return _psnr_prepared(a, b), (_ssim_prepared(a, b) if compute_ssim else None)
