"""Distributed training: process-group setup (torchrun or SLURM), rank queries and the few collectives mcir uses.

Every helper also works in a single process (no process group): collectives then return their input, so
models, the trainer and the evaluator call them unconditionally.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from mcir.errors import MCIRError, OptionError

LAUNCHERS = ("none", "pytorch", "slurm")
BACKENDS = ("nccl", "gloo")
DEFAULT_PORT = 29500
# Rank 0 may write a large checkpoint or validation images while the others wait in a collective.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job.

    Args:
        rank: Global rank.
        local_rank: Rank on this node (selects the GPU).
        world_size: Number of processes.
        device: This process's device.
        backend: Process-group backend, or None without a process group.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes logs, TensorBoard events, checkpoints and images."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether a process group is set up (even with a single process)."""
        return self.backend is not None


def rank_variables(launcher: str, environ: Mapping[str, str], port: Optional[int] = None) -> Dict[str, Any]:
    """Rank, world size, local rank and rendezvous address from the launcher's environment variables.

    Args:
        launcher: ``pytorch`` (torchrun: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``) or
            ``slurm`` (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``; ``MASTER_ADDR`` from the job
            script, ``MASTER_PORT`` or ``port`` or 29500).
        environ: The environment (``os.environ``).
        port: ``dist_params.port`` (SLURM only; torchrun chooses its own).

    Returns:
        ``{"rank", "world_size", "local_rank", "init_method"}``.
    """
    names = {
        "pytorch": ("RANK", "WORLD_SIZE", "LOCAL_RANK"),
        "slurm": ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
    }.get(launcher)
    if names is None:
        raise OptionError(f"unknown launcher '{launcher}' (choose {', '.join(LAUNCHERS)})", key="--launcher")
    hint = "start it with torchrun" if launcher == "pytorch" else "start it with srun inside an sbatch job"
    values = []
    for name in names:
        raw = environ.get(name)
        if raw is None or not raw.strip().isdigit():
            raise OptionError(f"'--launcher {launcher}' needs the environment variable {name}; {hint}",
                              key="--launcher")
        values.append(int(raw))
    rank, world_size, local_rank = values
    if not 0 <= rank < world_size:
        raise OptionError(f"{names[0]}={rank} is not below {names[1]}={world_size}", key="--launcher")
    if launcher == "pytorch":
        # torchrun's agent already runs the rendezvous store that env:// connects to.
        init_method = "env://"
    else:
        addr = environ.get("MASTER_ADDR")
        if not addr:
            raise OptionError(
                "'--launcher slurm' needs MASTER_ADDR (the first node of the job), e.g. "
                'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
                key="--launcher",
            )
        init_method = f"tcp://{addr}:{int(environ.get('MASTER_PORT') or port or DEFAULT_PORT)}"
    return {"rank": rank, "world_size": world_size, "local_rank": local_rank, "init_method": init_method}


def check_dist_params(params: Any, file: Optional[str] = None) -> Dict[str, Any]:
    """Validate the ``dist_params`` section (BasicSR's key): ``backend`` (nccl | gloo) and ``port``.

    Args:
        params: The option value (None or a mapping).
        file: Option file, for error messages.

    Returns:
        ``{"backend": str or None, "port": int or None}``.
    """
    if params is None:
        return {"backend": None, "port": None}
    if not isinstance(params, dict):
        raise OptionError("must be a section with 'backend' and/or 'port'", file, "dist_params")
    unknown = sorted(set(params) - {"backend", "port"})
    if unknown:
        raise OptionError(f"unknown key '{unknown[0]}' (known: backend, port)", file, f"dist_params.{unknown[0]}")
    backend, port = params.get("backend"), params.get("port")
    if backend is not None and backend not in BACKENDS:
        raise OptionError(f"must be one of {', '.join(BACKENDS)}, got {backend!r}", file, "dist_params.backend")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536):
        raise OptionError(f"must be a TCP port number, got {port!r}", file, "dist_params.port")
    return {"backend": backend, "port": port}


def init_dist(
    launcher: str,
    num_gpu: Any,
    dist_params: Any = None,
    file: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> DistContext:
    """Pick this process's device and, under a launcher, join the process group (nccl on GPU, gloo on CPU).

    Args:
        launcher: ``none`` (one process), ``pytorch`` (torchrun) or ``slurm`` (srun, one task per GPU).
        num_gpu: The ``num_gpu`` option: ``auto`` (CUDA when available), 0 (CPU) or a count (needs CUDA).
        dist_params: The ``dist_params`` option (``backend``, ``port``).
        file: Option file, for error messages.
        environ: Environment variables (default ``os.environ``).

    Returns:
        The process's :class:`DistContext`.
    """
    from mcir.cli import select_device

    environ = os.environ if environ is None else environ
    params = check_dist_params(dist_params, file)
    device = select_device(num_gpu, file)
    if launcher == "none":
        world = environ.get("WORLD_SIZE", "1").strip()
        if world.isdigit() and int(world) > 1:
            raise OptionError(
                f"started as one of {environ['WORLD_SIZE']} processes (torchrun?) but without a launcher; "
                "add '--launcher pytorch'",
                key="--launcher",
            )
        return DistContext(device=device)
    ranks = rank_variables(launcher, environ, params["port"])
    if device.type == "cuda":
        if ranks["local_rank"] >= torch.cuda.device_count():
            raise OptionError(
                f"local rank {ranks['local_rank']} has no GPU (this node has {torch.cuda.device_count()}); "
                "start at most one process per GPU",
                key="--launcher",
            )
        device = torch.device("cuda", ranks["local_rank"])
        torch.cuda.set_device(device)
    backend = params["backend"] or ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise OptionError("the nccl backend needs GPUs; use gloo (or remove it) for CPU training", file,
                          "dist_params.backend")
    kwargs: Dict[str, Any] = {}
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(
        backend,
        init_method=ranks["init_method"],
        rank=ranks["rank"],
        world_size=ranks["world_size"],
        timeout=COLLECTIVE_TIMEOUT,
        **kwargs,
    )
    return DistContext(ranks["rank"], ranks["local_rank"], ranks["world_size"], device, backend)


def shutdown(ctx: DistContext, wait: bool = True) -> None:
    """Leave the process group (no-op without one).

    Args:
        ctx: This process's context.
        wait: Meet the other ranks at a barrier first, so that every rank returns only once rank 0 has
            written its last files (False after an error, when the others may never arrive).
    """
    if ctx.distributed and dist.is_initialized():
        if wait:
            barrier()
        dist.destroy_process_group()


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


def distribute_model(model: Any, ctx: DistContext, find_unused_parameters: bool = False) -> None:
    """Make a model ready for data-parallel training: same start on every rank, target in DDP.

    Broadcasts rank 0's copy of every replicated module (target, EMA, negatives, frozen loss networks),
    so their random initialisation does not have to match across ranks, then wraps the target in
    :class:`~torch.nn.parallel.DistributedDataParallel` for the forward/backward of training. The EMA, the
    negative bank, checkpoints and validation keep using the plain module.

    Args:
        model: A model with ``replicated_modules()`` and ``distribute(wrapper)`` (see ``RestorationModel``).
        ctx: This process's context (no-op without a process group).
        find_unused_parameters: Let DDP handle networks whose forward leaves some parameters unused.
    """
    if not ctx.distributed:
        return
    from torch.nn.parallel import DistributedDataParallel

    broadcast_modules(model.replicated_modules())
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    model.distribute(
        lambda net: DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
    )
