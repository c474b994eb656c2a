"""The pieces of an option-file translation: a model alias, one change, and the option tree being edited."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional

from mcir.errors import OptionError

ABSENT = object()


@dataclass(frozen=True)
class ModelAlias:
    """A foreign ``model_type`` and the mcir model that trains the same way.

    Args:
        origin: The code base it comes from.
        target: mcir's model type.
        reason: Why the two are equivalent (shown with the change).
        negatives: ``""`` (no negatives), ``"one"`` (scalar neg_iter / neg_decay) or ``"many"`` (lists).
        input_norm: The foreign model normalises the input with the RESIDE mean/std (FFANet's ``input_norm``).
        val_uses_ema: The foreign model validates the EMA copy when there is one.
    """

    origin: str
    target: str
    reason: str
    negatives: str = ""
    input_norm: bool = False
    val_uses_ema: bool = True


@dataclass(frozen=True)
class Change:
    """One edit of the option tree: a value set, a key moved or added, or a key dropped.

    Args:
        key: Dotted key in the original file (or the new key, for an added one).
        action: ``set``, ``move``, ``add`` or ``drop``.
        reason: Why.
        old: The original value (``set``).
        new: The new value (``set``, ``move``, ``add``).
        new_key: Where the value went (``move``).
    """

    key: str
    action: str
    reason: str
    old: Any = None
    new: Any = None
    new_key: Optional[str] = None

    def line(self) -> str:
        """The change as one line of text."""
        if self.action == "drop":
            return f"dropped {self.key}: {self.reason}"
        if self.action == "move":
            value = "" if isinstance(self.new, dict) else f": {show(self.new)}"
            return f"{self.key} -> {self.new_key}{value} ({self.reason})"
        if self.action == "add":
            return f"added {self.key}: {show(self.new)} ({self.reason})"
        return f"{self.key}: {show(self.old)} -> {show(self.new)} ({self.reason})"


def show(value: Any) -> str:
    """``value`` the way a YAML file would show it (on one line)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return "~" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def lookup(tree: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """The value at dotted ``path`` in ``tree``, or ``default``."""
    node: Any = tree
    for k in path.split("."):
        if not isinstance(node, Mapping) or k not in node:
            return default
        node = node[k]
    return node


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


class OptionEdit:
    """The option tree being translated (a deep copy) and the list of changes made to it.

    Args:
        opt: The parsed option file.
        file: Its name, for error messages.
    """

    def __init__(self, opt: Mapping[str, Any], file: Optional[str]):
        self.opt: Dict[str, Any] = copy.deepcopy(dict(opt))
        self.file = file
        self.changes: List[Change] = []

    def get(self, path: str, default: Any = None) -> Any:
        """The value at dotted ``path``, or ``default``."""
        return lookup(self.opt, path, default)

    def has(self, path: str) -> bool:
        """Whether dotted ``path`` is in the tree."""
        return self.get(path, ABSENT) is not ABSENT

    def _section(self, path: str) -> Dict[str, Any]:
        node = self.opt
        for k in [p for p in path.split(".") if p]:
            if not isinstance(node.get(k), dict):
                node[k] = {}
            node = node[k]
        return node

    def set(self, path: str, value: Any, reason: str) -> None:
        """Set (or add) the value at ``path``, recording why."""
        old = self.get(path, ABSENT)
        self._section(_parent(path))[path.rsplit(".", 1)[-1]] = value
        if old is ABSENT:
            self.changes.append(Change(path, "add", reason, new=value))
        else:
            self.changes.append(Change(path, "set", reason, old=old, new=value))

    def pop(self, path: str) -> Any:
        """Remove ``path`` without recording a change (the caller records one); its value, or None."""
        parent = self.get(_parent(path)) if _parent(path) else self.opt
        return parent.pop(path.rsplit(".", 1)[-1], None) if isinstance(parent, dict) else None

    def drop(self, path: str, reason: str) -> None:
        """Remove ``path`` (when present), recording why."""
        if self.has(path):
            self.pop(path)
            self.changes.append(Change(path, "drop", reason))

    def move(self, path: str, new_path: str, reason: str, value: Any = ABSENT) -> None:
        """Move ``path`` to ``new_path`` (optionally with a new value), recording why."""
        old = self.pop(path)
        new = old if value is ABSENT else value
        self._section(_parent(new_path))[new_path.rsplit(".", 1)[-1]] = new
        self.changes.append(Change(path, "move", reason, old=old, new=new, new_key=new_path))

    def fail(self, path: str, message: str) -> OptionError:
        """The error to raise for ``path`` (no mcir equivalent), naming the file and the key."""
        return OptionError(message, file=self.file, key=path)
