"""Nodes of the option schema: typed leaves, fixed sections, registry-typed sections, free-named maps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

# A cross-key check of a validated section: ``check(section, key, file)`` raises OptionError.
Relation = Callable[[Dict[str, Any], str, Optional[str]], None]


class _Required:
    """Marker default of a key that must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Leaf:
    """A value checked against a type annotation (``PositiveInt``, ``Literal['a', 'b']``, ...).

    Args:
        hint: The annotation (see :mod:`mcir.options.values`).
        default: Value when the key is left out; :data:`REQUIRED` makes it mandatory.
    """

    hint: Any
    default: Any = None


@dataclass(frozen=True)
class Section:
    """A mapping with a fixed set of keys.

    Args:
        fields: Key -> node.
        required: The section must be present.
        relations: Checks between keys, run after every key is valid.
        optional: The whole section may be left out (it is then None); its own keys may still be required.
        renamed: Old key -> what to write instead (a clearer error than "unknown key").
    """

    fields: Mapping[str, Any]
    required: bool = False
    relations: Tuple[Relation, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)
    optional: bool = False


@dataclass(frozen=True)
class Typed:
    """A section ``{type: Name, **kwargs}`` whose kwargs are checked against the registered callable.

    Each kwarg is checked against the callable's signature annotation (and the registry's overrides for
    third-party classes); the callable may add relations between its arguments (see :mod:`mcir.registry`).

    Args:
        registry: Returns the registry to look ``type`` up in (called lazily: registries fill on import).
        injected: Constructor arguments the framework supplies (not allowed in the file).
        extra: Additional keys allowed in the section, with their own nodes (e.g. data-loader keys).
        default_type: ``type`` when the section leaves it out.
        required: The section must be present.
        partial: The section may leave out required constructor arguments (an override that is merged
            into a complete section later, e.g. ``models.<name>.network_g`` in test options).
        relations: Checks between keys of the validated section (``extra`` keys included).
        nested: Type name -> argument -> node, for arguments a signature cannot describe (the dataset
            sections inside a ``MixedDataset``).
    """

    registry: Callable[[], Any]
    injected: Tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    default_type: Optional[str] = None
    required: bool = False
    partial: bool = False
    relations: Tuple[Relation, ...] = ()
    nested: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class MapOf:
    """A mapping from free names (optionally matching ``pattern``) to values of one node."""

    value: Any
    pattern: Optional[str] = None
    pattern_doc: str = ""


@dataclass(frozen=True)
class Free:
    """Anything, kept as given (checked elsewhere only where the node says so)."""

    default: Any = None
