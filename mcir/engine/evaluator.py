"""Evaluate a restoration function on a paired loader: per-image and average metrics, optional image saving."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from mcir.engine.dist import all_reduce_sum, gather_to_main, get_world_size, is_main_process
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

        In distributed training each rank passes its shard of the set (see
        :func:`mcir.data.build_dataloader`); the averages are all-reduced from per-rank sums and counts,
        so every rank gets the averages of the whole set, and the restored images are sent to rank 0,
        which alone writes them (the first ``num_save_img`` of the set, as in a single process).

        Args:
            infer: Maps an LQ batch to the restored batch.
            loader: Yields dicts with ``lq``, ``lq_path`` and optionally ``gt`` / ``gt_path`` / ``name`` (images
                are named by ``name``, else by the GT file's stem when there is one).
            save_dir: Write restored images here as ``<stem>[_<suffix>].png`` (None: don't).
            suffix: File-name suffix of saved images.

        Returns:
            ``{"average": {metric: value}, "images": {stem: {metric: value}}}``; in distributed runs
            ``images`` holds this rank's images only.
        """
        world = get_world_size()
        main = is_main_process()
        per_image: Dict[str, Dict[str, float]] = {}
        pending: List[Tuple[str, np.ndarray]] = []  # images of other ranks, sent to rank 0 at the end
        # Position of each image in the whole set, so num_save_img picks the same images on any world size.
        positions = iter(_dataset_positions(loader))
        iterator = loader
        if self.pbar and main:
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
            for i, stem in enumerate(stems):
                position = next(positions, -1)
                if save_dir is None or (self.num_save_img is not None and position >= self.num_save_img):
                    continue
                name = f"{stem}_{suffix}.png" if suffix else f"{stem}.png"
                img = tensor2img(output[i].detach().float().cpu())
                if main:
                    imwrite(img, str(Path(save_dir) / name))
                else:
                    pending.append((name, img))
        if world > 1 and save_dir is not None:
            for part in gather_to_main(pending) or []:
                for name, img in part:
                    imwrite(img, str(Path(save_dir) / name))
        names = self.metric_set.names
        if world == 1:
            average = {name: sum(v[name] for v in per_image.values()) / len(per_image) for name in names} \
                if per_image else {}
        else:
            local = [sum(v[name] for v in per_image.values()) for name in names] + [len(per_image)]
            totals = all_reduce_sum(torch.tensor(local, dtype=torch.float64)).tolist()
            count = totals[-1]
            average = {name: totals[i] / count for i, name in enumerate(names)} if count else {}
        return {"average": average, "images": per_image}


def _dataset_positions(loader: DataLoader) -> Iterator[int]:
    """Index in the dataset of each image the loader yields, in order (endless count when unknown)."""
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and not isinstance(loader.dataset, IterableDataset):
        yield from sampler
    else:
        yield from itertools.count()
