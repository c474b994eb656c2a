"""Check a built dataset file by file: every pair decodes, GT and LQ sizes agree with the scale; summarised."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Set, Tuple

from torch.utils.data import Dataset

from mcir.errors import MCIRError


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found for one dataset.

    Args:
        label: Where the dataset comes from (option key or folders).
        pairs: Number of samples checked.
        rule: Pairing rule in use (``gt_only`` when the LQ is made from the GT).
        sizes: ``(h, w)`` of each checked GT image (after aligning it with its LQ).
        channels: Channel counts seen.
        problems: One line per bad sample.
    """

    label: str
    pairs: int = 0
    rule: str = "?"
    sizes: List[Tuple[int, int]] = field(default_factory=list)
    channels: Set[int] = field(default_factory=set)
    problems: List[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: pairs, rule, size range and channels, or the number of problems."""
        text = f"{self.label}: {self.pairs} pairs, pairing rule {self.rule}"
        if self.sizes:
            distinct = sorted(set(self.sizes), key=lambda hw: (hw[0] * hw[1], hw))
            if len(distinct) <= 3:
                text += ", GT " + ", ".join(f"{h}x{w}" for h, w in distinct)
            else:
                (h0, w0), (h1, w1) = distinct[0], distinct[-1]
                text += f", GT {len(distinct)} sizes from {h0}x{w0} to {h1}x{w1}"
        if self.channels:
            text += f", {'/'.join(str(c) for c in sorted(self.channels))} channel(s)"
        return text + (f": {len(self.problems)} problem(s)" if self.problems else ": OK")


def parts(dataset: Dataset, label: str) -> List[Tuple[str, Dataset]]:
    """The datasets to check: the dataset itself, or each task of a ``MixedDataset``.

    Args:
        dataset: A built dataset.
        label: Its name for messages.

    Returns:
        ``(label, dataset)`` pairs.
    """
    tasks = getattr(dataset, "tasks", None)
    subs = getattr(dataset, "datasets", None)
    if tasks and subs:
        return [(f"{label}.datasets.{t}", d) for t, d in zip(tasks, subs)]
    return [(label, dataset)]


def _check_one(dataset: Dataset, index: int) -> Tuple[Optional[Tuple[int, int, int]], Optional[str]]:
    """``((h, w, c) of the GT, None)`` or ``(None, problem)`` for sample ``index``."""
    try:
        if hasattr(dataset, "read_pair"):
            gt, lq = dataset.read_pair(index)
            scale = int(getattr(dataset, "scale", 1))
            if lq is None and min(gt.shape[:2]) < scale:
                return (
                    None,
                    f"{dataset.pairs[index][0]}: image {gt.shape[0]}x{gt.shape[1]} is smaller than scale {scale}",
                )
            return (gt.shape[0], gt.shape[1], gt.shape[2]), None
        gt = dataset[index]["gt"]
        return (int(gt.shape[-2]), int(gt.shape[-1]), int(gt.shape[0])), None
    except (MCIRError, OSError) as exc:
        return None, str(exc)


def check_dataset(dataset: Dataset, label: str, n_thread: int = 1, progress: bool = False) -> DatasetReport:
    """Decode every sample of ``dataset`` (without crops or flips) and collect problems instead of stopping.

    Args:
        dataset: A built dataset (``PairedImageDataset`` is read through ``read_pair``; others through
            ``__getitem__``).
        label: Its name for the report.
        n_thread: Decoding threads (LMDB datasets use one).
        progress: Show a tqdm progress bar (on a terminal).

    Returns:
        The report.
    """
    report = DatasetReport(label, pairs=len(dataset), rule=str(getattr(dataset, "rule", "?")))
    indices: Iterable[int] = range(len(dataset))
    threads = 1 if getattr(dataset, "backend_kind", "disk") == "lmdb" else max(1, n_thread)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = pool.map(lambda i: _check_one(dataset, i), indices)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(dataset), desc=label, unit="pair", leave=False, disable=None)
        for shape, problem in results:
            if problem is not None:
                report.problems.append(problem)
            else:
                report.sizes.append(shape[:2])
                report.channels.add(shape[2])
    return report
