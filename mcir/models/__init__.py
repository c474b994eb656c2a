"""Models (generator + losses + update rules), registered in ``MODEL_REGISTRY``, and ``build_model``."""

from __future__ import annotations

from typing import Any, Dict

import torch

# Imported for their registration side effect.
from mcir.models import mcir_model, restoration_model  # noqa: F401
from mcir.registry import MODEL_REGISTRY

__all__ = ["MODEL_REGISTRY", "build_model"]


def build_model(opt: Dict[str, Any], device: torch.device, is_train: bool) -> Any:
    """Build the model named by ``opt['model_type']`` from resolved options.

    Args:
        opt: Resolved options.
        device: Target device.
        is_train: Whether to build the training parts (loss, optimizer, scheduler, EMA).

    Returns:
        The model instance.
    """
    return MODEL_REGISTRY.get(opt.get("model_type", "RestorationModel")).from_options(opt, device, is_train)
