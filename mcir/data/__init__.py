"""Datasets, transforms, file backends, image resizing and data loaders; importing registers the datasets."""

from __future__ import annotations

from typing import Any, Mapping, Tuple

from torch.utils.data import DataLoader, Dataset

# Imported to register MixedDataset, PairedImageDataset and SyntheticDegradationDataset.
from mcir.data import mixed_dataset, paired_dataset, synthetic_dataset  # noqa: F401
from mcir.data.dataloader import EnlargedSampler, build_dataloader
from mcir.registry import DATASET_REGISTRY, construct

__all__ = ["LOADER_KEYS", "EnlargedSampler", "build_dataloader", "build_dataset", "build_loader"]

LOADER_KEYS: tuple = (
    "batch_size_per_gpu",
    "num_worker_per_gpu",
    "dataset_enlarge_ratio",
    "use_shuffle",
    "pin_memory",
    "prefetch_mode",
    "num_prefetch_queue",
    "progressive",  # read by mcir.data.progressive (the builder), not by the loader or the dataset
)
# Loader keys that are not DataLoader arguments as they are.
_NOT_LOADER_ARGS = ("prefetch_mode", "num_prefetch_queue", "progressive")


def build_dataset(cfg: Mapping[str, Any], key: str = "datasets") -> Dataset:
    """Build the dataset of a validated ``datasets.<name>`` section, leaving out data-loader keys.

    Option files are checked when they are loaded (a ``MixedDataset``'s tasks too); check a hand-written
    section with ``mcir.options.build_checked(DATASET_REGISTRY, cfg)`` first.

    Args:
        cfg: A ``datasets.<name>`` option section (with ``phase``); not mutated.
        key: Its dotted option path (e.g. ``datasets.train``), for error messages.

    Returns:
        The dataset.
    """
    dataset_cfg = {k: v for k, v in cfg.items() if k not in LOADER_KEYS}
    return construct(DATASET_REGISTRY, dataset_cfg, key)


def build_loader(
    cfg: Mapping[str, Any], key: str, phase: str, scale: int, seed: int = 0, num_replicas: int = 1, rank: int = 0
) -> Tuple[Dataset, DataLoader]:
    """Dataset and data loader from one ``datasets.<name>`` section.

    Args:
        cfg: The validated option section (not mutated). ``prefetch_mode: cuda`` pins batches in page-locked
            memory (the copies to the GPU are asynchronous); ``cpu`` has each worker load
            ``num_prefetch_queue`` batches ahead.
        key: Its dotted option path, for error messages.
        phase: ``train``, ``val`` or ``test`` (set on the dataset).
        scale: The run's scale, used when the section does not set its own.
        seed: Base seed of the sample order and worker seeds.
        num_replicas: Processes sharing the data (distributed training; batch sizes are per process).
        rank: This process's index among them.

    Returns:
        ``(dataset, loader)``.
    """
    section = dict(cfg, phase=phase)
    section.setdefault("scale", scale)
    dataset = build_dataset(section, key)
    loader_args = {k: section[k] for k in LOADER_KEYS if k in section and k not in _NOT_LOADER_ARGS}
    if section.get("prefetch_mode") == "cuda":
        loader_args["pin_memory"] = True
    elif section.get("prefetch_mode") == "cpu":
        loader_args["prefetch_factor"] = section.get("num_prefetch_queue", 1)
    return dataset, build_dataloader(dataset, phase, seed=seed, num_replicas=num_replicas, rank=rank, **loader_args)
