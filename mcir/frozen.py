"""The loaded configuration is read-only: a command that needs a variant makes a new one."""

from __future__ import annotations

from typing import Any, Dict, Iterator, Mapping


class FrozenMap(Mapping):
    """An immutable mapping (nested mappings frozen too, lists turned into tuples), read by key or attribute.

    Args:
        data: The mapping to freeze (copied).
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] = ()):  # type: ignore[assignment]
        object.__setattr__(self, "_data", {k: freeze(v) for k, v in dict(data).items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("the configuration is read-only; build a variant with mcir.options.replace_keys(...)")

    def __delattr__(self, name: str) -> None:
        raise TypeError("the configuration is read-only")

    def __reduce__(self) -> Any:
        return (FrozenMap, (thaw(self),))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


class FrozenList(tuple):
    """An immutable list: a tuple that compares equal to the list it was made from."""

    def __eq__(self, other: object) -> bool:
        return tuple.__eq__(self, tuple(other) if isinstance(other, list) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return repr(list(self))


def freeze(value: Any) -> Any:
    """``value`` with mappings as :class:`FrozenMap` and lists as :class:`FrozenList`, recursively."""
    if isinstance(value, (FrozenMap, FrozenList)):
        return value
    if isinstance(value, Mapping):
        return FrozenMap(value)
    if isinstance(value, (list, tuple)):
        return FrozenList(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable deep copy: mappings as dicts, tuples and lists as lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def replace_keys(config: Mapping[str, Any], changes: Mapping[str, Any]) -> FrozenMap:
    """A new frozen configuration with dotted keys replaced (``{"path.pretrain_network_g": "w.pth"}``).

    Args:
        config: The configuration (not changed).
        changes: Dotted key -> new value; sections on the way must exist.

    Returns:
        The new configuration.
    """
    out: Dict[str, Any] = thaw(config)
    for dotted, value in changes.items():
        node = out
        *parents, last = dotted.split(".")
        for k in parents:
            node = node[k]
        node[last] = thaw(value)
    return FrozenMap(out)
