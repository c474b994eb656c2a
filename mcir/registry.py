"""Name -> class/function registries (archs, losses, models, datasets, metrics, optimizers, schedulers)."""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

from mcir.errors import OptionError, RegistryError


def _where(obj: Any) -> str:
    """Describe where ``obj`` is defined: ``module.qualname (file:line)``."""
    name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
    try:
        return f"{name} ({inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]})"
    except (TypeError, OSError):
        return name


class Registry:
    """A mapping from names to classes or functions, filled with a decorator.

    Example::

        ARCH_REGISTRY = Registry("arch")

        @ARCH_REGISTRY.register()
        class MyNet(nn.Module): ...

        net = ARCH_REGISTRY.get("MyNet")(**kwargs)
    """

    def __init__(self, name: str):
        self.name = name
        self._obj_map: Dict[str, Any] = {}

    def _add(self, name: str, obj: Any) -> None:
        if name in self._obj_map:
            if self._obj_map[name] is obj:
                return
            raise RegistryError(
                f"{self.name} '{name}' is registered twice: first by {_where(self._obj_map[name])}, "
                f"again by {_where(obj)}"
            )
        self._obj_map[name] = obj

    def register(self, obj: Any = None, name: Optional[str] = None) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``).

        Use as ``@REG.register()``, ``@REG.register(name="Alias")`` or ``REG.register(obj)``.
        """
        if obj is not None:
            self._add(name or obj.__name__, obj)
            return obj

        def deco(target: Any) -> Any:
            self._add(name or target.__name__, target)
            return target

        return deco

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; unknown names list the closest ones."""
        if name not in self._obj_map:
            close = difflib.get_close_matches(str(name), list(self._obj_map), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.name} '{name}'{hint} (registered: {', '.join(sorted(self._obj_map))})"
            )
        return self._obj_map[name]

    def list(self) -> List[str]:
        """Sorted registered names."""
        return sorted(self._obj_map)

    def __contains__(self, name: object) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._obj_map)

    def __repr__(self) -> str:
        return f"Registry(name={self.name!r}, items={self.list()})"


ARCH_REGISTRY = Registry("arch")
LOSS_REGISTRY = Registry("loss")
MODEL_REGISTRY = Registry("model")
DATASET_REGISTRY = Registry("dataset")
METRIC_REGISTRY = Registry("metric")
OPTIMIZER_REGISTRY = Registry("optimizer")
SCHEDULER_REGISTRY = Registry("scheduler")


def import_user_modules(modules: Sequence[str], file: Optional[str] = None) -> None:
    """Import user modules named in the ``imports`` option so their decorators register.

    Args:
        modules: Dotted module names (``my_package.my_arch``).
        file: The option file, for error messages.
    """
    for i, mod in enumerate(modules):
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise OptionError(f"cannot import '{mod}': {exc}", file=file, key=f"imports[{i}]") from exc


def build_from_registry(registry: Registry, cfg: Dict[str, Any], key: str = "", **extra: Any) -> Any:
    """Build ``registry.get(cfg['type'])(**rest_of_cfg, **extra)`` with readable errors.

    Args:
        registry: Where to look up ``cfg['type']``.
        cfg: Option section holding ``type`` and constructor keyword arguments. Not mutated.
        key: Dotted option path of ``cfg`` (for error messages).
        extra: Extra keyword arguments supplied by the caller (not from the options).

    Returns:
        The constructed object.
    """
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise OptionError("needs a 'type'", key=key or None)
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    kwargs.update(extra)
    obj: Callable[..., Any] = registry.get(cfg["type"])
    return obj(**kwargs)
