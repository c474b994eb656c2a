"""Import every built-in component module once so the registries are filled (no folder scans)."""

from __future__ import annotations

import importlib

_BUILTIN_MODULES = (
    "mcir.archs",
    "mcir.losses",
    "mcir.method",
    "mcir.data",
    "mcir.metrics",
    "mcir.core.optimizers",
    "mcir.core.schedulers",
    "mcir.models",
)


def load_components() -> None:
    """Import mcir's built-in archs, losses, datasets, metrics, optimizers, schedulers and models."""
    for name in _BUILTIN_MODULES:
        importlib.import_module(name)
