"""Shared test fixtures: paths to bundled and shared data, and tiny option trees."""

from __future__ import annotations

from pathlib import Path

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
