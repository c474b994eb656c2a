"""Evaluate a restoration function on a paired loader: per-image and average metrics, optional image saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import torch
from torch.utils.data import DataLoader

from mcir.metrics.metric_set import MetricSet
from mcir.utils.img_util import imwrite, tensor2img, tensor2uint8

InferFn = Callable[[torch.Tensor], torch.Tensor]


class Evaluator:
    """Computes the metrics named in the options for every image of a loader.

    Args:
        metrics: ``{name: {type: registered_metric, **kwargs}}`` (``val.metrics``).
        num_save_img: Save at most this many restored images per pass (None: all, when saving).
        pbar: Show a progress bar.
    """

    def __init__(self, metrics: Mapping[str, Dict[str, Any]], num_save_img: Optional[int] = None, pbar: bool = False):
        self.metric_set = MetricSet(metrics)
        self.num_save_img = num_save_img
        self.pbar = pbar

    @property
    def metric_names(self) -> list:
        """Metric names in option order."""
        return self.metric_set.names

    def evaluate(
        self,
        infer: InferFn,
        loader: DataLoader,
        save_dir: Optional[str] = None,
        suffix: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Run ``infer`` over ``loader`` and score every output against its GT.

        Args:
            infer: Maps an LQ batch to the restored batch.
            loader: Yields dicts with ``lq``, ``lq_path`` and optionally ``gt`` / ``gt_path`` / ``name`` (images
                are named by ``name``, else by the GT file's stem when there is one).
            save_dir: Write restored images here as ``<stem>[_<suffix>].png`` (None: don't).
            suffix: File-name suffix of saved images.

        Returns:
            ``{"average": {metric: value}, "images": {stem: {metric: value}}}``.
        """
        per_image: Dict[str, Dict[str, float]] = {}
        saved = 0
        iterator = loader
        if self.pbar:
            from tqdm import tqdm

            iterator = tqdm(loader, unit="img", leave=False)
        for batch in iterator:
            output = infer(batch["lq"])
            out_u8 = tensor2uint8(output.detach().float().cpu())
            # Datasets name samples uniquely (RESIDE: several hazy images share one GT file).
            stems = batch.get("name") or [Path(p).stem for p in batch.get("gt_path", batch["lq_path"])]
            if "gt" in batch and self.metric_set.names:
                gt_u8 = tensor2uint8(batch["gt"].float())
                scores = self.metric_set.compute(out_u8, gt_u8)
                for i, stem in enumerate(stems):
                    per_image[stem] = {name: float(vals[i]) for name, vals in scores.items()}
            if save_dir is not None:
                for i, stem in enumerate(stems):
                    if self.num_save_img is not None and saved >= self.num_save_img:
                        break
                    name = f"{stem}_{suffix}.png" if suffix else f"{stem}.png"
                    imwrite(tensor2img(output[i].detach().float().cpu()), str(Path(save_dir) / name))
                    saved += 1
        average = {
            name: sum(v[name] for v in per_image.values()) / len(per_image) for name in self.metric_set.names
        } if per_image else {}
        return {"average": average, "images": per_image}
