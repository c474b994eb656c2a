"""ITU-R BT.601 YCbCr conversion (MATLAB ``rgb2ycbcr``) and the Y channel used by PSNR/SSIM.

Two Y conventions exist in the SR literature, both offered here:

* BasicSR (``round_y=False``): ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` on [0, 1] inputs,
  evaluated in float32 like BasicSR's ``to_y_channel`` and kept as float (not rounded).
* MATLAB (``round_y=True``): ``rgb2ycbcr`` on uint8, i.e. the same Y rounded to an integer
  (half away from zero), as used by the original MATLAB SR evaluation scripts.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mcir.errors import DataError

__all__ = ["rgb2ycbcr", "bgr2ycbcr", "y_channel"]

# BT.601 "studio swing" coefficients for inputs in [0, 1]; rows give Y, Cb, Cr from (R, G, B).
_RGB2YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
# BasicSR's float Y terms of a BGR uint8 pixel, per channel value: (float64(float32(v) / 255)) * coefficient.
_UNIT_LEVELS = (np.arange(256, dtype=np.float32) / 255.0).astype(np.float64)
# Shape (256, 1, 3): a per-channel table for cv2.LUT on a BGR image.
_Y_TERMS = np.stack([_UNIT_LEVELS * _RGB2YCBCR[0, c] for c in (2, 1, 0)], axis=-1)[:, None, :].copy()
_Y_TERMS.flags.writeable = False
# Y coefficients times 1000 are integers, which makes the rounded (MATLAB) Y exact.
_Y_INT = (65481.0, 128553.0, 24966.0)


def _convert(img: np.ndarray, y_only: bool, bgr: bool) -> np.ndarray:
    """Shared body of :func:`rgb2ycbcr` and :func:`bgr2ycbcr`."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"YCbCr conversion needs an HxWx3 image, got shape {img.shape}")
    if img.dtype == np.uint8:
        unit = img.astype(np.float32) / 255.0
    elif img.dtype == np.float32:
        unit = img
    else:
        raise DataError(f"YCbCr conversion accepts uint8 or float32 [0, 1] images, got {img.dtype}")
    coeffs = _RGB2YCBCR[:, ::-1] if bgr else _RGB2YCBCR
    if y_only:
        out = np.dot(unit, coeffs[0]) + _OFFSET[0]
    else:
        out = np.matmul(unit, coeffs.T) + _OFFSET
    if img.dtype == np.uint8:
        return out.round().astype(np.uint8)
    return (out / 255.0).astype(np.float32)


def rgb2ycbcr(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """RGB -> YCbCr (BT.601, MATLAB ``rgb2ycbcr``), same type and range in and out.

    Args:
        img: ``(H, W, 3)`` RGB image, uint8 in [0, 255] or float32 in [0, 1].
        y_only: Return only Y, shape ``(H, W)``.

    Returns:
        YCbCr (or Y) image; uint8 results are rounded, float32 results are in [0, 1].
    """
    return _convert(img, y_only, bgr=False)


def bgr2ycbcr(img: np.ndarray, y_only: bool = False) -> np.ndarray:
    """BGR -> YCbCr (BT.601), as :func:`rgb2ycbcr` for images read with OpenCV.

    Args:
        img: ``(H, W, 3)`` BGR image, uint8 in [0, 255] or float32 in [0, 1].
        y_only: Return only Y, shape ``(H, W)``.

    Returns:
        YCbCr (or Y) image; uint8 results are rounded, float32 results are in [0, 1].
    """
    return _convert(img, y_only, bgr=True)


def y_channel(img: np.ndarray, round_y: bool = False) -> np.ndarray:
    """Y channel in [0, 255] of an HWC **BGR** image in [0, 255], for PSNR/SSIM.

    Args:
        img: ``(H, W, 3)`` BGR or ``(H, W, 1)`` grey image, uint8 or float in [0, 255].
        round_y: MATLAB convention (integer Y) instead of BasicSR's float Y.

    Returns:
        float64 array of shape ``(H, W, 1)``. A grey image is returned as is (through the
        same float32 round trip BasicSR applies).
    """
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise DataError(f"Y channel needs an HxWx3 (BGR) or HxWx1 image, got shape {img.shape}")
    if img.shape[2] == 1:
        if round_y:
            return img.astype(np.float64)
        return ((img.astype(np.float32) / 255.0) * 255.0).astype(np.float64)
    if round_y:
        blue, green, red = (img[..., c].astype(np.float64) for c in range(3))
        scaled = red * _Y_INT[0] + green * _Y_INT[1] + blue * _Y_INT[2]
        y = np.floor((scaled + 127500.0) / 255000.0) + 16.0
        return y[..., None]
    # BasicSR normalises in float32 and casts Y back to float32; mirror it bit for bit.
    if img.dtype == np.uint8:
        # Each term depends on one 8-bit channel value only: look the 256 possible products up instead of
        # converting every pixel (same operations on the same values, so the same bits).
        terms = cv2.LUT(img, _Y_TERMS)
        y64 = terms[..., 0] + terms[..., 1]
        y64 += terms[..., 2]
        y64 += _OFFSET[0]
    else:
        blue, green, red = ((img[..., c].astype(np.float32) / 255.0).astype(np.float64) for c in range(3))
        y64 = blue * _RGB2YCBCR[0, 2] + green * _RGB2YCBCR[0, 1] + red * _RGB2YCBCR[0, 0] + _OFFSET[0]
    y64 /= 255.0
    y = (y64.astype(np.float32) * np.float32(255.0)).astype(np.float64)
    return y[..., None]


def _f32(x: torch.Tensor) -> torch.Tensor:
    """Round float64 values to float32 precision, keeping float64.

    One float64 operation followed by this rounding equals the float32 operation exactly
    (53 >= 2 * 24 + 2 bits), so BasicSR's float32 steps are reproduced on any device.
    """
    return x.to(torch.float32).to(torch.float64)
