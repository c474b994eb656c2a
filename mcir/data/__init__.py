"""Datasets, transforms, file backends, image resizing and data loaders; importing registers the datasets."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from torch.utils.data import DataLoader, Dataset

# Imported to register MixedDataset, PairedImageDataset and SyntheticDegradationDataset.
from mcir.data import mixed_dataset, paired_dataset, synthetic_dataset  # noqa: F401
from mcir.data.dataloader import EnlargedSampler, build_dataloader
from mcir.errors import OptionError
from mcir.registry import DATASET_REGISTRY, build_from_registry

__all__ = ["LOADER_KEYS", "EnlargedSampler", "build_dataloader", "build_dataset", "build_loader"]

LOADER_KEYS: tuple = (
    "batch_size_per_gpu",
    "num_worker_per_gpu",
    "dataset_enlarge_ratio",
    "use_shuffle",
    "pin_memory",
    "prefetch_mode",
    "progressive",  # read by mcir.data.progressive (train.py), not by the loader or the dataset
)


def build_dataset(cfg: Dict[str, Any], key: str = "datasets") -> Dataset:
    """Build the dataset named by ``cfg['type']`` from an option section, leaving out data-loader keys.

    Args:
        cfg: A ``datasets.<name>`` option section; not mutated.
        key: Its dotted option path (e.g. ``datasets.train``), for error messages.

    Returns:
        The dataset.
    """
    if not isinstance(cfg, dict):
        raise OptionError("must be a section", key=key)
    dataset_cfg = {k: v for k, v in cfg.items() if k not in LOADER_KEYS}
    return build_from_registry(DATASET_REGISTRY, dataset_cfg, key)


def build_loader(
    cfg: Dict[str, Any], key: str, phase: str, scale: int, seed: int = 0, num_replicas: int = 1, rank: int = 0
) -> Tuple[Dataset, DataLoader]:
    """Dataset and data loader from one ``datasets.<name>`` section.

    Args:
        cfg: The option section (not mutated).
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
    loader_args = {k: section[k] for k in LOADER_KEYS if k in section and k not in ("prefetch_mode", "progressive")}
    return dataset, build_dataloader(dataset, phase, seed=seed, num_replicas=num_replicas, rank=rank, **loader_args)
