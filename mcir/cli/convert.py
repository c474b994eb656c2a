"""Turn downloaded checkpoints into mcir weights files: unwrap containers, strip prefixes, check a strict load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from mcir.core.checkpoint_io import Extracted, atomic_save, extract_state_dict, torch_load
from mcir.errors import CheckpointError

_MAX_LISTED = 20


class KeyMismatchError(CheckpointError):
    """A state dict that does not load strictly; ``details`` has one line per offending key.

    Args:
        message: One-line summary.
        details: Lines naming the missing, unexpected and mis-shaped keys.
    """

    def __init__(self, message: str, details: List[str]):
        super().__init__(message)
        self.details = details


@dataclass
class KeyReport:
    """How a state dict's keys compare with a network's.

    Attributes:
        missing: Network keys absent from the file.
        unexpected: File keys the network does not have.
        mismatched: ``(key, file shape, network shape)`` for keys present in both with different shapes.
    """

    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether a strict load would succeed."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """``3 missing, 1 unexpected, 0 mis-shaped keys``."""
        return f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, {len(self.mismatched)} mis-shaped keys"

    def lines(self) -> List[str]:
        """One line per offending key (at most 20 per kind), plus a hint for shift-mask shapes."""
        out: List[str] = []
        for kind, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            out += [f"  {kind}: {k}" for k in keys[:_MAX_LISTED]]
            if len(keys) > _MAX_LISTED:
                out.append(f"  ... and {len(keys) - _MAX_LISTED} more {kind} keys")
        out += [f"  shape: {k}: file {list(a)} vs network {list(b)}" for k, a, b in self.mismatched[:_MAX_LISTED]]
        if len(self.mismatched) > _MAX_LISTED:
            out.append(f"  ... and {len(self.mismatched) - _MAX_LISTED} more mis-shaped keys")
        if any(k.endswith("attn_mask") for k, _, _ in self.mismatched):
            out.append("  hint: attn_mask shapes follow img_size; set it to the patch size the file was built with")
        return out


def compare_keys(net: nn.Module, state: Dict[str, torch.Tensor]) -> KeyReport:
    """Compare a state dict's keys and shapes with ``net.state_dict()``.

    Args:
        net: Network the weights are meant for.
        state: Flat state dict.

    Returns:
        The differences.
    """
    own = net.state_dict()
    return KeyReport(
        missing=[k for k in own if k not in state],
        unexpected=[k for k in state if k not in own],
        mismatched=[
            (k, tuple(state[k].shape), tuple(own[k].shape))
            for k in own
            if k in state and tuple(state[k].shape) != tuple(own[k].shape)
        ],
    )


def load_strict(net: nn.Module, state: Dict[str, torch.Tensor], path: str = "") -> None:
    """Load ``state`` into ``net`` with ``strict=True``, explaining every key that prevents it.

    Args:
        net: Network to fill.
        state: Flat state dict.
        path: File name for error messages.

    Raises:
        KeyMismatchError: Missing, unexpected or mis-shaped keys (listed in ``details``).
    """
    report = compare_keys(net, state)
    if not report.ok:
        raise KeyMismatchError(
            f"{path}: does not load strictly into {type(net).__name__}: {report.summary()}", report.lines()
        )
    net.load_state_dict(state, strict=True)


def convert_checkpoint(
    src: str,
    dst: str,
    param_key: Optional[str] = None,
    net: Optional[nn.Module] = None,
    trusted: bool = False,
    overwrite: bool = False,
    report: Optional[Callable[[str], None]] = None,
) -> Extracted:
    """Read a checkpoint, extract its weights, optionally check them against ``net``, write ``{"params": ...}``.

    Args:
        src: Downloaded checkpoint.
        dst: mcir weights file to write (atomically).
        param_key: Container to take (default: automatic, see :func:`extract_state_dict`).
        net: Network the weights must load into strictly (no check when None).
        trusted: Allow full unpickling of ``src`` (only for files you trust).
        overwrite: Replace an existing ``dst``.
        report: Called with each action line as it happens (they are also returned).

    Returns:
        The extracted weights and the actions taken (``wrote ...`` last).

    Raises:
        CheckpointError: Unreadable input, no weights, an existing ``dst`` or one that cannot be written.
        KeyMismatchError: The weights do not load strictly into ``net``.
    """
    say = report or (lambda line: None)
    if Path(dst).exists() and not overwrite:
        raise CheckpointError(f"{dst}: already exists (use --force to replace it)")
    if Path(src).exists() and Path(dst).resolve() == Path(src).resolve():
        raise CheckpointError(f"{dst}: output and input are the same file")
    try:
        obj = torch_load(src, trusted=trusted)
    except CheckpointError as exc:
        if trusted or "unsupported global" not in str(exc.__cause__).lower():
            raise
        # Official training scripts often pickle extra objects (NumPy scalars, optimizers) next to the weights.
        raise CheckpointError(
            f"{src}: holds pickled objects besides tensors; pass --trusted to unpickle it fully (only if you trust it)"
        ) from exc
    extracted = extract_state_dict(obj, param_key, src)
    for line in extracted.actions:
        say(line)

    def act(line: str) -> None:
        extracted.actions.append(line)
        say(line)

    if net is not None:
        load_strict(net, extracted.state, src)
        act(f"checked: loads strictly into {type(net).__name__} ({len(extracted.state)} tensors)")
    try:
        atomic_save({"params": extracted.state}, dst)
    except OSError as exc:
        raise CheckpointError(f"{dst}: cannot write ({exc.strerror or exc})") from exc
    act(f"wrote {dst} ({{'params': {len(extracted.state)} tensors}})")
    return extracted
