"""YAML reading with YAML 1.2 numbers (``2e-4`` is a float) and one-line errors naming the place."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from mcir.errors import OptionError

# YAML 1.1 reads "2e-4" as a string; YAML 1.2 (and every user) reads it as a number.
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads scientific notation without a dot (``2e-4``) as a float."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _first in list("-+0123456789."):
    _Loader.yaml_implicit_resolvers[_first] = [
        r for r in _Loader.yaml_implicit_resolvers.get(_first, []) if r[0] != "tag:yaml.org,2002:float"
    ]
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def parse_yaml(text: str, file: Optional[str] = None) -> Any:
    """Parse YAML text with mcir's loader.

    Args:
        text: YAML source.
        file: Its file name (or ``--set key``), for error messages.

    Returns:
        The parsed object.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise OptionError(f"malformed YAML: {where}{problem}", file=file) from exc


def read_yaml_mapping(path: Path, label: Optional[str] = None) -> Dict[str, Any]:
    """Read an option file that must hold a YAML mapping.

    Args:
        path: The file.
        label: How messages name it (default: the path as given).

    Returns:
        The parsed mapping.
    """
    file = label or str(path)
    if not path.is_file():
        raise OptionError("option file not found", file=file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"cannot read option file: {exc}", file=file) from exc
    data = parse_yaml(text, file=file)
    if not isinstance(data, dict):
        raise OptionError("the option file must be a YAML mapping (key: value)", file=file)
    return data


def dump_yaml(data: Any) -> str:
    """YAML text of plain data (block style for sections, flow style for short lists)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
