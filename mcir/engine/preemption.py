"""Pre-emption: SIGTERM stops training at a safe point, with a saved state and exit status 143."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Optional

import torch

from mcir.core.dist import get_world_size, mean_across_ranks
from mcir.errors import StopTraining


class TrainingPreempted(StopTraining):
    """SIGTERM (pre-emption) arrived: the state of the last finished iteration is saved, the run stops.

    The process exits with 143 (128 + SIGTERM), the conventional status of a job ended by SIGTERM, so that
    schedulers and wrapper scripts see an unfinished run and requeue it (``--auto_resume`` continues it).
    """

    exit_code = 143


class SignalFlag:
    """Between :meth:`install` and :meth:`restore`, a signal only sets :attr:`received`, so the loop can stop
    at a safe point. Signals can only be handled on the main thread; elsewhere nothing changes.

    Args:
        signum: The signal to catch.
    """

    def __init__(self, signum: int):
        self.signum = signum
        self.received = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        self.received = True

    def install(self) -> "SignalFlag":
        """Start catching the signal; returns self."""
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(self.signum, self._handle)
            self._installed = True
        return self

    def restore(self) -> None:
        """Put the previous handler back."""
        if self._installed:
            # None: the previous handler was not set from Python; the default is the closest equivalent.
            signal.signal(self.signum, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False


def stop_requested(local: bool) -> bool:
    """Whether any rank received SIGTERM, so every rank saves and stops at the same iteration."""
    if get_world_size() == 1:
        return local
    return bool(mean_across_ranks(torch.tensor([1.0 if local else 0.0], dtype=torch.float64)).item() > 0)
