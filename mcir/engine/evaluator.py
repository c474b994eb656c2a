"""Evaluate a restoration function on a paired loader: per-image and average metrics, optional image saving.

The network runs in the calling thread while a prefetch thread decodes the next pair. Scoring / saving
the previous outputs runs in a small pool of threads (several images at once) when that pays: always for a
network on an accelerator, and on the CPU when the first image shows scoring slower than the forward (a
cheap network such as Bicubic). A CPU-bound network already keeps every core busy, and scoring beside it
only slows its OpenMP threads, so there the scoring stays in the calling thread. OpenCV and most NumPy work
release the GIL. No value depends on the mode: every image is scored exactly as in a plain loop, and
results are collected in loader order.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from mcir.core.dist import gather_to_main, get_world_size, is_main_process, run_on_main
from mcir.metrics.metric_set import MetricSet
from mcir.utils.img_util import batch2uint8_imgs, imwrite

InferFn = Callable[[torch.Tensor], torch.Tensor]
#: ``on_output(index, stem, output)``: called in loader order with each restored (C, H, W) image.
OutputHook = Callable[[int, str, torch.Tensor], None]

_END = object()


class Evaluator:
    """Computes the metrics named in the options for every image of a loader.

    Args:
        metrics: ``{name: {type: registered_metric, **kwargs}}`` (``val.metrics``).
        num_save_img: Save at most this many restored images per pass (None: all, when saving).
        pbar: Show a progress bar.
        overlap: Decode in a background thread and score in a thread pool when it pays (see the module
            docstring); False runs the plain loop. Same values either way.
        score_workers: Scoring threads when overlapping (None: the number of CPUs, at most 4).
    """

    def __init__(
        self,
        metrics: Mapping[str, Dict[str, Any]],
        num_save_img: Optional[int] = None,
        pbar: bool = False,
        overlap: bool = True,
        score_workers: Optional[int] = None,
    ):
        self.metric_set = MetricSet(metrics)
        self.num_save_img = num_save_img
        self.pbar = pbar
        self.overlap = overlap
        if score_workers is not None and (isinstance(score_workers, bool) or int(score_workers) < 1):
            raise ValueError(f"score_workers must be a positive integer, got {score_workers!r}")
        self.score_workers = int(score_workers) if score_workers is not None else min(4, os.cpu_count() or 1)

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
        on_output: Optional[OutputHook] = None,
    ) -> Dict[str, Any]:
        """Run ``infer`` over ``loader`` and score every output against its GT.

        Args:
            infer: Maps an LQ batch to the restored batch.
            loader: Yields dicts with ``lq``, ``lq_path`` and optionally ``gt`` / ``gt_path`` / ``name`` (images
                are named by ``name``, else by the GT file's stem when there is one).
            save_dir: Write restored images here as ``<stem>[_<suffix>].png`` (None: don't).
            suffix: File-name suffix of saved images.
            on_output: Called with ``(index, stem, output)`` for every restored image, in loader order.

        Returns:
            ``{"average": {metric: value}, "images": {stem: {metric: value}}}``. In distributed runs rank 0's
            ``images`` holds every rank's images in dataset order and the other ranks' their own; the average
            is computed on rank 0 from those values in that order (so it equals one process's to the last
            bit) and handed to every rank.
        """
        main = is_main_process()
        # Position of each image in the whole set, so num_save_img picks the same images on any world size.
        positions = iter(_dataset_positions(loader))
        prefetcher = _Prefetcher(loader) if self.overlap else None
        batches: Iterable[Dict[str, Any]] = prefetcher if prefetcher is not None else loader
        if self.pbar and main:
            from tqdm import tqdm

            batches = tqdm(batches, total=len(loader), unit="img", leave=False)
        pool: Optional[ThreadPoolExecutor] = None
        # None until the first batch is timed; then whether scoring goes to the pool.
        use_pool: Optional[bool] = None if self.overlap else False
        pending: Deque[Future] = deque()
        scored: List[Tuple[Dict[str, Dict[str, float]], List[Tuple[Path, np.ndarray]]]] = []
        order: List[List[Tuple[int, str]]] = []  # (position in the set, stem) of each scored batch's images
        index = 0
        try:
            for batch in batches:
                start = time.perf_counter()
                output = infer(batch["lq"]).detach()
                forward_s = time.perf_counter() - start
                # Datasets may name samples uniquely (RESIDE: several hazy images share one GT file).
                stems = list(batch.get("name") or [Path(p).stem for p in batch.get("gt_path", batch["lq_path"])])
                if on_output is not None:
                    for i, stem in enumerate(stems):
                        on_output(index + i, stem, output[i])
                batch_positions = [next(positions, -1) for _ in stems]
                order.append(list(zip(batch_positions, stems)))
                save = self._save_targets(batch_positions, stems, save_dir, suffix)
                index += len(stems)
                job = (output, batch.get("gt"), stems, save, main)
                if not use_pool:
                    start = time.perf_counter()
                    scored.append(self._score(*job))
                    if use_pool is None:
                        use_pool = output.device.type != "cpu" or time.perf_counter() - start > forward_s
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=self.score_workers, thread_name_prefix="mcir-score")
                pending.append(pool.submit(self._score, *job))
                # Bounded memory when scoring is slower than the network: one queued job per worker, plus one.
                while len(pending) > self.score_workers + 1:
                    scored.append(pending.popleft().result())
            while pending:
                scored.append(pending.popleft().result())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            if prefetcher is not None:
                prefetcher.close()
        return self._aggregate(scored, order, save_dir)

    def _aggregate(
        self,
        scored: List[Tuple[Dict[str, Dict[str, float]], List[Tuple[Path, np.ndarray]]]],
        order: List[List[Tuple[int, str]]],
        save_dir: Optional[str],
    ) -> Dict[str, Any]:
        """Per-image values of every rank in the set's order, their averages, and rank 0 writing others' images.

        Args:
            scored: ``(per-image values, images left to write)`` of each batch, in loader order.
            order: ``(position in the set, stem)`` of each batch's images.
            save_dir: Where images are saved (None: nowhere).

        Returns:
            ``{"average": {metric: value}, "images": {stem: {metric: value}}}``.
        """
        world = get_world_size()
        entries: List[Tuple[int, str, Dict[str, float]]] = []  # (position, stem, values) in loader order
        unsaved: List[Tuple[Path, np.ndarray]] = []  # other ranks' images, written by rank 0
        for (part, images), batch_order in zip(scored, order):
            entries.extend((pos, stem, part[stem]) for pos, stem in batch_order if stem in part)
            unsaved.extend(images)
        if world > 1 and save_dir is not None:
            for images in gather_to_main(unsaved) or []:
                for path, img in images:
                    imwrite(img, str(path))
        per_image = _in_set_order([entries])
        if world > 1:
            gathered = gather_to_main(entries)
            if gathered is not None:
                per_image = _in_set_order(gathered)
        names = self.metric_set.names
        average = run_on_main(lambda: _averages(names, per_image))
        return {"average": average, "images": per_image}

    def _save_targets(
        self, positions: List[int], stems: List[str], save_dir: Optional[str], suffix: Optional[str]
    ) -> List[Tuple[int, Path]]:
        """``(batch position, file)`` of the images of this batch that are saved."""
        if save_dir is None:
            return []
        out = []
        for i, stem in enumerate(stems):
            if self.num_save_img is not None and positions[i] >= self.num_save_img:
                continue
            out.append((i, Path(save_dir) / (f"{stem}_{suffix}.png" if suffix else f"{stem}.png")))
        return out

    def _score(
        self,
        output: torch.Tensor,
        gt: Optional[torch.Tensor],
        stems: List[str],
        save: List[Tuple[int, Path]],
        write: bool,
    ) -> Tuple[Dict[str, Dict[str, float]], List[Tuple[Path, np.ndarray]]]:
        """Metrics of one batch, writing its saved images (or returning them when ``write`` is False)."""
        per_image: Dict[str, Dict[str, float]] = {}
        # Scored on the CPU with the NumPy reference metrics on every device, so values never depend on it.
        # Quantised once, in NumPy: the metrics and the saved files use tensor2img's 8-bit levels.
        imgs = batch2uint8_imgs(output)
        # Without GT only the no-reference metrics (NIQE) are computed.
        if self.metric_set.names if gt is not None else self.metric_set.reference_free:
            scores = self.metric_set.compute(imgs, batch2uint8_imgs(gt) if gt is not None else None)
            for i, stem in enumerate(stems):
                per_image[stem] = {name: float(vals[i]) for name, vals in scores.items()}
        unsaved = []
        for i, path in save:
            if write:
                imwrite(imgs[i], path)
            else:
                unsaved.append((path, imgs[i]))
        return per_image, unsaved


def _in_set_order(ranks: List[List[Tuple[int, str, Dict[str, float]]]]) -> Dict[str, Dict[str, float]]:
    """``{stem: values}`` of every rank's ``(position, stem, values)`` entries, in the set's order."""
    merged = sorted((e for entries in ranks for e in entries), key=lambda e: e[0])  # stable: ties keep rank order
    per_image: Dict[str, Dict[str, float]] = {}
    for _, stem, values in merged:
        per_image[stem] = values
    return per_image


def _averages(names: List[str], per_image: Mapping[str, Mapping[str, float]]) -> Dict[str, float]:
    """Each metric's mean over the images that have it (GT-less images only have NIQE-like ones)."""
    sums = [sum(v[name] for v in per_image.values() if name in v) for name in names]
    counts = [sum(name in v for v in per_image.values()) for name in names]
    return {name: sums[i] / counts[i] for i, name in enumerate(names) if counts[i]}


def _dataset_positions(loader: DataLoader) -> Iterator[int]:
    """Index in the dataset of each image the loader yields, in order (endless count when unknown)."""
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and not isinstance(loader.dataset, IterableDataset):
        yield from sampler
    else:
        yield from itertools.count()


class _Prefetcher:
    """Iterates a loader in a daemon thread, one batch ahead of the consumer."""

    def __init__(self, loader: Iterable[Dict[str, Any]], depth: int = 2):
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(loader,), name="mcir-prefetch", daemon=True)
        self._thread.start()

    def _run(self, loader: Iterable[Dict[str, Any]]) -> None:
        try:
            for batch in loader:
                if not self._put(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer thread
            self._put(_Failure(exc))
            return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        """Stop the thread (when the consumer leaves early) and wait for it."""
        self._stop.set()
        self._thread.join()


class _Failure:
    """An exception raised while loading, carried to the consumer."""

    def __init__(self, exc: BaseException):
        self.exc = exc
