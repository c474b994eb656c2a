"""``--set key.path=value`` overrides: values are parsed as YAML (never evaluated), applied before validation."""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional, Sequence

from mcir.errors import OptionError
from mcir.options.yaml_io import parse_yaml


def apply_overrides(opt: Dict[str, Any], overrides: Sequence[str], file: Optional[str] = None) -> Dict[str, Any]:
    """A copy of ``opt`` with ``key.path=value`` overrides applied.

    Args:
        opt: Parsed option tree (not changed).
        overrides: Strings such as ``train.total_iter=100``.
        file: Option file name, for messages.

    Returns:
        The overridden tree.

    Raises:
        OptionError: A malformed override, named as ``--set <argument>``.
    """
    out = copy.deepcopy(opt)
    for item in overrides:
        where = f"--set {item}"
        if "=" not in item:
            raise OptionError("expected key.path=value", file=where)
        path, raw = item.split("=", 1)
        keys = [k for k in path.strip().split(".") if k]
        if not keys or any(not k.strip() for k in path.split(".")):
            raise OptionError("expected key.path=value with a non-empty key at every level", file=where)
        value = parse_yaml(raw, file=where) if raw.strip() else None
        node = out
        for i, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise OptionError(f"cannot set '{path}': '{'.'.join(keys[: i + 1])}' is not a section",
                                  file=where, key=path)
            node = child
        node[keys[-1]] = value
    return out
