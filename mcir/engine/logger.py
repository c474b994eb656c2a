"""Run logging: a log file plus console, TensorBoard scalars/images, and a tqdm progress bar."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Dict, Optional

import numpy as np


def get_run_logger(name: str, log_file: Optional[str] = None, level: int = logging.INFO) -> logging.Logger:
    """A logger writing to the console and, when given, to ``log_file``.

    Args:
        name: Logger name (one per run, so several runs in one process do not share handlers).
        log_file: Path of the log file.
        level: Logging level.

    Returns:
        The configured logger.
    """
    logger = logging.getLogger(f"mcir.{name}")
    logger.setLevel(level)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(fmt)
    logger.addHandler(console)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    return logger


def close_logger(logger: logging.Logger) -> None:
    """Flush and detach every handler of ``logger``."""
    for h in list(logger.handlers):
        h.flush()
        h.close()
        logger.removeHandler(h)


class TensorBoardWriter:
    """Thin wrapper over ``SummaryWriter`` that is a no-op when disabled.

    Args:
        log_dir: Event-file folder, or None to disable.
    """

    def __init__(self, log_dir: Optional[str]):
        self._writer = None
        if log_dir:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=log_dir)

    def scalars(self, values: Dict[str, float], step: int, prefix: str = "") -> None:
        """Log ``{tag: value}`` scalars."""
        if self._writer is not None:
            for k, v in values.items():
                self._writer.add_scalar(f"{prefix}{k}", v, step)

    def image(self, tag: str, img_hwc_bgr: np.ndarray, step: int) -> None:
        """Log a BGR uint8 image."""
        if self._writer is not None:
            self._writer.add_image(tag, img_hwc_bgr[..., ::-1].copy(), step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
