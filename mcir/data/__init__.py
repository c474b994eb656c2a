"""Datasets, transforms, file backends, image resizing and data loaders; importing registers the datasets."""

from __future__ import annotations

import inspect
from typing import Any, Dict

from torch.utils.data import Dataset

from mcir.data import paired_dataset  # noqa: F401  (registers PairedImageDataset)
from mcir.data.dataloader import EnlargedSampler, build_dataloader
from mcir.errors import OptionError, RegistryError
from mcir.registry import DATASET_REGISTRY

__all__ = ["LOADER_KEYS", "EnlargedSampler", "build_dataloader", "build_dataset"]

LOADER_KEYS: tuple = (
    "batch_size_per_gpu",
    "num_worker_per_gpu",
    "dataset_enlarge_ratio",
    "use_shuffle",
    "pin_memory",
    "prefetch_mode",
)


def build_dataset(cfg: Dict[str, Any], key: str = "datasets") -> Dataset:
    """Build the dataset named by ``cfg['type']`` from an option section, leaving out data-loader keys.

    Args:
        cfg: A ``datasets.<name>`` option section; not mutated.
        key: Its dotted option path (e.g. ``datasets.train``), for error messages.

    Returns:
        The dataset.
    """
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise OptionError("needs a 'type' (e.g. PairedImageDataset)", key=key)
    try:
        cls = DATASET_REGISTRY.get(cfg["type"])
    except RegistryError as exc:
        raise RegistryError(exc.message, file=exc.file, key=f"{key}.type") from exc
    kwargs = {k: v for k, v in cfg.items() if k != "type" and k not in LOADER_KEYS}
    params = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for name in kwargs:
            if name not in params:
                raise OptionError(
                    f"unknown option for {cfg['type']} (it takes: {', '.join(params)})", key=f"{key}.{name}"
                )
    missing = [
        n for n, p in params.items()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in kwargs
    ]
    if missing:
        raise OptionError(f"{cfg['type']} needs {', '.join(missing)}", key=key)
    try:
        return cls(**kwargs)
    except OptionError as exc:
        if exc.key and not exc.key.startswith(key):
            raise OptionError(exc.message, file=exc.file, key=f"{key}.{exc.key}") from exc
        raise
