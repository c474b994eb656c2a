"""Atomic checkpoint files: network weights (BasicSR ``params`` / ``params_ema``) and training states."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from mcir.errors import CheckpointError
from mcir.utils.atomic import atomic_write

WEIGHT_CONTAINER_KEYS = ("params", "params_ema", "state_dict", "model", "net", "network")


def atomic_save(obj: Any, path: str) -> None:
    """``torch.save`` to ``path`` atomically (temp file + fsync + rename).

    Args:
        obj: Anything ``torch.save`` accepts.
        path: Destination.
    """
    atomic_write(path, lambda f: torch.save(obj, f))


def torch_load(path: str, trusted: bool = False) -> Any:
    """Load a checkpoint with ``weights_only=True`` (safe unpickling), reporting problems as CheckpointError.

    Args:
        path: File to read.
        trusted: Allow full unpickling (only for files the user trusts).

    Returns:
        The loaded object.
    """
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot load checkpoint ({first})") from exc


def unwrap_state_dict(obj: Any, param_key: Optional[str] = "params", path: str = "") -> Dict[str, torch.Tensor]:
    """Find the network state dict inside a checkpoint container and strip ``module.`` prefixes.

    Args:
        obj: Loaded checkpoint: a state dict, or a dict holding one under ``param_key`` or a common key.
        param_key: Preferred container key (BasicSR: ``params`` or ``params_ema``).
        path: File name for error messages.

    Returns:
        A flat ``{name: tensor}`` state dict.
    """
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a state dict (got {type(obj).__name__})")
    if param_key and param_key in obj and isinstance(obj[param_key], dict):
        obj = obj[param_key]
    elif not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in WEIGHT_CONTAINER_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        else:
            raise CheckpointError(f"{path}: no weights found under '{param_key}' (keys: {', '.join(map(str, obj))})")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def load_network_weights(net: nn.Module, path: str, param_key: Optional[str] = "params", strict: bool = True) -> None:
    """Load weights into ``net`` from a file (BasicSR ``params``/``params_ema`` or a plain state dict).

    Args:
        net: Network to fill.
        path: Weights file.
        param_key: Container key to prefer.
        strict: Require an exact key match.
    """
    state = unwrap_state_dict(torch_load(path), param_key, path)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if mismatched:
        k = mismatched[0]
        raise CheckpointError(
            f"{path}: shape mismatch for '{k}': file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        )
    if strict and (missing or unexpected):
        raise CheckpointError(
            f"{path}: keys do not match the network (missing: {missing[:3]}{'...' if len(missing) > 3 else ''}; "
            f"unexpected: {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})"
        )
    net.load_state_dict(state, strict=strict)


_STATE_RE = re.compile(r"^(\d+)\.state$")


class Checkpointer:
    """Saves weights (``models/net_g_<iter>.pth``) and training states (``training_states/<iter>.state``).

    Args:
        models_dir: Folder for weights files.
        states_dir: Folder for training states.
        keep_last: How many training states to keep (older ones are deleted); weights are all kept.
    """

    def __init__(self, models_dir: str, states_dir: str, keep_last: int = 3):
        self.models_dir = Path(models_dir)
        self.states_dir = Path(states_dir)
        self.keep_last = keep_last

    def save(self, iteration: int, weights: Dict[str, Dict[str, torch.Tensor]], state: Dict[str, Any]) -> None:
        """Write weights then the training state for ``iteration`` (each atomically).

        Args:
            iteration: Current iteration.
            weights: ``{'params': ..., 'params_ema': ...}``.
            state: Full training state (model, optimizer, scheduler, RNG, iteration).
        """
        atomic_save(weights, str(self.models_dir / f"net_g_{iteration}.pth"))
        atomic_save(state, str(self.states_dir / f"{iteration}.state"))
        for old in self.list_states()[: -self.keep_last or None] if self.keep_last > 0 else []:
            old.unlink(missing_ok=True)

    def save_latest_weights(self, weights: Dict[str, Dict[str, torch.Tensor]]) -> None:
        """Write ``models/net_g_latest.pth``."""
        atomic_save(weights, str(self.models_dir / "net_g_latest.pth"))

    def list_states(self) -> List[Path]:
        """Training states in iteration order."""
        if not self.states_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.states_dir.iterdir() if (m := _STATE_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest_state(self) -> Optional[Path]:
        """The newest training state, or None."""
        states = self.list_states()
        return states[-1] if states else None
