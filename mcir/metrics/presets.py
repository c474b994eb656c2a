"""Named PSNR/SSIM conventions per benchmark family (``val.preset`` / ``test.py --preset``), so tables compare
with the literature.

Every preset computes PSNR (peak 255, MSE over all pixels and channels) and SSIM (Wang et al. 2004: 11x11
Gaussian, sigma 1.5, 'valid' window, per channel then averaged) on uint8 images; they differ in the colour
space and the border crop. Where mcir cannot reproduce an official script exactly, the difference is named.

``sr`` -- Y channel (BT.601, float Y, not rounded), crop ``scale`` pixels per side.
    Source: BasicSR test options (``crop_border: <scale>``, ``test_y_channel: true``) and SwinIR's
    ``main_test_swinir.py`` (border = scale, float ``bgr2ycbcr``). Exact. Bicubic on Set5 x4: 28.4305 dB / 0.8113.
``sr_matlab`` -- as ``sr`` but Y rounded to integers like MATLAB ``rgb2ycbcr`` on uint8 images (the MATLAB
    evaluation scripts of the SRCNN/VDSR era). Bicubic on Set5 x4: 28.4176 dB / 0.8102.
``derain`` -- Y channel rounded like MATLAB ``rgb2ycbcr`` on uint8, no crop.
    Source: ``Deraining/evaluate_PSNR_SSIM.m`` of MPRNet and Restormer (Rain100L/H, Test100/1200/2800): uint8
    ``rgb2ycbcr``, Y only, PSNR with peak 255, Wang's ``SSIM_index`` (same window and constants). Exact.
    Rainy input vs clean (mcir's Identity model): Rain100L (the 7 pairs in ../shared/data) 28.9538 dB / 0.8599;
    Rain100H (its 20 pairs there) 13.3503 dB / 0.3842.
``deblur_gopro`` -- RGB, no crop.
    Source: ``evaluate_GOPRO_HIDE.m`` of MPRNet (``Deblurring/``) and Restormer (``Motion_Deblurring/``):
    MATLAB ``psnr`` on uint8 RGB (identical to mcir) and MATLAB's built-in ``ssim`` on the HxWx3 array, whose
    filtering (the array as one volume, padded borders) is not mcir's per-channel 'valid' SSIM, so GoPro SSIM
    differs slightly from those tables; NAFNet/BasicSR GoPro options (``crop_border: 0``, RGB) match exactly.
``dehaze_sots`` -- RGB, no crop.
    Source: DehazeFormer / FFA-Net SOTS evaluation: PSNR over the RGB channels (the same formula; they score
    the float output before quantising it to uint8, mcir the saved uint8 image). Their SSIM differs:
    DehazeFormer downsamples to about 256 pixels first, FFA-Net zero-pads the window; mcir's is full-size 'valid'.
    Hazy input vs GT on SOTS-indoor (the 20 pairs in ../shared/data): 13.1703 dB / 0.7261.
``denoise`` -- the channels as given (RGB for colour sets, one channel for grey sets), no crop.
    Source: KAIR / SwinIR ``main_test_swinir.py`` (``color_dn`` / ``gray_dn``: ``calculate_psnr(..., border=0)``
    on RGB or grey). Exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from mcir.errors import OptionError
from mcir.metrics.traits import traits_of
from mcir.registry import METRIC_REGISTRY


@dataclass(frozen=True)
class MetricPreset:
    """One named convention.

    Args:
        name: The ``val.preset`` value.
        test_y_channel: Score the BT.601 Y channel instead of the colour channels.
        round_y: Round Y to integers (MATLAB ``rgb2ycbcr`` on uint8).
        crop_border: Pixels removed per side; None means the run's ``scale``.
        summary: One line for help texts.
    """

    name: str
    test_y_channel: bool
    round_y: bool
    crop_border: Optional[int]
    summary: str


PRESETS: Dict[str, MetricPreset] = {
    p.name: p
    for p in (
        MetricPreset("sr", True, False, None, "super-resolution: Y (float), crop = scale (BasicSR, SwinIR)"),
        MetricPreset("sr_matlab", True, True, None, "super-resolution: Y rounded like MATLAB rgb2ycbcr, crop = scale"),
        MetricPreset(
            "derain", True, True, 0, "deraining: Y rounded like MATLAB rgb2ycbcr, no crop (MPRNet, Restormer)"
        ),
        MetricPreset("deblur_gopro", False, False, 0, "GoPro/HIDE deblurring: RGB, no crop"),
        MetricPreset("dehaze_sots", False, False, 0, "SOTS dehazing: RGB, no crop"),
        MetricPreset("denoise", False, False, 0, "denoising: RGB or grey as given, no crop (KAIR, SwinIR)"),
    )
}
PRESET_NAMES = tuple(PRESETS)


def preset_metrics(name: str, scale: int = 1) -> Dict[str, Dict[str, Any]]:
    """The ``val.metrics`` section of preset ``name``.

    Args:
        name: A key of :data:`PRESETS`.
        scale: The run's scale (the SR presets crop that many pixels per side).

    Returns:
        ``{'psnr': {...}, 'ssim': {...}}`` metric sections.
    """
    if name not in PRESETS:
        raise OptionError(f"unknown metric preset '{name}' (choose {', '.join(PRESET_NAMES)})", key="val.preset")
    p = PRESETS[name]
    args = {
        "crop_border": int(scale) if p.crop_border is None else p.crop_border,
        "test_y_channel": p.test_y_channel,
        "round_y": p.round_y,
        "better": "higher",
    }
    return {"psnr": {"type": "calculate_psnr", **args}, "ssim": {"type": "calculate_ssim", **args}}


def resolve_metrics(
    preset: Optional[str], metrics: Optional[Mapping[str, Dict[str, Any]]], scale: int = 1
) -> Dict[str, Dict[str, Any]]:
    """The metrics a run computes: the preset's, with explicit ``val.metrics`` entries added or replacing
    those of the same name; ``better`` filled in from each metric's own direction where it is not given.

    Args:
        preset: Preset name, or None for no preset.
        metrics: The explicit ``val.metrics`` section (may be empty).
        scale: The run's scale.

    Returns:
        The merged metric sections, preset entries first.
    """
    merged = preset_metrics(preset, scale) if preset else {}
    merged.update(copy.deepcopy({k: dict(v) for k, v in (metrics or {}).items()}))
    for cfg in merged.values():  # a metric without ``better`` gets its own direction
        if cfg.get("better") is None and cfg.get("type") in METRIC_REGISTRY:
            cfg["better"] = traits_of(METRIC_REGISTRY.get(cfg["type"]))["better"]
    return merged
