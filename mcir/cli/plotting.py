"""Helpers for the figure scripts: a headless Matplotlib backend, atomic PNG writes, runs read with legend names."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Union

if TYPE_CHECKING:
    from mcir.cli.run_history import RunHistory


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: Union[str, Path], dpi: int = 120) -> None:
    """Render ``fig`` to PNG, write it atomically (never a half-written file), then close the figure.

    Args:
        fig: A matplotlib figure.
        out: Output file (its folder is created).
        dpi: Resolution.
    """
    from mcir.utils.atomic import atomic_write_bytes

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(fig)
    atomic_write_bytes(buf.getvalue(), out)


def add_run_arguments(parser: argparse.ArgumentParser, runs_help: str) -> None:
    """Add the arguments every run-plotting script takes: the runs, ``--out`` and ``--labels`` (see :func:`read_runs`).

    Args:
        parser: The script's parser.
        runs_help: Help text of the positional run paths.
    """
    parser.add_argument("runs", nargs="+", help=runs_help)
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--labels", default=None, help="comma-separated legend names, one per run")


def read_runs(paths: Sequence[Union[str, Path]], labels: Optional[str] = None) -> List["RunHistory"]:
    """Read the runs to plot, named by ``labels`` in the legend when given.

    Args:
        paths: Run folders, ``logs/`` folders or log files (see :func:`mcir.cli.run_history.read_run`).
        labels: The ``--labels`` value: comma-separated names, one per run; None keeps the runs' own names.

    Returns:
        One history per path, in order.
    """
    from mcir.cli.run_history import read_run
    from mcir.errors import MCIRError

    runs = [read_run(Path(p)) for p in paths]
    if labels:
        names = labels.split(",")
        if len(names) != len(runs):
            raise MCIRError(f"--labels has {len(names)} names for {len(runs)} runs")
        for run, name in zip(runs, names):
            run.name = name
    return runs
