"""Option files: load YAML, apply ``--set`` overrides, validate against a schema, dump the resolved file."""

from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import yaml

from mcir.errors import OptionError
from mcir.options_schema import Section, validate_section
from mcir.registry import import_user_modules

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
        file: Its file name, for error messages.

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


def apply_overrides(opt: Dict[str, Any], overrides: Sequence[str], file: Optional[str] = None) -> None:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML, never evaluated.

    Args:
        opt: Parsed option tree (modified in place).
        overrides: Strings such as ``train.total_iter=100``.
        file: Option file name, for error messages.
    """
    for item in overrides:
        if "=" not in item:
            raise OptionError(f"override '{item}' must look like key.path=value", file=file, key="--set")
        path, raw = item.split("=", 1)
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise OptionError(f"override '{item}' has an empty key", file=file, key="--set")
        value = parse_yaml(raw, file=f"--set {path}") if raw.strip() else None
        node = opt
        for i, k in enumerate(keys[:-1]):
            child = node.get(k)
            if child is None:
                child = node[k] = {}
            if not isinstance(child, dict):
                raise OptionError(
                    f"cannot set '{path}': '{'.'.join(keys[: i + 1])}' is not a section", file=file, key=path
                )
            node = child
        node[keys[-1]] = value


def load_options(
    path: str,
    overrides: Sequence[str] = (),
    is_train: bool = True,
    schema: Optional[Section] = None,
    strict_options: bool = False,
    notify: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """Read, translate (foreign files), override, validate and resolve an option file.

    Args:
        path: YAML option file.
        overrides: ``key=value`` strings from ``--set``.
        is_train: Training (train.py) or testing (test.py) options.
        schema: Schema to validate against (default: mcir's, extended by the chosen model type).
        strict_options: Refuse option files of BasicSR / the published MCIR code / NAFNet / Restormer instead
            of translating them.
        notify: Receives a line per translated key (default: printed on stderr, by rank 0 only).

    Returns:
        The resolved option tree (defaults filled in, ``opt_path`` and ``is_train`` added).
    """
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise OptionError("option file not found", file=file)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"cannot read option file: {exc}", file=file) from exc
    opt = parse_yaml(text, file=file)
    if not isinstance(opt, dict):
        raise OptionError("the option file must be a YAML mapping (key: value)", file=file)
    opt = copy.deepcopy(opt)
    # ---- foreign option files (model_type of BasicSR, the published MCIR code, NAFNet, Restormer) ----
    from mcir.foreign_options import translate_for_loading

    opt = translate_for_loading(opt, file, strict_options, _stderr_notice if notify is None else notify)
    # ---- end of foreign option files ----
    apply_overrides(opt, overrides, file=file)

    imports = opt.get("imports") or []
    if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
        raise OptionError("must be a list of module names", file=file, key="imports")
    import_user_modules(imports, file=file)

    if schema is None:
        from mcir.options_schema import build_schema

        schema = build_schema(opt, is_train=is_train, file=file)
    resolved = validate_section(schema, opt, key="", file=file)
    if (resolved.get("logger", {}).get("wandb") or {}).get("project"):
        raise OptionError(
            "Weights & Biases logging is not supported; log to TensorBoard (logger.use_tb_logger) and leave this empty",
            file=file,
            key="logger.wandb.project",
        )
    from mcir.metrics.presets import apply_preset

    apply_preset(resolved, file)
    resolved["opt_path"] = str(p.resolve())
    resolved["is_train"] = is_train
    return resolved


def _stderr_notice(line: str) -> None:
    """Print a notice about the option file on stderr (rank 0 of a distributed job only)."""
    if os.environ.get("RANK", "0") == "0":
        print(f"note: {line}", file=sys.stderr)


def dump_options(opt: Dict[str, Any], path: str) -> None:
    """Write resolved options as YAML (atomically).

    Args:
        opt: Resolved option tree.
        path: Destination file.
    """
    from mcir.utils.atomic import atomic_write_text

    atomic_write_text(yaml.safe_dump(opt, sort_keys=False, default_flow_style=None), path)


def dataset_sections(opt: Dict[str, Any], prefix: str) -> List[str]:
    """Names of the dataset sections starting with ``prefix`` (``train``, ``val``, ``test``), in file order."""
    return [k for k in (opt.get("datasets") or {}) if k.startswith(prefix)]
