"""Validate an option tree against the schema: every key known, every value of the right type and range."""

from __future__ import annotations

import copy
import difflib
import inspect
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence

from mcir.errors import OptionError
from mcir.options.spec import REQUIRED, Free, Leaf, MapOf, Section, Typed
from mcir.options.values import check_value

_MISSING = object()


def join_key(key: str, sub: str) -> str:
    """``a.b`` + ``c`` -> ``a.b.c`` (no leading dot at the root)."""
    return f"{key}.{sub}" if key else sub


def closest(name: Any, valid: Iterable[str]) -> str:
    """``; did you mean 'x'?`` when a valid name is close, else the list of valid names."""
    valid = list(valid)
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f" (valid: {', '.join(sorted(valid))})"


def validate(spec: Any, value: Any, key: str = "", file: Optional[str] = None) -> Any:
    """Validate ``value`` against the schema node ``spec``, filling defaults.

    Args:
        spec: A node of :mod:`mcir.options.spec`.
        value: The option value (a mapping for sections); not modified.
        key: Dotted path of ``value``, for messages.
        file: Option file, for messages.

    Returns:
        The validated value (defaults filled in, numbers coerced).

    Raises:
        OptionError: Unknown key, missing required key, or a value of the wrong type or range.
    """
    out = _validate(spec, value, key, file)
    return None if out is _MISSING else out


def _validate(spec: Any, value: Any, key: str, file: Optional[str]) -> Any:
    required = getattr(spec, "required", False) or getattr(spec, "default", None) is REQUIRED
    if isinstance(spec, Section) and spec.optional and (value is _MISSING or value is None):
        return None
    if value is _MISSING:
        if required:
            raise OptionError("missing required key", file=file, key=key)
        if isinstance(spec, (Leaf, Free)):
            return copy.deepcopy(spec.default)
        if isinstance(spec, Typed) and spec.default_type is None:
            return _MISSING  # optional component left out (e.g. no scheduler)
        value = None
    if isinstance(spec, Leaf):
        if value is None and spec.default is REQUIRED:
            raise OptionError("must not be empty", file=file, key=key)
        return check_value(spec.hint, value, key, file)
    if isinstance(spec, Section):
        return _section(spec, value, key, file)
    if isinstance(spec, Typed):
        return validate_typed(spec, value, key, file)
    if isinstance(spec, MapOf):
        return _map_of(spec, value, key, file)
    if isinstance(spec, Free):
        return copy.deepcopy(value)
    raise TypeError(f"bad schema node at {key}: {spec!r}")


def _mapping(value: Any, key: str, file: Optional[str], what: str = "a section (mapping)") -> Dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OptionError(f"expected {what}, got {type(value).__name__} {value!r}", file=file, key=key or None)
    return value


def _section(spec: Section, value: Any, key: str, file: Optional[str]) -> Dict[str, Any]:
    value = _mapping(value, key, file)
    for k in value:
        if k in spec.renamed:
            raise OptionError(spec.renamed[k], file=file, key=join_key(key, str(k)))
        if k not in spec.fields:
            raise OptionError(f"unknown key{closest(k, spec.fields)}", file=file, key=join_key(key, str(k)))
    out: Dict[str, Any] = {}
    for k, s in spec.fields.items():
        v = _validate(s, value.get(k, _MISSING), join_key(key, k), file)
        if v is not _MISSING:
            out[k] = v
    for relation in spec.relations:
        relation(out, key, file)
    return out


def _map_of(spec: MapOf, value: Any, key: str, file: Optional[str]) -> Dict[str, Any]:
    value = _mapping(value, key, file)
    out = {}
    for k, v in value.items():
        if spec.pattern and not re.fullmatch(spec.pattern, str(k)):
            raise OptionError(f"unexpected key: {spec.pattern_doc}", file=file, key=join_key(key, str(k)))
        out[k] = _validate(spec.value, v, join_key(key, str(k)), file)
    return out


def validate_typed(spec: Typed, value: Any, key: str, file: Optional[str]) -> Dict[str, Any]:
    """Validate a ``{type: ..., **kwargs}`` section against the registered callable's arguments.

    Args:
        spec: The node.
        value: The section.
        key: Its dotted path.
        file: Option file.

    Returns:
        The validated section (``type`` filled from ``default_type``; the callable's own defaults are not added).
    """
    out = dict(_mapping(value, key, file, "a section with a 'type'"))
    type_name = out.get("type", spec.default_type)
    if type_name is None:
        raise OptionError("missing 'type'", file=file, key=key)
    registry = spec.registry()
    if not isinstance(type_name, str):
        raise OptionError(f"expected a {registry.name} name, got {type_name!r}", file=file, key=join_key(key, "type"))
    try:
        registry.get(type_name)
    except OptionError as exc:  # a RegistryError stays one
        raise type(exc)(exc.message, file=file, key=join_key(key, "type")) from None
    out["type"] = type_name
    params = registry.option_params(type_name)
    if params is None:  # no inspectable signature (a builtin): the call itself will check its arguments
        return out
    allowed = {n: p for n, p in params.items() if n not in spec.injected}
    valid_keys = set(allowed) | set(spec.extra) | {"type"}
    own = spec.nested.get(type_name, {})
    for k, v in list(out.items()):
        if k == "type":
            continue
        sub = join_key(key, k)
        if k in spec.extra:
            out[k] = _validate(spec.extra[k], v, sub, file)
        elif k in own and k in allowed:
            out[k] = _validate(own[k], v, sub, file)
        elif k in allowed:
            out[k] = check_value(allowed[k].annotation, v, sub, file)
        else:
            raise OptionError(
                f"unknown key for {registry.name} '{type_name}'{closest(k, valid_keys)}", file=file, key=sub
            )
    for k, s in spec.extra.items():
        if k not in out:
            v = _validate(s, _MISSING, join_key(key, k), file)
            if v is not _MISSING:
                out[k] = v
    if not spec.partial:
        missing = [n for n, p in allowed.items() if p.default is inspect.Parameter.empty and n not in out]
        if missing:
            raise OptionError(
                f"missing required key(s) {', '.join(missing)} for {registry.name} '{type_name}'", file=file, key=key
            )
        for relation in registry.option_relations(type_name):
            relation(out, key, file)
    for relation in spec.relations:
        relation(out, key, file)
    return out


def build_checked(
    registry: Any,
    cfg: Mapping[str, Any],
    key: str = "",
    file: Optional[str] = None,
    injected: Sequence[str] = (),
    **extra: Any,
) -> Any:
    """Check a hand-written ``{type: ..., **kwargs}`` section as an option file's is checked, then build it.

    For code that builds components outside an option file (a notebook, a script, a test); option files
    are checked when they are loaded, and the builders then construct directly.

    Args:
        registry: Where to look up ``cfg['type']`` (e.g. ``ARCH_REGISTRY``).
        cfg: The section. Not mutated.
        key: Its dotted option path, for messages.
        file: Option file, for messages.
        injected: Constructor arguments the caller supplies (default: the names in ``extra``).
        extra: Those arguments (e.g. ``params`` of an optimizer).

    Returns:
        The constructed object.
    """
    from mcir.registry import construct

    spec = Typed(registry=lambda: registry, injected=tuple(injected) or tuple(extra))
    return construct(registry, validate_typed(spec, dict(cfg), key, file), key, file, **extra)
