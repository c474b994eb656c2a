"""Process setup: the device, and (under torchrun or SLURM) the process group and the DDP wrapping."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import torch
import torch.distributed as dist

from mcir.core.dist import barrier, broadcast_modules
from mcir.errors import OptionError

LAUNCHERS = ("none", "pytorch", "slurm")
DEFAULT_PORT = 29500
# Rank 0 may write a large checkpoint or validation images while the others wait in a collective.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


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


def select_device(num_gpu: Any, file: Optional[str] = None) -> torch.device:
    """Pick the device from the validated ``num_gpu`` option (``auto``, 0, or a count).

    Args:
        num_gpu: The option value.
        file: Option file, for error messages.

    Returns:
        ``cuda`` when requested/available, else ``cpu``.
    """
    if num_gpu == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if num_gpu == 0:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise OptionError(f"asks for {num_gpu} GPU(s) but CUDA is not available; use 0 or auto", file, "num_gpu")
    return torch.device("cuda")


def init_dist(
    launcher: str,
    num_gpu: Any,
    dist_params: Optional[Mapping[str, Any]] = None,
    file: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> DistContext:
    """Pick this process's device and, under a launcher, join the process group (nccl on GPU, gloo on CPU).

    Args:
        launcher: ``none`` (one process), ``pytorch`` (torchrun) or ``slurm`` (srun, one task per GPU).
        num_gpu: The ``num_gpu`` option: ``auto`` (CUDA when available), 0 (CPU) or a count (needs CUDA).
        dist_params: The validated ``dist_params`` option (``backend``, ``port``).
        file: Option file, for error messages.
        environ: Environment variables (default ``os.environ``).

    Returns:
        The process's :class:`DistContext`.
    """
    environ = os.environ if environ is None else environ
    params = {"backend": None, "port": None, **dict(dist_params or {})}
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


def distribute(step: Any, ctx: DistContext, find_unused_parameters: bool = False) -> None:
    """Make a training step ready for data-parallel training: same start on every rank, target in DDP.

    Broadcasts rank 0's copy of every replicated module (target, EMA, negatives, frozen loss networks),
    so their random initialisation does not have to match across ranks, then has the step train through
    :class:`~torch.nn.parallel.DistributedDataParallel`. The EMA, the negatives, checkpoints and validation
    keep using the plain network.

    Args:
        step: A :class:`~mcir.engine.train_step.TrainStep`.
        ctx: This process's context (no-op without a process group).
        find_unused_parameters: Let DDP handle networks whose forward leaves some parameters unused.
    """
    if not ctx.distributed:
        return
    from torch.nn.parallel import DistributedDataParallel

    broadcast_modules(step.replicated_modules())
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    step.distribute(
        lambda net: DistributedDataParallel(net, device_ids=device_ids, find_unused_parameters=find_unused_parameters)
    )
