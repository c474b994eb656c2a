"""Check one option value against a type annotation (``int``, ``Sequence[float]``, ``Literal[...]``, ranges).

The annotations are those of the registered constructors' signatures and of mcir's core schema; the message
of a wrong value always reads ``expected <what>, got <value>``.
"""

from __future__ import annotations

import collections.abc as cabc
import difflib
import typing
from pathlib import Path
from typing import Any, Optional, Tuple

from mcir.errors import OptionError

_NONE = type(None)
_SEQUENCES = (list, tuple, cabc.Sequence, cabc.Iterable, cabc.Collection, cabc.MutableSequence)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)
_PLAIN = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Path: "a path"}


class BadValue(Exception):
    """A value that does not fit its annotation (turned into an :class:`OptionError` by :func:`check_value`).

    Args:
        sub: Key suffix of the offending entry inside a mapping (``.name``), empty for the value itself.
        hint: The entry's annotation (with ``sub``).
        value: The entry's value (with ``sub``).
    """

    def __init__(self, sub: str = "", hint: Any = None, value: Any = None):
        super().__init__(sub)
        self.sub, self.hint, self.value = sub, hint, value


def _strip(hint: Any) -> Tuple[Any, tuple]:
    """``Annotated[T, c1, c2]`` -> ``(T, (c1, c2))``; other hints -> ``(hint, ())``."""
    if typing.get_origin(hint) is typing.Annotated:
        args = typing.get_args(hint)
        return args[0], tuple(args[1:])
    return hint, ()


def _union_members(hint: Any) -> Optional[tuple]:
    origin = typing.get_origin(hint)
    if origin is typing.Union or (origin is not None and getattr(origin, "__name__", "") == "UnionType"):
        # Tensors never come from YAML: Union[float, Tensor] means a number.
        return tuple(a for a in typing.get_args(hint) if getattr(a, "__name__", "") != "Tensor")
    return None


def is_checkable(hint: Any) -> bool:
    """Whether :func:`check_value` checks something for ``hint`` (False for ``Any`` and unknown classes)."""
    hint, _ = _strip(hint)
    members = _union_members(hint)
    if members is not None:
        return all(m is _NONE or is_checkable(m) for m in members)
    origin = typing.get_origin(hint)
    if origin is typing.Literal or hint in _PLAIN or hint is _NONE:
        return True
    if origin in _SEQUENCES or origin in _MAPPINGS or hint in (list, tuple, dict):
        return True
    return False


def describe(hint: Any) -> str:
    """The expected value in words: ``a number > 0``, ``a list of 2 numbers``, ``one of 'l1', 'l2'``."""
    hint, constraints = _strip(hint)
    members = _union_members(hint)
    if members is not None:
        words = [describe(m) for m in members if m is not _NONE]
        text = " or ".join(words)
        return f"{text} or null" if _NONE in members else text
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        inner = {describe(a) for a in args}
        what = _plural(inner.pop()) if len(inner) == 1 else "values"
        text = f"a list of {len(args)} {what}"
    elif origin in _SEQUENCES or hint in (list, tuple):
        text = f"a list of {_plural(describe(args[0]))}" if args else "a list"
    elif origin in _MAPPINGS or hint is dict:
        text = f"a mapping of names to {_plural(describe(args[1]))}" if len(args) == 2 else "a mapping"
    elif hint is Any:
        text = "anything"
    else:
        text = _PLAIN.get(hint, getattr(hint, "__name__", str(hint)))
    extra = [c.describe() for c in constraints if hasattr(c, "describe")]
    return " ".join([text, *extra]) if extra else text


def _plural(word: str) -> str:
    for singular, plural in (("an integer", "integers"), ("a number", "numbers"), ("a string", "strings"),
                             ("a path", "paths"), ("true or false", "booleans"), ("a mapping", "mappings"),
                             ("a list", "lists")):
        if word.startswith(singular):
            return plural + word[len(singular):]
    return word


def _check(hint: Any, value: Any) -> Any:
    """Return ``value`` coerced to ``hint`` or raise :class:`BadValue`."""
    hint, constraints = _strip(hint)
    value = _check_bare(hint, value)
    for c in constraints:
        if hasattr(c, "holds") and not c.holds(value):
            raise BadValue()
    return value


def _check_bare(hint: Any, value: Any) -> Any:
    members = _union_members(hint)
    if members is not None:
        if value is None and _NONE in members:
            return None
        real = [m for m in members if m is not _NONE]
        if len(real) == 1:  # Optional[X]: X's own message (and entry key) is the clearest
            return _check(real[0], value)
        for m in members:
            if m is _NONE:
                continue
            try:
                return _check(m, value)
            except BadValue:
                continue
        raise BadValue()
    if hint is _NONE:
        if value is None:
            return None
        raise BadValue()
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise BadValue()
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise BadValue()
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue()
        if isinstance(value, float):
            if not value.is_integer():
                raise BadValue()
            return int(value)  # "5e3" for an iteration count
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue()
        return float(value)
    if hint in (str, Path):
        if isinstance(value, str):
            return value
        raise BadValue()
    if origin is tuple or hint is tuple:
        if not isinstance(value, (list, tuple)):
            raise BadValue()
        if not args:
            return list(value)
        if args[-1] is Ellipsis:
            return [_check(args[0], v) for v in value]
        if len(value) != len(args):
            raise BadValue()
        return [_check(a, v) for a, v in zip(args, value)]
    if origin in _SEQUENCES or hint is list:
        if not isinstance(value, (list, tuple)):
            raise BadValue()
        return [_check(args[0], v) for v in value] if args else list(value)
    if origin in _MAPPINGS or hint is dict:
        if not isinstance(value, cabc.Mapping):
            raise BadValue()
        if len(args) != 2:
            return dict(value)
        out = {}
        for k, v in value.items():
            try:
                out[_check(args[0], k)] = _check(args[1], v)
            except BadValue as exc:  # name the entry: negatives.n, layer_weights.relu1_2
                raise BadValue(f".{k}{exc.sub}", exc.hint if exc.sub else args[1], exc.value if exc.sub else v)
        return out
    return value  # Any, or a class YAML cannot produce: nothing to check


def check_value(hint: Any, value: Any, key: str, file: Optional[str] = None) -> Any:
    """Check ``value`` against the annotation ``hint``; return it coerced (``5e3`` -> 5000 for an int).

    Args:
        hint: A type annotation, possibly ``Annotated`` with :mod:`mcir.constraints`.
        value: The option value as YAML gave it.
        key: Dotted option path, for the message.
        file: Option file, for the message.

    Returns:
        The value (ints as floats where a float is expected, lists for sequences).

    Raises:
        OptionError: ``expected <what>, got <value>``.
    """
    try:
        return _check(hint, value)
    except BadValue as exc:
        if exc.sub:
            hint, value, key = exc.hint, exc.value, f"{key}{exc.sub}"
        message = f"expected {describe(hint)}, got {_show(value)}{_did_you_mean(hint, value)}"
        raise OptionError(message, file=file, key=key) from None


def _did_you_mean(hint: Any, value: Any) -> str:
    """``; did you mean 'x'?`` for a misspelt choice of a ``Literal``."""
    if not isinstance(value, str):
        return ""
    hint, _ = _strip(hint)
    members = _union_members(hint) or (hint,)
    choices = [a for m in members if typing.get_origin(m) is typing.Literal for a in typing.get_args(m)]
    close = difflib.get_close_matches(value, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
