"""Compute a set of configured metrics on batches, using the batched torch path for PSNR/SSIM."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import torch

from mcir.metrics.psnr_ssim import calculate_psnr, calculate_ssim, psnr_ssim_torch
from mcir.registry import METRIC_REGISTRY

_META_KEYS = ("type", "better")
_FAST = {calculate_psnr: "psnr", calculate_ssim: "ssim"}


class MetricSet:
    """The ``val.metrics`` section as one callable over uint8-valued tensor batches.

    On CUDA, PSNR and SSIM sharing ``crop_border`` / ``test_y_channel`` / ``round_y`` are computed together
    by :func:`psnr_ssim_torch` (float64, equal to the numpy reference to ~1e-12). On the CPU, and for any
    other registered metric, the numpy function is called per image on BGR uint8 arrays (OpenCV's float64
    filtering is several times faster there than float64 ``conv2d``).

    Args:
        metrics: ``{name: {type: registered_metric, **kwargs}}`` in display order.
    """

    def __init__(self, metrics: Mapping[str, Dict[str, Any]]):
        self.cfgs = {name: dict(cfg) for name, cfg in metrics.items()}
        self.names: List[str] = list(self.cfgs)
        self._fns = {name: METRIC_REGISTRY.get(cfg["type"]) for name, cfg in self.cfgs.items()}

    def _kwargs(self, name: str) -> Dict[str, Any]:
        return {k: v for k, v in self.cfgs[name].items() if k not in _META_KEYS}

    def compute(self, out: torch.Tensor, gt: torch.Tensor) -> Dict[str, List[float]]:
        """Score a batch.

        Args:
            out: ``(N, C, H, W)`` restored images, uint8 values in [0, 255], RGB.
            gt: Reference images of the same shape.

        Returns:
            ``{metric name: [value per image]}``.
        """
        results: Dict[str, List[float]] = {}
        outs = gts = None
        groups: Dict[Tuple[int, bool, bool], Dict[str, str]] = {}
        for name in self.names:
            fn = self._fns[name]
            kw = self._kwargs(name)
            if out.is_cuda and fn in _FAST and set(kw) <= {"crop_border", "test_y_channel", "round_y"}:
                key = (int(kw.get("crop_border", 0)), bool(kw.get("test_y_channel", False)), bool(kw.get("round_y", False)))
                groups.setdefault(key, {})[name] = _FAST[fn]
            else:
                if outs is None:
                    outs, gts = _to_bgr(out), _to_bgr(gt)
                results[name] = [float(fn(a, b, **kw)) for a, b in zip(outs, gts)]
        for (crop, y, round_y), members in groups.items():
            psnr, ssim = psnr_ssim_torch(out, gt, crop, y, round_y, compute_ssim="ssim" in members.values())
            for name, kind in members.items():
                results[name] = (psnr if kind == "psnr" else ssim).tolist()
        return {name: results[name] for name in self.names}


def _to_bgr(batch: torch.Tensor) -> List[np.ndarray]:
    arr = batch.detach().cpu().round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [a[..., ::-1].copy() if a.shape[2] == 3 else a for a in arr]
