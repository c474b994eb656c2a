"""Watch every training step: a non-finite loss, or a reconstruction loss exploding above its running level.

The default action only watches (the paper's runs have no guard, so a +SPN run must differ from its baseline
by the SPN term alone): suspicious steps are logged and counted, and a non-finite loss stops the run with a
clear message. ``skip``, ``halve`` and ``stop`` act on bad steps; any model can use them, so a baseline and
its +SPN twin can be guarded alike.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from mcir.errors import StopTraining

ACTIONS = ("watch", "skip", "halve", "stop")


class LossNotFinite(StopTraining):
    """The loss became NaN or infinite (the trainer saves a state first)."""


class TrainingCollapsed(StopTraining):
    """Training kept producing bad steps and the guard was told to stop."""


class StepGuard:
    """Judges each step and counts bad ones in a row.

    A step is ``non-finite`` when the total or the reconstruction loss is NaN/inf, and ``exploding`` when
    the reconstruction loss exceeds ``explode_factor`` × its running level (EMA with factor 0.9; for a
    negative level the threshold is ``level + (explode_factor − 1)·|level|``).

    Args:
        action: ``watch`` (log and count; stop on a non-finite loss), ``skip`` (skip bad steps; after
            ``patience`` in a row restore the last good state), ``halve`` (as skip, then halve λ), ``stop``
            (as skip, then stop with a clear message).
        explode_factor: Threshold relative to the running reconstruction loss (> 1).
        patience: Bad steps in a row before restoring.
        snapshot_freq: With an acting guard, keep an in-memory copy of the state every this many good steps.
    """

    def __init__(self, action: str = "watch", explode_factor: float = 10.0, patience: int = 3, snapshot_freq: int = 100):
        if action not in ACTIONS or explode_factor <= 1 or patience < 1 or snapshot_freq < 1:
            raise ValueError(f"bad guard: {action=}, {explode_factor=}, {patience=}, {snapshot_freq=}")
        self.action = action
        self.explode_factor = float(explode_factor)
        self.patience = int(patience)
        self.snapshot_freq = int(snapshot_freq)
        self.rec_level: Optional[float] = None
        self.bad_in_a_row = 0
        self.suspicious = 0

    @property
    def acts(self) -> bool:
        """Whether bad steps are skipped (every action but ``watch``)."""
        return self.action != "watch"

    def check(self, total: torch.Tensor, l_rec: torch.Tensor) -> str:
        """``ok``, ``non-finite`` or ``exploding``; updates the running level and the counters.

        A watching guard follows the level through suspicious finite steps too (the run takes them), so a
        legitimate jump is flagged once, not forever.
        """
        rec = float(l_rec)
        if not (torch.isfinite(total).item() and torch.isfinite(l_rec).item()):
            verdict = "non-finite"
        elif self.rec_level is not None and rec > self.rec_level + (self.explode_factor - 1) * abs(self.rec_level):
            verdict = "exploding"
        else:
            verdict = "ok"
        if verdict == "ok" or (verdict == "exploding" and not self.acts):
            self.rec_level = rec if self.rec_level is None else 0.9 * self.rec_level + 0.1 * rec
        if verdict == "ok":
            self.bad_in_a_row = 0
        else:
            self.bad_in_a_row += 1
            self.suspicious += 1
        return verdict

    def snapshot_due(self, iteration: int) -> bool:
        """Whether an acting guard should refresh its last good state at this iteration."""
        return self.acts and self.bad_in_a_row == 0 and iteration % self.snapshot_freq == 0

    def state_dict(self) -> Dict[str, Any]:
        """Running level and counters, for exact resume."""
        return {"rec_level": self.rec_level, "bad_in_a_row": self.bad_in_a_row, "suspicious": self.suspicious}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.rec_level = state["rec_level"]
        self.bad_in_a_row = int(state["bad_in_a_row"])
        self.suspicious = int(state.get("suspicious", 0))
