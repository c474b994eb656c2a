"""Image quality metrics (PSNR, SSIM, LPIPS, NIQE) registered in ``METRIC_REGISTRY`` and built from options."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Dict, Optional, Set

import numpy as np

from mcir.errors import OptionError, RegistryError
from mcir.metrics import color, lpips_metric, niqe, psnr_ssim
from mcir.metrics.lpips_metric import calculate_lpips
from mcir.metrics.niqe import calculate_niqe
from mcir.metrics.psnr_ssim import calculate_psnr, calculate_psnr_ssim, calculate_ssim, psnr_ssim_torch
from mcir.metrics.traits import traits_of
from mcir.registry import METRIC_REGISTRY

__all__ = [
    "calculate_lpips", "calculate_metric", "calculate_niqe", "calculate_psnr", "calculate_psnr_ssim", "calculate_ssim",
    "psnr_ssim_torch", "color", "lpips_metric", "niqe", "psnr_ssim",
]

# Option keys that describe a metric for the framework (not arguments of the metric function).
_META_KEYS = frozenset({"type", "better"})
# Positional image arguments are supplied by the caller, never by options.
_IMAGE_ARGS = frozenset({"img", "img2"})


def _option_keys(fn: Any) -> Set[str]:
    """Named keyword parameters of a metric function that options may set."""
    params = inspect.signature(fn).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named - _IMAGE_ARGS


def calculate_metric(name_cfg: Dict[str, Any], img: np.ndarray, img2: Optional[np.ndarray], key: str = "") -> float:
    """Compute one metric described by an option section, e.g. ``{type: calculate_psnr, crop_border: 4}``.

    Unknown option keys are rejected (with a suggestion) instead of being silently ignored;
    ``better`` (``higher``/``lower``) is allowed and not passed on.

    Args:
        name_cfg: Option section with ``type`` (a ``METRIC_REGISTRY`` name) and the metric's arguments.
        img: Restored image (numpy, [0, 255], BGR for the registered numpy metrics).
        img2: Reference image (ignored by no-reference metrics such as NIQE, which accept None).
        key: Dotted option path of ``name_cfg``, for error messages (e.g. ``val.metrics.psnr``).

    Returns:
        The metric value.
    """
    if not isinstance(name_cfg, dict) or "type" not in name_cfg:
        raise OptionError("a metric needs a 'type'", key=key or None)
    try:
        fn = METRIC_REGISTRY.get(name_cfg["type"])
    except RegistryError as exc:
        raise RegistryError(exc.message, key=f"{key}.type" if key else "type") from exc
    allowed = _option_keys(fn)
    kwargs = {k: v for k, v in name_cfg.items() if k not in _META_KEYS}
    for name in kwargs:
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(sorted(allowed))})"
            where = f"{key}.{name}" if key else name
            raise OptionError(f"unknown option for metric '{name_cfg['type']}'{hint}", key=where)
    for param in inspect.signature(fn).parameters.values():
        if param.name in allowed and param.default is param.empty and param.name not in kwargs:
            raise OptionError(f"metric '{name_cfg['type']}' needs '{param.name}'", key=key or None)
    if not traits_of(fn)["reference"]:
        return float(fn(img, **kwargs))
    return float(fn(img, img2, **kwargs))
