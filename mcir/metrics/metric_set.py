"""Compute a set of configured metrics on a batch of 8-bit images, preparing PSNR/SSIM inputs once."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mcir.errors import OptionError
from mcir.metrics.psnr_ssim import calculate_psnr, calculate_psnr_ssim, calculate_ssim
from mcir.metrics.traits import traits_of
from mcir.registry import METRIC_REGISTRY

_META_KEYS = ("type", "better")
_FAST = {calculate_psnr: "psnr", calculate_ssim: "ssim"}


class MetricSet:
    """The ``val.metrics`` section as one callable over lists of HWC uint8 images (BGR, as OpenCV reads).

    Every metric is the registered NumPy function, so values never depend on the device the network ran on.
    PSNR and SSIM entries sharing ``crop_border`` / ``test_y_channel`` / ``round_y`` are computed together by
    :func:`calculate_psnr_ssim`, bit-identical to the separate functions but cropping and converting to Y
    once per image. Metrics with a ``prepare`` trait (LPIPS's network, NIQE's pristine model) build their
    state once here, per metric entry, and reuse it for every image; no-reference metrics (NIQE) are also
    computed for images without GT.

    Args:
        metrics: ``{name: {type: registered_metric, **kwargs}}`` in display order. A missing or None
            ``better`` takes the metric's default (``lower`` for LPIPS and NIQE, else ``higher``); the
            resolved value is in ``cfgs[name]['better']``.
    """

    def __init__(self, metrics: Mapping[str, Dict[str, Any]]):
        self.cfgs = {name: dict(cfg) for name, cfg in metrics.items()}
        self.names: List[str] = list(self.cfgs)
        self._fns = {name: METRIC_REGISTRY.get(cfg["type"]) for name, cfg in self.cfgs.items()}
        self._scorers: Dict[str, Callable[..., float]] = {}
        for name, fn in self._fns.items():
            traits = traits_of(fn)
            if self.cfgs[name].get("better") is None:
                self.cfgs[name]["better"] = traits["better"]
            if traits["prepare"] is not None:
                try:
                    self._scorers[name] = traits["prepare"](**self._kwargs(name))
                except OptionError as exc:
                    sub = f".{exc.key}" if exc.key else ""
                    raise OptionError(exc.message, exc.file, f"val.metrics.{name}{sub}") from None
        self.reference_free: List[str] = [n for n in self.names if not traits_of(self._fns[n])["reference"]]

    def better(self, name: str) -> str:
        """``'higher'`` or ``'lower'``: the direction in which metric ``name`` improves.

        Args:
            name: A metric name of this set.

        Returns:
            The resolved ``better`` value.
        """
        return self.cfgs[name]["better"]

    def _kwargs(self, name: str) -> Dict[str, Any]:
        return {k: v for k, v in self.cfgs[name].items() if k not in _META_KEYS}

    def compute(
        self, outs: Sequence[np.ndarray], gts: Optional[Sequence[np.ndarray]]
    ) -> Dict[str, List[float]]:
        """Score a batch.

        Args:
            outs: Restored images, HWC uint8, BGR when 3 channels.
            gts: Reference images of the same shapes, or None: then only the no-reference metrics
                (:attr:`reference_free`) are computed.

        Returns:
            ``{metric name: [value per image]}`` in option order.
        """
        names = self.names if gts is not None else self.reference_free
        refs: Sequence[Optional[np.ndarray]] = gts if gts is not None else [None] * len(outs)
        results: Dict[str, List[float]] = {}
        groups: Dict[Tuple[int, bool, bool], Dict[str, str]] = {}
        for name in names:
            fn = self._fns[name]
            kw = self._kwargs(name)
            key = _group_key(kw) if fn in _FAST else None
            if key is not None:
                groups.setdefault(key, {})[name] = _FAST[fn]
            elif name in self._scorers:
                results[name] = [float(self._scorers[name](a, b)) for a, b in zip(outs, refs)]
            elif name in self.reference_free:
                results[name] = [float(fn(a, **kw)) for a in outs]
            else:
                results[name] = [float(fn(a, b, **kw)) for a, b in zip(outs, refs)]
        for (crop, y, round_y), members in groups.items():
            with_ssim = "ssim" in members.values()
            pairs = [calculate_psnr_ssim(a, b, crop, test_y_channel=y, round_y=round_y, compute_ssim=with_ssim)
                     for a, b in zip(outs, refs)]
            for name, kind in members.items():
                results[name] = [float(p if kind == "psnr" else s) for p, s in pairs]
        return {name: results[name] for name in names}


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
