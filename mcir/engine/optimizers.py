"""Register every ``torch.optim`` optimizer by its class name (Adam, AdamW, SGD, ...)."""

from __future__ import annotations

import inspect

import torch

from mcir.registry import OPTIMIZER_REGISTRY


def _register_torch_optimizers() -> None:
    for name, obj in vars(torch.optim).items():
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            if name not in OPTIMIZER_REGISTRY:
                OPTIMIZER_REGISTRY.register(obj, name=name)


_register_torch_optimizers()
