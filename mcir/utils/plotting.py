"""Matplotlib helpers for the figure scripts: a headless backend and atomic PNG writes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Union


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
