"""Checkpoint files: atomic writes with sha256 sidecars, safe loading, weights, training states, best weights.

Weights use BasicSR's ``params`` / ``params_ema`` layout; training states keep the last k, and resuming finds
the newest one that passes the checks.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from mcir.errors import CheckpointError
from mcir.utils.atomic import atomic_write, atomic_write_text

WEIGHT_CONTAINER_KEYS = ("params", "params_ema", "state_dict", "model", "net", "network")
DIGEST_SUFFIX = ".sha256"
STATE_KEYS = ("iteration", "epoch", "batch_in_epoch", "model", "rng")
TRUST_HINT = "path.trust_checkpoint: true or --trust_checkpoint"


class UnsafeCheckpointError(CheckpointError):
    """A file that only full (code-running) unpickling can read, refused without the trust option."""


class _HashingWriter:
    """A write-only file wrapper that feeds everything written through a hash (no second read of the file)."""

    def __init__(self, f: BinaryIO, digest: Any):
        self._f = f
        self._digest = digest

    def write(self, data: Any) -> int:
        self._digest.update(data)
        return self._f.write(data)

    def flush(self) -> None:
        self._f.flush()


def digest_path(path: str) -> Path:
    """The sha256 sidecar of ``path`` (``<path>.sha256``, ``sha256sum -c`` format)."""
    return Path(f"{path}{DIGEST_SUFFIX}")


def atomic_save(obj: Any, path: str, digest: bool = False) -> None:
    """``torch.save`` to ``path`` atomically (temp file + fsync + rename + folder fsync).

    Args:
        obj: Anything ``torch.save`` accepts.
        path: Destination.
        digest: Also write ``<path>.sha256`` so that loading can detect a file damaged after it was written.
            The old sidecar is removed first: a crash in between leaves a complete file without a digest
            (loaded with the structural checks only), never a digest vouching for other content.
    """
    if not digest:
        atomic_write(path, lambda f: torch.save(obj, f))
        return
    sidecar = digest_path(path)
    sidecar.unlink(missing_ok=True)
    h = hashlib.sha256()
    atomic_write(path, lambda f: torch.save(obj, _HashingWriter(f, h)))
    atomic_write_text(f"{h.hexdigest()}  {Path(path).name}\n", sidecar)


def verify_digest(path: str) -> Optional[bool]:
    """Check ``path`` against its sha256 sidecar.

    Args:
        path: File to check.

    Returns:
        True when it matches, None when there is no sidecar.

    Raises:
        CheckpointError: The content does not match (truncated or damaged), or the sidecar is unreadable.
    """
    sidecar = digest_path(path)
    if not sidecar.is_file():
        return None
    try:
        expected = sidecar.read_text(encoding="ascii").split()[0].lower()
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        raise CheckpointError(f"{path}: unreadable checksum file {sidecar.name}") from exc
    with open(path, "rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual != expected:
        raise CheckpointError(f"{path}: sha256 mismatch with {sidecar.name} (truncated or damaged since it was saved)")
    return True


def torch_load(path: str, trusted: bool = False) -> Any:
    """Load a checkpoint with ``weights_only=True`` (safe unpickling), reporting problems as CheckpointError.

    The file is first checked against its sha256 sidecar when it has one. A file that holds pickled Python
    objects beyond tensors and plain containers is refused unless ``trusted`` (unpickling can run code).

    Args:
        path: File to read.
        trusted: Allow full unpickling (only for files the user trusts).

    Returns:
        The loaded object.
    """
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: file not found")
    verify_digest(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if not trusted and (unsafe or "allowlist" in str(exc)):
            what = f" ({unsafe.group(1)})" if unsafe else ""
            raise UnsafeCheckpointError(
                f"{path}: refused: it holds pickled Python objects{what} that only full unpickling can read, "
                f"and unpickling a file can run arbitrary code; if you trust where it comes from, set {TRUST_HINT}"
            ) from exc
        raise CheckpointError(f"{path}: cannot load checkpoint ({_reason(exc)})") from exc
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt files
        raise CheckpointError(f"{path}: cannot load checkpoint ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    """The informative part of a torch.load error, on one line."""
    text = str(exc).strip()
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    first = text.splitlines()[0].strip() if text else ""
    return first or type(exc).__name__


def load_training_state(path: str, trusted: bool = False) -> Dict[str, Any]:
    """Load and check an mcir training state (digest, safe unpickling, required keys).

    Args:
        path: ``training_states/<iter>.state`` or any file written by ``Trainer.training_state``.
        trusted: Allow full unpickling.

    Returns:
        The state dict.
    """
    state = torch_load(path, trusted)
    missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path}: not an mcir training state (missing: {', '.join(missing)})")
    return state


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


def load_network_weights(
    net: nn.Module, path: str, param_key: Optional[str] = "params", strict: bool = True, trusted: bool = False
) -> None:
    """Load weights into ``net`` from a file (BasicSR ``params``/``params_ema`` or a plain state dict).

    Args:
        net: Network to fill.
        path: Weights file.
        param_key: Container key to prefer.
        strict: Require an exact key match.
        trusted: Allow full unpickling (see :func:`torch_load`).
    """
    state = unwrap_state_dict(torch_load(path, trusted), param_key, path)
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

    def latest_state(self) -> Optional[Path]:
        """The newest training state, or None."""
        states = self.list_states()
        return states[-1] if states else None

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
