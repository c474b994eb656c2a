"""Detect bad training steps: a non-finite loss, or a reconstruction loss exploding above its running level."""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from mcir.errors import OptionError


class StepGuard:
    """Judges each step and counts bad ones in a row.

    A step is ``non-finite`` when the total loss is NaN/inf, and ``exploding`` when the reconstruction loss
    exceeds ``explode_factor`` × its running mean over recent good steps (EMA with factor 0.9); for a
    negative running mean the threshold is ``mean + (explode_factor − 1)·|mean|``.

    Args:
        explode_factor: Threshold relative to the running reconstruction loss.
        patience: Bad steps in a row before the model restores its last good state.
        on_collapse: ``halve`` (halve λ and go on) or ``stop`` (stop with a clear message).
        snapshot_freq: Keep an in-memory copy of the state every this many good iterations.
    """

    def __init__(self, explode_factor: float = 10.0, patience: int = 3, on_collapse: str = "halve",
                 snapshot_freq: int = 100):
        if explode_factor <= 1:
            raise OptionError(f"must be > 1, got {explode_factor}", key="train.neg_guard.explode_factor")
        if patience < 1:
            raise OptionError(f"must be >= 1, got {patience}", key="train.neg_guard.patience")
        self.explode_factor = float(explode_factor)
        self.patience = int(patience)
        self.on_collapse = on_collapse
        self.snapshot_freq = max(1, int(snapshot_freq))
        self.rec_level: Optional[float] = None
        self.bad_in_a_row = 0

    def check(self, total: torch.Tensor, l_rec: torch.Tensor) -> str:
        """``ok``, ``non-finite`` or ``exploding``; updates the running level on good steps."""
        rec = float(l_rec)
        if not (torch.isfinite(total).item() and torch.isfinite(l_rec).item()):
            verdict = "non-finite"
        # level + (factor − 1)·|level| is factor × level for positive losses and stays meaningful for
        # losses that are negative by design (PSNRLoss is −PSNR), where factor × level would flag every step.
        elif self.rec_level is not None and rec > self.rec_level + (self.explode_factor - 1) * abs(self.rec_level):
            verdict = "exploding"
        else:
            self.rec_level = rec if self.rec_level is None else 0.9 * self.rec_level + 0.1 * rec
            self.bad_in_a_row = 0
            return "ok"
        self.bad_in_a_row += 1
        return verdict

    def snapshot_due(self, iteration: int) -> bool:
        """Whether the model should refresh its in-memory last good state at this iteration."""
        return iteration % self.snapshot_freq == 0

    def reset(self) -> None:
        """Forget the bad streak (after a restore)."""
        self.bad_in_a_row = 0

    def state_dict(self) -> Dict[str, Any]:
        """Running level and streak, for exact resume."""
        return {"rec_level": self.rec_level, "bad_in_a_row": self.bad_in_a_row}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rec_level = state["rec_level"]
        self.bad_in_a_row = int(state["bad_in_a_row"])
