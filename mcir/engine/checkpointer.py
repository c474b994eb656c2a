"""Checkpoint files of a run folder: weights per iteration, the last k training states, the best weights."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from mcir.core.checkpoint_io import UnsafeCheckpointError, atomic_save, digest_path, load_training_state
from mcir.errors import CheckpointError
from mcir.utils.atomic import atomic_write_text

_STATE_RE = re.compile(r"^(\d+)\.state$")
_PARTIAL_RE = re.compile(r"^\..+\.tmp$")  # atomic_write's temporary names

Warn = Callable[[str], None]


class Checkpointer:
    """Saves weights (``models/net_g_<iter>.pth``), training states (``training_states/<iter>.state``) and the
    best weights per validation set (``models/net_g_best_<set>.pth`` + ``models/best.json``), each with a
    sha256 sidecar.

    Args:
        models_dir: Folder for weights files.
        states_dir: Folder for training states.
        keep_last: How many training states to keep (older ones are deleted); weights are all kept.
    """

    def __init__(self, models_dir: str, states_dir: str, keep_last: int = 3):
        self.models_dir = Path(models_dir)
        self.states_dir = Path(states_dir)
        self.keep_last = keep_last

    def save(self, iteration: int, weights: Dict[str, Dict[str, torch.Tensor]], state: Dict[str, Any]) -> Path:
        """Write weights then the training state for ``iteration`` (each atomically), then prune old states.

        Args:
            iteration: Current iteration.
            weights: ``{'params': ..., 'params_ema': ...}``.
            state: Full training state (model, optimizer, scheduler, RNG, iteration).

        Returns:
            The training state's path.
        """
        atomic_save(weights, str(self.models_dir / f"net_g_{iteration}.pth"), digest=True)
        path = self.states_dir / f"{iteration}.state"
        atomic_save(state, str(path), digest=True)
        for old in self.list_states()[: -self.keep_last or None] if self.keep_last > 0 else []:
            old.unlink(missing_ok=True)
            digest_path(str(old)).unlink(missing_ok=True)
        return path

    def save_latest_weights(self, weights: Dict[str, Dict[str, torch.Tensor]]) -> None:
        """Write ``models/net_g_latest.pth``."""
        atomic_save(weights, str(self.models_dir / "net_g_latest.pth"), digest=True)

    def save_best(self, dataset: str, record: Dict[str, Any], weights: Dict[str, Dict[str, torch.Tensor]]) -> Path:
        """Write the best weights of one validation set and update ``models/best.json``.

        Args:
            dataset: Validation set name.
            record: What made them best (``metric``, ``better``, ``value``, ``iter``).
            weights: The weights to keep.

        Returns:
            The weights file written.
        """
        path = self.models_dir / f"net_g_best_{re.sub(r'[^A-Za-z0-9_.-]', '_', dataset)}.pth"
        atomic_save(weights, str(path), digest=True)
        index = self.models_dir / "best.json"
        try:
            table = json.loads(index.read_text(encoding="utf-8")) if index.is_file() else {}
        except (OSError, ValueError):
            table = {}  # a damaged index is rebuilt from the records that follow
        table[dataset] = {**record, "file": path.name}
        atomic_write_text(json.dumps(table, indent=2) + "\n", index)
        return path

    def list_states(self) -> List[Path]:
        """Training states in iteration order."""
        if not self.states_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.states_dir.iterdir() if (m := _STATE_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def remove_partial_writes(self) -> List[Path]:
        """Delete temporary files that a killed process left mid-write (``.<name>.<random>.tmp``).

        Only call this while no other process writes into the run folder (at start-up).

        Returns:
            The files removed.
        """
        removed = []
        for folder in (self.models_dir, self.states_dir):
            if folder.is_dir():
                for p in folder.iterdir():
                    if _PARTIAL_RE.match(p.name):
                        p.unlink(missing_ok=True)
                        removed.append(p)
        return removed

    def newest_good_state(self, trusted: bool = False, warn: Optional[Warn] = None) -> Optional[Tuple[Path, Dict]]:
        """Load the newest training state that passes the checks; move damaged newer ones aside.

        A state that fails (sha256 mismatch, truncated, not a training state) is renamed to
        ``<iter>.state.corrupt`` (kept for inspection, no longer a candidate) and reported through ``warn``.
        A refused unsafe file is not a damaged one: that error is raised.

        Args:
            trusted: Allow full unpickling.
            warn: Receives one message per state set aside.

        Returns:
            ``(path, state)``, or None when no state is usable.
        """
        for path in reversed(self.list_states()):
            try:
                return path, load_training_state(str(path), trusted)
            except UnsafeCheckpointError:
                raise
            except CheckpointError as exc:
                aside = path.with_name(path.name + ".corrupt")
                path.replace(aside)
                sidecar = digest_path(str(path))
                if sidecar.is_file():
                    sidecar.replace(digest_path(str(aside)))
                if warn is not None:
                    warn(f"{exc}; moved it to {aside.name} and trying the previous training state")
        return None
