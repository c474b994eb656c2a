"""MixedDataset: several datasets sampled with weights, each sample tagged with its task (all-in-one training)."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import Dataset

from mcir.constraints import NonNegativeFloat, NonNegativeInt, PositiveInt
from mcir.data.dataset_common import Phase
from mcir.errors import OptionError
from mcir.registry import DATASET_REGISTRY

Weights = Union[Mapping[str, NonNegativeFloat], Sequence[NonNegativeFloat], None]


def apportion(total: int, weights: Sequence[float]) -> List[int]:
    """Split ``total`` into integer counts proportional to ``weights`` (largest remainders get the rest).

    Args:
        total: The number to split.
        weights: Positive weights.

    Returns:
        Counts summing to ``total``; each is ``floor`` or ``ceil`` of ``total * w / sum(weights)``.
    """
    wsum = float(sum(weights))
    exact = [total * w / wsum for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _channels(dataset: Dataset) -> int:
    return 1 if getattr(dataset, "color", None) in ("gray", "y") else 3


@DATASET_REGISTRY.register()
class MixedDataset(Dataset):
    """Samples of several datasets in weighted proportions, each with ``sample['task']`` = its task name.

    Index ``i`` maps to a task and a sample deterministically (given ``seed``): the index range is split into
    one block per task, sized in proportion to the weights, and each block walks a seeded permutation of its
    dataset (repeating it when the block is longer). With the default ``length`` every sample of every task
    appears at least once per pass. The training sampler shuffles the indices, so batches mix tasks.

    In training, a batch stacks patches of different tasks, so every sub-dataset must crop the same
    ``gt_size`` at the same ``scale`` with the same number of channels; this is checked here.

    Args:
        datasets: ``{task: dataset section}``; each section is validated like a ``datasets.<name>`` section
            (``type`` defaults to ``PairedImageDataset``) but without data-loader keys.
        weights: Sampling weight per task (``{task: w}`` or a list in task order); default 1 each.
        length: Samples per pass; default the smallest length that covers every dataset at its weight.
        seed: Seed of the sample assignment.
        phase: ``train``, ``val`` or ``test``; given to sub-datasets that do not set it.
        scale: Given to sub-datasets that do not set it.
        name: Dataset name for messages.
    """

    def __init__(
        self,
        datasets: Dict[str, Dict[str, Any]],
        weights: Weights = None,
        length: Optional[PositiveInt] = None,
        seed: NonNegativeInt = 0,
        phase: Phase = "train",
        scale: PositiveInt = 1,
        name: str = "",
    ):
        super().__init__()
        from mcir.data import LOADER_KEYS, build_dataset  # mcir.data imports this module to register it

        if not isinstance(datasets, dict) or not datasets:
            raise OptionError("must map task names to dataset sections", key="datasets")
        self.name = name
        self.phase = phase
        self.tasks: Tuple[str, ...] = tuple(str(t) for t in datasets)
        self.datasets: List[Dataset] = []
        for task, cfg in datasets.items():
            key = f"datasets.{task}"
            if not isinstance(cfg, dict):
                raise OptionError("must be a dataset section", key=key)
            for k in LOADER_KEYS:
                if cfg.get(k) is not None:
                    raise OptionError(
                        "data-loader keys belong to the MixedDataset section, not to a task", key=f"{key}.{k}"
                    )
            section = {k: v for k, v in cfg.items() if k not in LOADER_KEYS}
            section.setdefault("type", "PairedImageDataset")
            section.setdefault("phase", phase)
            section.setdefault("scale", scale)
            if section.get("name") is None:
                section["name"] = str(task)
            dataset = build_dataset(section, key)
            if len(dataset) == 0:
                raise OptionError("has no samples", key=key)
            self.datasets.append(dataset)
        self.weights = self._check_weights(weights)
        if phase == "train":
            self._check_batchable()
        sizes = [len(d) for d in self.datasets]
        wsum = sum(self.weights)
        needed = max(math.ceil(n * wsum / w - 1e-9) for n, w in zip(sizes, self.weights))
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise OptionError(f"must be a positive integer, got {length!r}", key="length")
        self.length = int(length) if length is not None else needed
        self.counts = apportion(self.length, self.weights)
        self.starts = [sum(self.counts[:i]) for i in range(len(self.counts))]
        self.orders = [
            torch.randperm(n, generator=torch.Generator().manual_seed(int(seed) * 1000003 + i)).tolist()
            for i, n in enumerate(sizes)
        ]

    def _check_weights(self, weights: Weights) -> List[float]:
        if weights is None:
            values = [1.0] * len(self.tasks)
        elif isinstance(weights, dict):
            by_task = {str(k): v for k, v in weights.items()}
            unknown = [k for k in by_task if k not in self.tasks]
            missing = [t for t in self.tasks if t not in by_task]
            if unknown or missing:
                what = f"unknown task(s) {', '.join(unknown)}" if unknown else f"no weight for {', '.join(missing)}"
                raise OptionError(f"{what} (tasks: {', '.join(self.tasks)})", key="weights")
            values = [by_task[t] for t in self.tasks]
        elif isinstance(weights, (list, tuple)):
            if len(weights) != len(self.tasks):
                raise OptionError(
                    f"{len(weights)} weights for {len(self.tasks)} tasks ({', '.join(self.tasks)})", key="weights"
                )
            values = list(weights)
        else:
            raise OptionError(f"must be a mapping task: weight or a list, got {weights!r}", key="weights")
        for task, w in zip(self.tasks, values):
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0 or math.isinf(w):
                raise OptionError(f"weight of '{task}' must be a positive number, got {w!r}", key="weights")
        return [float(w) for w in values]

    def _check_batchable(self) -> None:
        """Training batches stack one patch per sample, so every task must yield the same patch shape."""
        shapes = {}
        for task, dataset in zip(self.tasks, self.datasets):
            gt_size = getattr(dataset, "gt_size", None)
            if not gt_size:
                raise OptionError(
                    "MixedDataset training batches patches of all tasks together, so every task needs a gt_size "
                    "(whole images of different sizes cannot be stacked)",
                    key=f"datasets.{task}.gt_size",
                )
            shapes[task] = (gt_size, int(getattr(dataset, "scale", 1)), _channels(dataset))
        first_task, first = next(iter(shapes.items()))
        for task, shape in shapes.items():
            for i, what in enumerate(("gt_size", "scale", "color")):
                if shape[i] != first[i]:
                    got = ", ".join(
                        f"{t}: {s[i] if i < 2 else ('1 channel' if s[i] == 1 else '3 channels')}"
                        for t, s in shapes.items()
                    )
                    raise OptionError(
                        f"MixedDataset training batches patches of all tasks together, so every task needs the same "
                        f"{what} (got {got})",
                        key=f"datasets.{task}.{what}",
                    )

    def locate(self, index: int) -> Tuple[int, int]:
        """``(task index, sample index in that task's dataset)`` for global ``index``.

        Args:
            index: Index in ``[0, len(self))``.

        Returns:
            The task and its sample.
        """
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} is out of range for {self.length} samples")
        task = max(i for i, s in enumerate(self.starts) if s <= index and self.counts[i] > 0)
        order = self.orders[task]
        return task, order[(index - self.starts[task]) % len(order)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """The sub-dataset's sample for ``index`` plus ``task`` (and ``name`` prefixed with ``<task>/``).

        Args:
            index: Sample index.

        Returns:
            The sample dict.
        """
        task, sub = self.locate(index)
        sample = dict(self.datasets[task][sub])
        sample["task"] = self.tasks[task]
        if "name" in sample:
            sample["name"] = f"{self.tasks[task]}/{sample['name']}"
        return sample

    def __repr__(self) -> str:
        parts = ", ".join(f"{t}: {c}" for t, c in zip(self.tasks, self.counts))
        return f"{type(self).__name__}(name={self.name!r}, phase={self.phase}, samples={self.length} ({parts}))"
