"""Shared test fixtures: paths to bundled and shared data, tiny option trees, and the scripts as modules."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "datasets"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real benchmark images); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


def _short_run_args(opt: Path, root: Path, name: str, *extra: str) -> list:
    """CLI arguments for a seconds-long run of a demo option file on the bundled images.

    Args:
        opt: Option file (the plain or +SPN demo).
        root: Folder the run folder goes into.
        name: Run name.
        extra: More ``key=value`` overrides (applied last, so they win).

    Returns:
        Arguments for ``mcir.train.main``.
    """
    sets = [
        f"name={name}",
        f"path.experiments_root={root / name}",
        f"datasets.train.dataroot_gt={BUNDLED / 'T91/HR'}",
        f"datasets.val.dataroot_gt={BUNDLED / 'Set5/HR'}",
        f"datasets.val.dataroot_lq={BUNDLED / 'Set5/LR_bicubic/X4'}",
        "datasets.train.gt_size=32",
        "network_g.num_feat=8",
        "network_g.num_block=1",
        "train.total_iter=6",
        "train.warmup_iter=2",
        "train.scheduler.periods=[6]",
        "logger.print_freq=2",
        "logger.save_checkpoint_freq=3",
        "logger.use_tb_logger=false",
        "num_gpu=0",
        *extra,
    ]
    args = ["-opt", str(opt)]
    for s in sets:
        args += ["--set", s]
    return args


@pytest.fixture(scope="session")
def short_run_args():
    """``short_run_args(opt, root, name, *overrides)``: arguments for a seconds-long training run."""
    return _short_run_args


def _load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_script():
    """``load_script(name)``: a fresh import of ``scripts/<name>.py``, to call its ``main(argv)`` in process."""
    return _load_script


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_rank(rank: int, world: int, port: int, target: Callable[..., Any], args: tuple) -> None:
    """Entry of a spawned rank: the environment torchrun would set, one thread, then ``target(rank, *args)``."""
    import torch

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    target(rank, *args)


@pytest.fixture
def free_port():
    """``free_port()``: a TCP port that was free a moment ago (for one more rendezvous in spawned ranks)."""
    return _free_port


@pytest.fixture
def spawn_ranks():
    """``spawn_ranks(target, world, *args)``: run ``target(rank, *args)`` in ``world`` fresh processes, as
    torchrun would start them (``--launcher pytorch`` works inside), and re-raise a rank's failure."""
    import torch.multiprocessing as mp

    def spawn(target: Callable[..., Any], world: int, *args: Any) -> None:
        mp.spawn(_run_rank, args=(world, _free_port(), target, args), nprocs=world, join=True)

    return spawn


def _make_step(model: Any, lr: float = 1e-3, accumulate: int = 1, guard: Any = None, ema_decay: float = 0.0,
               channels_last: bool = False, amp: str = "off", optimizer: Any = None) -> Any:
    """A CPU :class:`~mcir.engine.train_step.TrainStep` with Adam around a task model (see ``make_step``)."""
    import torch

    from mcir.core.averaged_model import AveragedModel
    from mcir.core.optim_step import OptimStep
    from mcir.engine.train_step import TrainStep

    params = list(model.net_g.parameters())
    opt = optimizer or torch.optim.Adam(params, lr=lr)
    ema = AveragedModel(model.net_g, decay=ema_decay) if ema_decay > 0 else None
    optim = OptimStep(opt, params, amp=amp, accumulate_steps=accumulate)
    return TrainStep(model, optim, torch.device("cpu"), ema=ema, guard=guard, channels_last=channels_last)


@pytest.fixture(scope="session")
def make_step():
    """``make_step(model, lr=1e-3, accumulate=1, guard=None, ema_decay=0, channels_last=False, amp='off')``:
    a CPU training step (Adam) around a task model; call it as ``step(batch, iteration)``."""
    return _make_step
