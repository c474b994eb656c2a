"""Load an option file: resolve ``_base_``, apply ``--set``, validate every key and value, freeze."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from mcir.errors import OptionError
from mcir.options.foreign import translate_for_loading
from mcir.frozen import FrozenMap, thaw
from mcir.options.inherit import load_with_bases
from mcir.options.overrides import apply_overrides
from mcir.options.validate import validate
from mcir.options.yaml_io import dump_yaml
from mcir.registry import import_user_modules


def load_options(
    path: str,
    overrides: Sequence[str] = (),
    is_train: bool = True,
    strict_options: bool = False,
    notify: Optional[Callable[[str], None]] = None,
) -> FrozenMap:
    """Read, inherit, translate (foreign files), override, validate and freeze an option file.

    Nothing is built and nothing is written: a bad file fails here, with a one-line error naming the key.

    Args:
        path: YAML option file.
        overrides: ``key=value`` strings from ``--set`` (checked like the file's own values).
        is_train: Training options (train.py) or test options (test.py, infer.py).
        strict_options: Refuse option files of BasicSR / the published MCIR code / NAFNet / Restormer
            instead of translating them (:mod:`mcir.options.foreign`).
        notify: Receives a line per translated key (default: printed on stderr, by rank 0 only).

    Returns:
        The resolved, read-only options: defaults filled in, metric presets applied, and ``opt_path`` (the
        file's absolute path) added.
    """
    from mcir.components import load_components
    from mcir.metrics.presets import resolve_metrics
    from mcir.options.schema import model_type_of, root_schema

    file = str(path)
    raw = translate_for_loading(load_with_bases(Path(path), file), file, strict_options, notify or _stderr_notice)
    raw = apply_overrides(raw, overrides, file)
    imports = raw.get("imports") or []
    if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
        raise OptionError(f"expected a list of module names, got {imports!r}", file, "imports")
    load_components()
    import_user_modules(imports, file=file)
    net = raw.get("network_g")
    base_arch = net.get("type") if isinstance(net, dict) and isinstance(net.get("type"), str) else None
    schema = root_schema(model_type_of(raw, file), base_arch, is_train)
    resolved: Dict[str, Any] = validate(schema, raw, "", file)
    val = resolved["val"]
    try:
        val["metrics"] = resolve_metrics(val.get("preset"), val["metrics"], resolved["scale"])
    except OptionError as exc:
        raise OptionError(exc.message, file, exc.key) from None
    resolved["opt_path"] = str(Path(path).resolve())
    return FrozenMap(resolved)


def _stderr_notice(line: str) -> None:
    """Print a notice about the option file on stderr (rank 0 of a distributed job only)."""
    if os.environ.get("RANK", "0") == "0":
        print(f"note: {line}", file=sys.stderr)


def dump_options(opt: Mapping[str, Any], path: str) -> None:
    """Write resolved options as YAML (atomically): the fully merged and validated file, loadable as it is.

    Args:
        opt: Resolved options.
        path: Destination file.
    """
    from mcir.utils.atomic import atomic_write_text

    tree = thaw(opt)
    source = tree.pop("opt_path", None)
    header = f"# resolved from {source} (its _base_ files merged, defaults filled in)\n" if source else ""
    atomic_write_text(header + dump_yaml(tree), path)


def dataset_sections(opt: Mapping[str, Any], prefix: str) -> List[str]:
    """Names of the dataset sections starting with ``prefix`` (``train``, ``val``, ``test``), in file order."""
    return [k for k in (opt.get("datasets") or {}) if k.startswith(prefix)]


def option_file(opt: Mapping[str, Any]) -> Optional[str]:
    """The file the options came from (for messages), or None for options built in code."""
    return opt.get("opt_path")
