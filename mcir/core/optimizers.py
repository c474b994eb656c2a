"""Register every ``torch.optim`` optimizer by its class name (Adam, AdamW, SGD, ...)."""

from __future__ import annotations

import inspect
from typing import Tuple

import torch

from mcir.constraints import Decay, NonNegativeFloat, PositiveFloat
from mcir.registry import OPTIMIZER_REGISTRY

# torch's annotations say "float" (or "float or Tensor"); the option schema also checks the ranges.
_RANGES = {
    "lr": PositiveFloat,
    "eps": PositiveFloat,
    "weight_decay": NonNegativeFloat,
    "momentum": NonNegativeFloat,
    "dampening": NonNegativeFloat,
    "alpha": NonNegativeFloat,
    "betas": Tuple[Decay, Decay],
}


def _register_torch_optimizers() -> None:
    for name, obj in vars(torch.optim).items():
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer:
            if name not in OPTIMIZER_REGISTRY:
                params = inspect.signature(obj).parameters
                hints = {k: v for k, v in _RANGES.items() if k in params}
                OPTIMIZER_REGISTRY.register(obj, name=name, hints=hints)


_register_torch_optimizers()
