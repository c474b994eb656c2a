"""Options: load a YAML file (with ``_base_`` and ``--set``), validate it against one schema, freeze it.

Layout: ``yaml_io`` (reading), ``inherit`` (``_base_``), ``overrides`` (``--set``), ``spec`` (schema nodes),
``values`` (one value against its annotation), ``validate`` (the tree against the schema), ``relations``
(checks between keys), ``schema`` (mcir's sections and defaults), ``frozen`` (the read-only result),
``loader`` (all of it in order).
"""

from mcir.frozen import FrozenMap, freeze, replace_keys, thaw
from mcir.options.loader import dataset_sections, dump_options, load_options, option_file
from mcir.options.overrides import apply_overrides
from mcir.options.validate import build_checked
from mcir.options.yaml_io import parse_yaml

__all__ = [
    "FrozenMap",
    "apply_overrides",
    "build_checked",
    "dataset_sections",
    "dump_options",
    "freeze",
    "load_options",
    "option_file",
    "parse_yaml",
    "replace_keys",
    "thaw",
]
