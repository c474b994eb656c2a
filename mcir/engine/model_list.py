"""The models a test run compares (rows of the results table): the ``models`` option and ``--weights NAME=PATH``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

from mcir.errors import OptionError
from mcir.options import thaw


@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate.

    Args:
        name: Row label in the results table (and folder name of its saved images).
        network_g: Complete, validated arch section.
        pretrain_network_g: Weights file, or None (parameter-free baselines such as Bicubic).
        param_key_g: Container key of the weights (``params`` / ``params_ema``).
        strict_load_g: Require an exact key match when loading.
        key: Option path the spec came from, for messages (``models.SPN`` or ``network_g``).
    """

    name: str
    network_g: Dict[str, Any]
    pretrain_network_g: Optional[str]
    param_key_g: str
    strict_load_g: bool
    key: str


def weights_overrides(pairs: Sequence[str]) -> List[str]:
    """Turn ``--weights NAME=PATH`` arguments into ``--set`` overrides of ``models.NAME.pretrain_network_g``.

    So the command line goes through the same validation as the option file.

    Args:
        pairs: ``NAME=PATH`` strings.

    Returns:
        ``models.NAME.pretrain_network_g="PATH"`` overrides (the path quoted, so YAML keeps it a string).
    """
    out = []
    for item in pairs:
        name, sep, path = item.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise OptionError(f"expected NAME=PATH (e.g. SPN=experiments/x/models/net_g_latest.pth), got {item!r}",
                              key="--weights")
        if any(c in name for c in ".=/\\ \t"):
            raise OptionError(f"expected a model name without '.', '=', '/' or spaces, got {name!r}", key="--weights")
        out.append(f"models.{name}.pretrain_network_g={json.dumps(path)}")
    return out


def model_specs(opt: Mapping[str, Any]) -> List[ModelSpec]:
    """The models of a test run: the ``models`` entries in file order, or the top-level model alone.

    A ``models`` entry's ``network_g`` overrides are merged into the top-level ``network_g`` when they
    keep its ``type`` and replace it otherwise; ``param_key_g`` / ``strict_load_g`` default to the
    ``path`` section's; ``pretrain_network_g`` is never inherited (each row names its own weights).

    Args:
        opt: Validated test options (the schema checked each merged ``network_g``).

    Returns:
        The specs, each with a complete ``network_g``.
    """
    path = opt.get("path") or {}
    base_net = thaw(opt["network_g"])
    entries = opt.get("models") or {}
    if not entries:
        return [
            ModelSpec(
                name=opt["name"],
                network_g=base_net,
                pretrain_network_g=path.get("pretrain_network_g"),
                param_key_g=path.get("param_key_g") or "params",
                strict_load_g=bool(path.get("strict_load_g", True)),
                key="network_g",
            )
        ]
    specs = []
    for name, entry in entries.items():
        entry = entry or {}
        override = thaw(entry.get("network_g") or {})
        if override.get("type", base_net["type"]) == base_net["type"]:
            merged = {**base_net, **override}
        else:
            merged = override
        key = f"models.{name}"
        param_key = entry.get("param_key_g")
        strict = entry.get("strict_load_g")
        specs.append(
            ModelSpec(
                name=str(name),
                network_g=merged,
                pretrain_network_g=entry.get("pretrain_network_g"),
                param_key_g=param_key if param_key is not None else (path.get("param_key_g") or "params"),
                strict_load_g=bool(strict if strict is not None else path.get("strict_load_g", True)),
                key=key,
            )
        )
    return specs
