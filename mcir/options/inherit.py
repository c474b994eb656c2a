"""``_base_`` inheritance: an option file is its base file(s) merged key by key with its own keys.

``_base_: other.yml`` (or a list, merged in order) names files relative to the including file. A mapping
merges into the base's mapping; any other value (lists included) replaces it. ``key: _delete_`` removes
the base's key; a mapping with ``_delete_: true`` replaces the base's mapping instead of merging into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mcir.errors import OptionError
from mcir.options.yaml_io import read_yaml_mapping

BASE_KEY = "_base_"
DELETE = "_delete_"


def load_with_bases(path: Path, label: Optional[str] = None) -> Dict[str, Any]:
    """Read ``path`` and resolve its ``_base_`` chain into one plain mapping.

    Args:
        path: The option file.
        label: How messages name the top file (default: the path as given).

    Returns:
        The merged mapping, without ``_base_`` keys and deletion markers.
    """
    return _load(Path(path), label or str(path), ())


def _load(path: Path, label: str, chain: Tuple[Path, ...]) -> Dict[str, Any]:
    here = path.resolve()
    if here in chain:
        loop = " -> ".join(str(p) for p in (*chain[chain.index(here):], here))
        raise OptionError(f"_base_ files include each other: {loop}", file=str(chain[0]), key=BASE_KEY)
    raw = read_yaml_mapping(path, label)
    merged: Dict[str, Any] = {}
    for base in _base_names(raw.pop(BASE_KEY, None), label):
        base_path = here.parent / base
        if not base_path.is_file():
            raise OptionError(f"base file not found: {base} (looked for {base_path})", file=label, key=BASE_KEY)
        merged = merge(merged, _load(base_path, str(base_path), (*chain, here)), file=str(base_path))
    return merge(merged, raw, file=label)


def _base_names(value: Any, file: str) -> List[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise OptionError(f"expected a file name or a list of file names, got {value!r}", file=file, key=BASE_KEY)
    return names


def merge(base: Dict[str, Any], child: Dict[str, Any], file: Optional[str] = None, key: str = "") -> Dict[str, Any]:
    """``child`` merged into a copy of ``base`` (see the module docstring for the rules).

    Args:
        base: The inherited mapping (not changed).
        child: The including file's mapping (not changed).
        file: The including file, for messages.
        key: Dotted path of these mappings, for messages.

    Returns:
        The merged mapping.
    """
    out = dict(base)
    for k, v in child.items():
        sub = f"{key}.{k}" if key else str(k)
        if v == DELETE:
            if k not in out:
                raise OptionError("nothing to delete: the base files do not set this key", file=file, key=sub)
            del out[k]
        elif isinstance(v, dict) and v.get(DELETE) is True:
            out[k] = _strip({kk: vv for kk, vv in v.items() if kk != DELETE})
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v, file, sub)
        else:
            out[k] = _strip(v)
    return out


def _strip(value: Any) -> Any:
    """A value without deletion markers (a marker with nothing to delete is dropped)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v != DELETE and k != DELETE}
    return value
