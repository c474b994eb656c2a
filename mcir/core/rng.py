"""Seeding and capturing/restoring every RNG state a run uses (torch CPU/CUDA, Python, NumPy)."""

from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed torch (all devices), Python and NumPy; optionally ask torch for deterministic kernels.

    Args:
        seed: The seed.
        deterministic: Enable ``torch.use_deterministic_algorithms`` (warn-only) and disable cuDNN benchmarking.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def get_rng_state() -> Dict[str, Any]:
    """Every RNG state, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _to_lists(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(obj: Any) -> Any:
    return [_to_lists(o) for o in obj] if isinstance(obj, (tuple, list)) else obj


def _to_tuples(obj: Any) -> Any:
    return tuple(_to_tuples(o) for o in obj) if isinstance(obj, (tuple, list)) else obj
