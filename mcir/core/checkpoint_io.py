"""Checkpoint I/O: atomic writes with sha256 sidecars, safe loading, and the one way weights are found in a file."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path
from dataclasses import dataclass
from typing import Any, BinaryIO, Dict, List, Optional

import torch
from torch import nn

from mcir.errors import CheckpointError
from mcir.utils.atomic import atomic_write, atomic_write_text

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


#: Keys under which checkpoints keep the weights, in the order they are tried. EMA weights first: where
#: a file holds both, BasicSR's releases and SwinIR's real-world models are evaluated with them.
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "network")
#: Name prefixes added by wrappers: DataParallel / DistributedDataParallel, and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_MAX_DEPTH = 4
# BasicSR loads ``params`` when the requested ``params_ema`` is absent, and the other way round.
_BASICSR_FALLBACK = {"params_ema": "params", "params": "params_ema"}


@dataclass
class Extracted:
    """A flat state dict taken out of a checkpoint, and what was done to get it.

    Attributes:
        state: ``{name: tensor}``.
        actions: One human-readable line per action (container unwrapped, prefix stripped, entry dropped).
    """

    state: Dict[str, torch.Tensor]
    actions: List[str]


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def extract_state_dict(obj: Any, param_key: Optional[str] = None, path: str = "") -> Extracted:
    """Find the network weights in a loaded checkpoint.

    Containers (``params_ema``, ``params``, ``state_dict``, ``model``, ``net``, ``network``; nested ones too)
    are unwrapped, ``module.`` / ``_orig_mod.`` prefixes stripped and non-tensor entries dropped.

    Args:
        obj: What ``torch.load`` returned.
        param_key: Container to take at the top level (default: the first of ``CONTAINER_KEYS`` present).
            When it is absent: ``params`` and ``params_ema`` stand in for each other (as in BasicSR); a file
            with neither (an official release) gives its first ``CONTAINER_KEYS`` container; a plain state
            dict is taken as it is.
        path: File name for error messages.

    Returns:
        The state dict and the list of actions taken.

    Raises:
        CheckpointError: No weights found, the requested container is absent, or stripping a prefix
            would merge two keys.
    """
    actions: List[str] = []
    node, trail = obj, []
    for depth in range(_MAX_DEPTH):
        if not isinstance(node, dict):
            where = f" under '{'.'.join(trail)}'" if trail else ""
            raise CheckpointError(f"{path}: expected a dict of tensors{where}, got {type(node).__name__}")
        dict_keys = [k for k in node if isinstance(node[k], dict)]
        if _is_state_dict(node) and not (depth == 0 and param_key in dict_keys):
            break
        if depth == 0 and param_key:
            key = param_key if param_key in dict_keys else _BASICSR_FALLBACK.get(param_key)
            if key not in dict_keys and not any(k in dict_keys for k in _BASICSR_FALLBACK):
                # not a BasicSR file (an official release's ``state_dict``, ...): take its weights container
                key = next((k for k in CONTAINER_KEYS if k in dict_keys), None)
                if key is None:
                    raise CheckpointError(
                        f"{path}: no weights found (keys: {', '.join(map(str, node)) or 'none'}; "
                        f"expected tensors or one of {', '.join(CONTAINER_KEYS)})"
                    )
            if key not in dict_keys:
                raise CheckpointError(f"{path}: no '{param_key}' in the file (keys: {', '.join(map(str, node))})")
            if key != param_key:
                actions.append(f"no '{param_key}' in the file; took '{key}'")
        else:
            key = next((k for k in CONTAINER_KEYS if k in dict_keys), None)
            if key is None and any(isinstance(v, torch.Tensor) for v in node.values()):
                break  # a state dict with extra entries (an epoch counter, ...); those are dropped below
            if key is None:
                where = f" under '{'.'.join(trail)}'" if trail else ""
                raise CheckpointError(
                    f"{path}: no weights found{where} (keys: {', '.join(map(str, node)) or 'none'}; "
                    f"expected tensors or one of {', '.join(CONTAINER_KEYS)})"
                )
        others = [str(k) for k in CONTAINER_KEYS if k in dict_keys and k != key]
        ignored = [str(k) for k in node if k != key and k not in others]
        notes = [f"also in the file: {', '.join(others)}; choose with --param-key"] if others else []
        notes += [f"ignored: {', '.join(ignored[:5])}{' ...' if len(ignored) > 5 else ''}"] if ignored else []
        trail.append(str(key))
        actions.append(f"unwrapped '{'.'.join(trail)}'" + (f" ({'; '.join(notes)})" if notes else ""))
        node = node[key]
    else:
        raise CheckpointError(f"{path}: no weights found within {_MAX_DEPTH} nested containers")

    dropped = [str(k) for k, v in node.items() if not isinstance(v, torch.Tensor)]
    state = {str(k): v for k, v in node.items() if isinstance(v, torch.Tensor)}
    if dropped:
        listed = ", ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else "")
        actions.append(f"dropped {len(dropped)} non-tensor entries: {listed}")
    for prefix in WRAPPER_PREFIXES:
        hits = [k for k in state if k.startswith(prefix)]
        if not hits:
            continue
        renamed = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
        if len(renamed) != len(state):
            raise CheckpointError(f"{path}: stripping '{prefix}' would merge keys (file has both 'x' and '{prefix}x')")
        state = renamed
        actions.append(f"stripped '{prefix}' from {len(hits)} of {len(state)} keys")
    return Extracted(state, actions)


def unwrap_state_dict(obj: Any, param_key: Optional[str] = None, path: str = "") -> Dict[str, torch.Tensor]:
    """The network weights inside a loaded checkpoint (:func:`extract_state_dict` without the action log)."""
    return extract_state_dict(obj, param_key, path).state


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


