"""Helpers shared by the benchmark scripts: repeat-and-median timing and peak RSS of a child process."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Dict, List


def median_times(fns: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    """Time each function ``repeats`` times, interleaved (a, b, a, b, ...) so drift hits both alike.

    Args:
        fns: Name -> zero-argument function.
        repeats: Number of timed calls per function.

    Returns:
        Name -> median seconds.
    """
    samples: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def t91_pairs(n: int, gt_size: int = 192, scale: int = 4, seed: int = 0) -> List[Dict[str, Any]]:
    """``n`` real training pairs: random ``gt_size`` crops of the bundled T91 images large enough for them,
    with the LR made by MATLAB-exact bicubic (as ``lq_from_gt: bicubic`` does).

    Args:
        n: Number of pairs.
        gt_size: HR crop size.
        scale: Downscaling factor.
        seed: Crop positions seed.

    Returns:
        ``[{"lq": (3, gt_size/scale, ...), "gt": (3, gt_size, gt_size)}]`` float RGB tensors in [0, 1].
    """
    from pathlib import Path

    import numpy as np

    from mcir.data.imresize import imresize
    from mcir.utils.img_util import img2tensor, imread

    root = Path(__file__).resolve().parents[1] / "datasets" / "T91" / "HR"
    imgs = [im for im in (imread(str(p)) for p in sorted(root.glob("*.png"))) if min(im.shape[:2]) >= gt_size]
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        im = imgs[i % len(imgs)]
        y = int(rng.integers(0, im.shape[0] - gt_size + 1))
        x = int(rng.integers(0, im.shape[1] - gt_size + 1))
        gt = np.ascontiguousarray(im[y : y + gt_size, x : x + gt_size])
        lq = imresize(gt, 1 / scale)
        t_gt, t_lq = img2tensor([gt.astype(np.float32) / 255.0, lq.astype(np.float32) / 255.0])
        pairs.append({"lq": t_lq, "gt": t_gt})
    return pairs
