"""The option schema: typed leaves, sections, registry-typed sections checked against constructor signatures."""

from __future__ import annotations

import copy
import difflib
import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from mcir.errors import OptionError
from mcir.registry import signature_kwargs

_MISSING = object()
REQUIRED = object()


@dataclass(frozen=True)
class Leaf:
    """A value of given type(s) with an optional default and choices."""

    types: Tuple[type, ...]
    default: Any = None
    choices: Optional[Tuple[Any, ...]] = None
    nullable: bool = True


@dataclass(frozen=True)
class Section:
    """A mapping with a fixed set of keys."""

    fields: Dict[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Typed:
    """A section ``{type: Name, **kwargs}`` whose kwargs are checked against the registered callable's signature.

    Args:
        registry: Returns the registry to look ``type`` up in (called lazily: registries fill on import).
        injected: Constructor arguments the framework supplies (not allowed in the file).
        extra: Additional keys allowed in the section, with their own specs (e.g. data-loader keys).
        default_type: ``type`` when the section leaves it out.
        required: The section must be present.
        partial: The section may leave out required constructor arguments (an override that is merged
            into a complete section later, e.g. ``models.<name>.network_g`` in test options).
    """

    registry: Callable[[], Any]
    injected: Tuple[str, ...] = ()
    extra: Dict[str, Any] = field(default_factory=dict)
    default_type: Optional[str] = None
    required: bool = False
    partial: bool = False


@dataclass(frozen=True)
class MapOf:
    """A mapping from free names (optionally matching ``pattern``) to values of one spec."""

    value: Any
    pattern: Optional[str] = None
    pattern_doc: str = ""


@dataclass(frozen=True)
class Free:
    """Anything (kept as given)."""

    default: Any = None


def _join(key: str, sub: str) -> str:
    return f"{key}.{sub}" if key else sub


def _closest(name: str, valid) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f" (valid: {', '.join(sorted(valid))})"


def _check_leaf(spec: Leaf, value: Any, key: str, file: Optional[str]) -> Any:
    if value is None:
        if spec.nullable or spec.default is None:
            return None
        raise OptionError("must not be empty", file=file, key=key)
    types = spec.types
    if isinstance(value, bool) and bool not in types:
        raise OptionError(f"expected {_type_names(types)}, got a boolean", file=file, key=key)
    if int in types and float not in types and isinstance(value, float) and value.is_integer():
        value = int(value)  # "5e3" for an iteration count
    elif float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value) if int not in types else value
    if not isinstance(value, types):
        raise OptionError(
            f"expected {_type_names(types)}, got {type(value).__name__} {value!r}", file=file, key=key
        )
    if spec.choices is not None and value not in spec.choices:
        raise OptionError(f"must be one of {list(spec.choices)}, got {value!r}", file=file, key=key)
    return value


def _type_names(types: Tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def _check_annotation(param: inspect.Parameter, hint: Any, value: Any, key: str, file: Optional[str]) -> Any:
    """Check simple annotations (int / float / bool / str, optionally Optional) of a constructor argument."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union and len(args) == 2 and type(None) in args:
        if value is None:
            return None
        hint = args[0] if args[1] is type(None) else args[1]
    if hint in (int, float, bool, str):
        types: Tuple[type, ...] = (int, float) if hint is float else (hint,)
        return _check_leaf(Leaf(types, nullable=param.default is None), value, key, file)
    return value


def _signature_params(obj: Any) -> Tuple[Dict[str, inspect.Parameter], Dict[str, Any]]:
    try:
        params = signature_kwargs(obj)
    except (TypeError, ValueError):
        return {}, {}
    return params, {n: p.annotation for n, p in params.items()}


def validate_typed(spec: Typed, value: Any, key: str, file: Optional[str]) -> Dict[str, Any]:
    """Validate a ``{type: ..., **kwargs}`` section against the registered callable."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise OptionError("must be a section with a 'type'", file=file, key=key)
    out = dict(value)
    type_name = out.get("type", spec.default_type)
    if type_name is None:
        raise OptionError("missing 'type'", file=file, key=key)
    registry = spec.registry()
    try:
        target = registry.get(type_name)
    except OptionError as exc:
        raise OptionError(exc.message, file=file, key=_join(key, "type")) from None
    out["type"] = type_name
    params, hints = _signature_params(target)
    allowed = {n: p for n, p in params.items() if n not in spec.injected}
    valid_keys = set(allowed) | set(spec.extra) | {"type"}
    # A class may describe arguments its signature cannot (e.g. MixedDataset's nested dataset sections).
    own = target.option_fields() if callable(getattr(target, "option_fields", None)) else {}
    for k, v in list(out.items()):
        if k == "type":
            continue
        sub = _join(key, k)
        if k in spec.extra:
            out[k] = _validate(spec.extra[k], v, sub, file)
        elif k in own and k in allowed:
            out[k] = _validate(own[k], v, sub, file)
        elif k in allowed:
            out[k] = _check_annotation(allowed[k], hints.get(k), v, sub, file)
        else:
            raise OptionError(
                f"unknown key for {registry.name} '{type_name}'{_closest(k, valid_keys)}", file=file, key=sub
            )
    for k, s in spec.extra.items():
        if k not in out:
            out[k] = _validate(s, _MISSING, _join(key, k), file)
    for n, p in allowed.items():
        if not spec.partial and p.default is inspect.Parameter.empty and n not in out:
            raise OptionError(f"missing required key '{n}' for {registry.name} '{type_name}'", file=file, key=key)
    return out


def validate_section(spec: Section, value: Any, key: str, file: Optional[str]) -> Dict[str, Any]:
    """Validate a fixed-key section, filling defaults."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise OptionError(f"must be a section (mapping), got {type(value).__name__}", file=file, key=key or None)
    for k in value:
        if k not in spec.fields:
            raise OptionError(f"unknown key{_closest(k, spec.fields)}", file=file, key=_join(key, str(k)))
    out: Dict[str, Any] = {}
    for k, s in spec.fields.items():
        out[k] = _validate(s, value.get(k, _MISSING), _join(key, k), file)
        if out[k] is _MISSING:
            del out[k]
    return out


def _validate(spec: Any, value: Any, key: str, file: Optional[str]) -> Any:
    required = getattr(spec, "required", False) or getattr(spec, "default", None) is REQUIRED
    if value is _MISSING:
        if required:
            raise OptionError("missing required key", file=file, key=key)
        if isinstance(spec, (Leaf, Free)):
            return copy_default(spec.default)
        if isinstance(spec, Typed) and spec.default_type is None:
            return _MISSING  # optional component left out (e.g. no scheduler)
        value = None
    if isinstance(spec, Leaf):
        return _check_leaf(spec, value, key, file)
    if isinstance(spec, Section):
        return validate_section(spec, value, key, file)
    if isinstance(spec, Typed):
        return validate_typed(spec, value, key, file)
    if isinstance(spec, MapOf):
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise OptionError("must be a section (mapping)", file=file, key=key)
        out = {}
        for k, v in value.items():
            if spec.pattern and not re.fullmatch(spec.pattern, str(k)):
                raise OptionError(f"unexpected key: {spec.pattern_doc}", file=file, key=_join(key, str(k)))
            out[k] = _validate(spec.value, v, _join(key, str(k)), file)
        return out
    if isinstance(spec, Free):
        return value
    raise TypeError(f"bad schema node at {key}: {spec!r}")


def copy_default(default: Any) -> Any:
    """Return a fresh copy of a mutable default (lists, dicts)."""
    return copy.deepcopy(default) if isinstance(default, (list, dict)) else default


def build_schema(opt: Dict[str, Any], is_train: bool, file: Optional[str] = None) -> Section:
    """Build mcir's option schema, extended by the model type named in ``opt`` (e.g. MCIRModel's keys).

    Args:
        opt: The raw option tree (only ``model_type`` is read).
        is_train: Whether training keys (``train``, ``datasets.train``) are required.
        file: Option file, for error messages.

    Returns:
        The root ``Section``.
    """
    from mcir.options_defaults import root_schema

    return root_schema(opt, is_train=is_train, file=file)
