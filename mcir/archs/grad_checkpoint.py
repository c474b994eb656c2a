"""Activation checkpointing of the repeatable blocks an architecture declares (``train.grad_checkpoint``).

An architecture lists its blocks in ``checkpoint_blocks()`` (``mcir.archs.arch_util.ArchBase``; none by
default). :func:`enable_grad_checkpoint` gives each of those blocks an instance-level ``forward`` that, while
the block is in training mode and autograd records, runs the class's ``forward`` under
``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``: only the block's inputs are kept and its
inside is recomputed in the backward pass. In eval mode, under ``no_grad``/``inference_mode`` (EMA copies,
negative models, validation) the plain forward runs. No module is added, renamed or replaced, so state-dict
names stay those of the plain network and ``copy.deepcopy`` keeps the behaviour bound to the copy.
(Pickling a whole checkpointed module is not supported; mcir saves state dicts.)
"""

from __future__ import annotations

import types
from typing import Any, List, Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mcir.errors import OptionError


def declared_blocks(net: nn.Module) -> List[nn.Module]:
    """The blocks ``net`` declares for checkpointing.

    Args:
        net: A network.

    Returns:
        ``net.checkpoint_blocks()``, or ``[]`` when it has no such method.
    """
    method = getattr(net, "checkpoint_blocks", None)
    return list(method()) if callable(method) else []


def _checkpointed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The class's forward, recomputed in the backward pass while training with autograd on."""
    forward = type(self).forward
    if self.training and torch.is_grad_enabled():
        return checkpoint(forward, self, *args, use_reentrant=False, **kwargs)
    return forward(self, *args, **kwargs)


def is_checkpointed(module: nn.Module) -> bool:
    """Whether :func:`enable_grad_checkpoint` wrapped ``module``.

    Args:
        module: A block.

    Returns:
        True when its forward is the checkpointing one.
    """
    forward = module.__dict__.get("forward")
    return isinstance(forward, types.MethodType) and forward.__func__ is _checkpointed_forward


def enable_grad_checkpoint(net: nn.Module, key: str = "train.grad_checkpoint", file: Optional[str] = None) -> int:
    """Checkpoint every block ``net`` declares (idempotent).

    Args:
        net: The network (modified in place; its state dict is unchanged).
        key: Option named in the error.
        file: Option file named in the error.

    Returns:
        How many blocks are checkpointed.

    Raises:
        OptionError: ``net`` declares no blocks.
    """
    blocks = declared_blocks(net)
    if not blocks:
        raise OptionError(
            f"{type(net).__name__} declares no blocks to checkpoint (checkpoint_blocks()); set it to false",
            file=file, key=key,
        )
    for block in blocks:
        block.forward = types.MethodType(_checkpointed_forward, block)
    return len(blocks)


def disable_grad_checkpoint(net: nn.Module) -> None:
    """Undo :func:`enable_grad_checkpoint` on ``net``'s declared blocks.

    Args:
        net: The network.
    """
    for block in declared_blocks(net):
        if is_checkpointed(block):
            del block.forward
