"""NIQE (Mittal et al. 2013), the no-reference "naturalness" score; lower is better, values as BasicSR's.

The image (BGR, [0, 255]) is turned into one channel (BT.601 Y with BasicSR's float32 arithmetic, or OpenCV
grey), border-cropped and rounded to integers. It is cut into 96x96 blocks (the remainder at the right and
bottom is dropped); on each block of the local mean/contrast-normalised image (7x7 Gaussian window) an
asymmetric generalised Gaussian is fitted to the coefficients and to their products with the four
neighbours, 18 numbers per block, at full and at half resolution (MATLAB bicubic, antialiased). The
Mahalanobis-like distance between the Gaussian fitted to these block features and the pristine model is the
score.

The pristine model (``niqe_pris_params.npz``: ``mu_pris_param`` (1, 36), ``cov_pris_param`` (36, 36) and
``gaussian_window`` (7, 7)) is the data file of BasicSR (``basicsr/metrics/niqe_pris_params.npz``,
Apache-2.0, https://github.com/XPixelGroup/BasicSR), itself the parameters of the official MATLAB release
(http://live.ece.utexas.edu/research/quality/niqe_release.zip). ``tests/metrics/test_niqe.py`` pins the
scores of the bundled Set5 images against BasicSR's ``calculate_niqe``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Tuple

import cv2
import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

from mcir.data.imresize import imresize
from mcir.errors import DataError, OptionError
from mcir.metrics.color import y_channel
from mcir.metrics.psnr_ssim import reorder_image
from mcir.metrics.traits import metric_traits
from mcir.registry import METRIC_REGISTRY

__all__ = ["PARAMS_FILE", "BLOCK_SIZE", "calculate_niqe", "load_pristine_model", "niqe_score"]

PARAMS_FILE = Path(__file__).with_name("niqe_pris_params.npz")
#: Block side (pixels) of the official release and of BasicSR.
BLOCK_SIZE = 96
# Shape parameters tried when fitting a generalised Gaussian (MATLAB's 0.2:0.001:10) and the moment ratio
# Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) each one gives (strictly increasing in a).
_ALPHAS = np.arange(0.2, 10.001, 0.001)
_RATIOS = gamma(2.0 / _ALPHAS) ** 2 / (gamma(1.0 / _ALPHAS) * gamma(3.0 / _ALPHAS))
# Neighbour offsets (rows, cols) of the pairwise products: horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))

PristineModel = Tuple[np.ndarray, np.ndarray, np.ndarray]


def load_pristine_model(path: Path = PARAMS_FILE) -> PristineModel:
    """Read the pristine model: feature mean ``(36,)``, covariance ``(36, 36)`` and the 7x7 window.

    Args:
        path: The ``.npz`` parameters file.

    Returns:
        ``(mu, cov, window)`` as float64 arrays.
    """
    with np.load(path) as data:
        return (data["mu_pris_param"].reshape(-1).astype(np.float64), data["cov_pris_param"].astype(np.float64),
                data["gaussian_window"].astype(np.float64))


def _nearest_alpha(ratio: np.ndarray) -> np.ndarray:
    """Grid shape parameter whose moment ratio is closest to ``ratio`` (lowest on ties; NaN gives the first)."""
    hi = np.clip(np.searchsorted(_RATIOS, np.nan_to_num(ratio, nan=-np.inf)), 1, len(_RATIOS) - 1)
    lo = hi - 1
    take_lo = (_RATIOS[lo] - ratio) ** 2 <= (_RATIOS[hi] - ratio) ** 2
    idx = np.where(take_lo, lo, hi)
    idx = np.where(np.isnan(ratio), 0, idx)
    return _ALPHAS[idx]


def _fit_aggd(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit an asymmetric generalised Gaussian to each row of ``x`` (moment matching).

    Returns:
        ``(alpha, sigma_left, sigma_right)`` per row; NaN scales for rows without negative or positive values.
    """
    x = x.astype(np.float64)
    sq = x * x
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        std_l = np.sqrt(np.where(neg, sq, 0.0).sum(1) / neg.sum(1))
        std_r = np.sqrt(np.where(pos, sq, 0.0).sum(1) / pos.sum(1))
        g = std_l / std_r
        r_hat = np.abs(x).mean(1) ** 2 / sq.mean(1)
        ratio = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = _nearest_alpha(ratio)
    scale = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, std_l * scale, std_r * scale


def _block_features(norm: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """18 features per block of a normalised image, blocks ordered column by column."""
    nh, nw = norm.shape[0] // bh, norm.shape[1] // bw
    blocks = norm[: nh * bh, : nw * bw].reshape(nh, bh, nw, bw).transpose(2, 0, 1, 3).reshape(nh * nw, bh, bw)
    alpha, left, right = _fit_aggd(blocks.reshape(len(blocks), -1))
    feats = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        prod = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, left, right = _fit_aggd(prod.reshape(len(blocks), -1))
        mean = (right - left) * gamma(2.0 / alpha) / gamma(1.0 / alpha)
        feats += [alpha, mean, left, right]
    return np.stack(feats, axis=1)


def _normalise(img: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Local mean-subtracted, contrast-normalised coefficients (float32, like BasicSR's pipeline)."""
    mu = convolve(img, window, mode="nearest")
    sigma = np.sqrt(np.abs(convolve(np.square(img), window, mode="nearest") - np.square(mu)))
    return (img - mu) / (sigma + 1)


def niqe_score(img: np.ndarray, model: PristineModel, block_size: int = BLOCK_SIZE) -> float:
    """NIQE of a one-channel image holding integer values in [0, 255].

    Args:
        img: ``(H, W)`` array (any float or integer dtype).
        model: :func:`load_pristine_model`'s tuple.
        block_size: Block side in pixels (even).

    Returns:
        The score (lower means more natural).
    """
    mu_pris, cov_pris, window = model
    h, w = img.shape
    nh, nw = h // block_size, w // block_size
    if nh * nw < 2:
        raise DataError(f"NIQE needs at least two {block_size}x{block_size} blocks, got a {h}x{w} image")
    img = img[: nh * block_size, : nw * block_size].astype(np.float32)
    feats = []
    for level in (1, 2):
        feats.append(_block_features(_normalise(img, window), block_size // level, block_size // level))
        if level == 1:
            img = (imresize(img.astype(np.float64) / 255.0, 0.5) * 255.0).astype(np.float32)
    feats_all = np.concatenate(feats, axis=1)
    mu = np.nanmean(feats_all, axis=0)
    cov = np.cov(feats_all[~np.isnan(feats_all).any(axis=1)], rowvar=False)
    diff = mu_pris - mu
    return float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov) / 2) @ diff))


def _one_channel(img: np.ndarray, input_order: str, convert_to: str) -> np.ndarray:
    """The rounded grey/Y channel NIQE scores, as float64 ``(H, W)``."""
    if convert_to not in ("y", "gray"):
        raise OptionError(f"convert_to must be 'y' or 'gray', got {convert_to!r}", key="convert_to")
    img = np.asarray(img)
    if input_order == "HW" or img.ndim == 2:
        if img.ndim != 2:
            raise DataError(f"input_order 'HW' needs a 2-D image, got shape {img.shape}")
        return np.round(img.astype(np.float32)).astype(np.float64)
    img = reorder_image(img, input_order)
    if img.shape[2] == 1:
        chan = img[..., 0].astype(np.float32)
    elif img.shape[2] != 3:
        raise DataError(f"NIQE needs a grey or 3-channel BGR image, got shape {img.shape}")
    elif convert_to == "y":
        chan = y_channel(img)[..., 0].astype(np.float32)
    else:
        chan = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_BGR2GRAY) * 255.0
    return np.round(chan).astype(np.float64)


def _crop(img: np.ndarray, crop_border: int) -> np.ndarray:
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise OptionError(f"crop_border must be an integer >= 0, got {crop_border!r}", key="crop_border")
    return img[crop_border:-crop_border, crop_border:-crop_border] if crop_border else img


def _prepare_niqe(crop_border: int = 0, input_order: str = "HWC", convert_to: str = "y") -> Callable[..., float]:
    """Scorer with the pristine model read once (the evaluator's per-evaluation setup)."""
    model = load_pristine_model()

    def score(img: np.ndarray, img2: Optional[np.ndarray] = None) -> float:
        return niqe_score(_crop(_one_channel(img, input_order, convert_to), crop_border), model)

    return score


@METRIC_REGISTRY.register()
@metric_traits(better="lower", reference=False, prepare=_prepare_niqe)
def calculate_niqe(
    img: np.ndarray, crop_border: int = 0, input_order: str = "HWC", convert_to: str = "y", **kwargs: Any
) -> float:
    """NIQE of one image (no reference), BasicSR's ``calculate_niqe`` numbers.

    Args:
        img: Image in [0, 255] (uint8 or float), BGR if 3 channels; HWC, CHW or HW.
        crop_border: Pixels removed from each side (after the channel conversion).
        input_order: ``'HWC'``, ``'CHW'`` or ``'HW'`` (already one channel).
        convert_to: ``'y'`` (BT.601 luma, BasicSR's float Y) or ``'gray'`` (OpenCV grey).
        **kwargs: Ignored (option keys such as ``better``).

    Returns:
        The NIQE score (lower is better).
    """
    return _prepare_niqe(crop_border, input_order, convert_to)(img)
