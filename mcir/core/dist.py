"""Rank queries and the few collectives mcir uses; each also works in a single process (no process group).

Collectives then return their input, so models, the engine and the evaluator call them unconditionally.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from mcir.errors import MCIRError

T = TypeVar("T")


# ---- rank queries ---------------------------------------------------------------------------
def get_rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Whether this is rank 0 (always true in a single process)."""
    return get_rank() == 0


# ---- collectives (identity in a single process) ---------------------------------------------
def _comm_device() -> torch.device:
    """Tensors given to the backend must live here (nccl only moves CUDA tensors)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if get_world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes.

    Args:
        values: Same shape and dtype on every process.

    Returns:
        A new tensor on ``values``' device (``values`` itself in a single process).
    """
    if get_world_size() == 1:
        return values
    buf = values.detach().to(_comm_device(), copy=True)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(values.device)


def mean_across_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of ``values`` over all processes (``values`` itself in a single process)."""
    world = get_world_size()
    return values if world == 1 else all_reduce_sum(values) / world


def gather_to_main(obj: T) -> Optional[List[T]]:
    """Collect a picklable object from every rank on rank 0.

    Args:
        obj: This rank's object.

    Returns:
        The objects in rank order on rank 0, None elsewhere (``[obj]`` in a single process).
    """
    if get_world_size() == 1:
        return [obj]
    out: Optional[List[T]] = [None] * get_world_size() if is_main_process() else None  # type: ignore[list-item]
    dist.gather_object(obj, out, dst=0)
    return out


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result (or its mcir error) to every rank.

    Used for reading a checkpoint once, so that every rank resumes from the very same state and none
    needs to see rank 0's file system.

    Args:
        fn: The work; it may raise :class:`~mcir.errors.MCIRError`.

    Returns:
        ``fn()``'s result, on every rank.
    """
    if get_world_size() == 1:
        return fn()
    box: List[Any] = [None]
    if is_main_process():
        try:
            box[0] = ("ok", fn())
        except MCIRError as exc:
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    status, payload = box[0]
    if status == "error":
        raise payload
    return payload


@torch.no_grad()
def broadcast_modules(modules: Iterable[nn.Module]) -> None:
    """Copy rank 0's parameters and buffers into every rank's modules, in place."""
    if get_world_size() == 1:
        return
    device = _comm_device()
    for module in modules:
        for tensor in module.state_dict(keep_vars=True).values():
            data = tensor.data
            buf = data if data.device == device else data.to(device)
            dist.broadcast(buf, src=0)
            if buf is not data:
                data.copy_(buf)
