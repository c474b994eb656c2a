"""Compute a set of configured metrics on a batch of 8-bit images, preparing PSNR/SSIM inputs once."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mcir.metrics.psnr_ssim import calculate_psnr, calculate_psnr_ssim, calculate_ssim
from mcir.registry import METRIC_REGISTRY

_META_KEYS = ("type", "better")
_FAST = {calculate_psnr: "psnr", calculate_ssim: "ssim"}


class MetricSet:
    """The ``val.metrics`` section as one callable over lists of HWC uint8 images (BGR, as OpenCV reads).

    Every metric is the registered NumPy function, so values never depend on the device the network ran on.
    PSNR and SSIM entries sharing ``crop_border`` / ``test_y_channel`` / ``round_y`` are computed together by
    :func:`calculate_psnr_ssim`, bit-identical to the separate functions but cropping and converting to Y
    once per image.

    Args:
        metrics: ``{name: {type: registered_metric, **kwargs}}`` in display order.
    """

    def __init__(self, metrics: Mapping[str, Dict[str, Any]]):
        self.cfgs = {name: dict(cfg) for name, cfg in metrics.items()}
        self.names: List[str] = list(self.cfgs)
        self._fns = {name: METRIC_REGISTRY.get(cfg["type"]) for name, cfg in self.cfgs.items()}

    def _kwargs(self, name: str) -> Dict[str, Any]:
        return {k: v for k, v in self.cfgs[name].items() if k not in _META_KEYS}

    def compute(self, outs: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> Dict[str, List[float]]:
        """Score a batch.

        Args:
            outs: Restored images, HWC uint8, BGR when 3 channels.
            gts: Reference images of the same shapes.

        Returns:
            ``{metric name: [value per image]}``.
        """
        results: Dict[str, List[float]] = {}
        groups: Dict[Tuple[int, bool, bool], Dict[str, str]] = {}
        for name in self.names:
            fn = self._fns[name]
            kw = self._kwargs(name)
            key = _group_key(kw) if fn in _FAST else None
            if key is not None:
                groups.setdefault(key, {})[name] = _FAST[fn]
            else:
                results[name] = [float(fn(a, b, **kw)) for a, b in zip(outs, gts)]
        for (crop, y, round_y), members in groups.items():
            with_ssim = "ssim" in members.values()
            pairs = [calculate_psnr_ssim(a, b, crop, test_y_channel=y, round_y=round_y, compute_ssim=with_ssim)
                     for a, b in zip(outs, gts)]
            for name, kind in members.items():
                results[name] = [float(p if kind == "psnr" else s) for p, s in pairs]
        return {name: results[name] for name in self.names}


def _group_key(kw: Mapping[str, Any]) -> Optional[Tuple[int, bool, bool]]:
    """``(crop_border, test_y_channel, round_y)`` when PSNR/SSIM with these options can share one preparation.

    None for anything else (extra keys, odd types), which then takes the per-metric path and its checks.
    """
    if not set(kw) <= {"crop_border", "test_y_channel", "round_y"}:
        return None
    crop, y, round_y = kw.get("crop_border", 0), kw.get("test_y_channel", False), kw.get("round_y", False)
    if isinstance(crop, bool) or not isinstance(crop, int) or not isinstance(y, bool) or not isinstance(round_y, bool):
        return None
    return crop, y, round_y
