"""Name -> class/function registries (archs, losses, models, datasets, metrics, optimizers, schedulers)."""

from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from typing import Any, Dict, Iterator, List, Optional, Sequence

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


def signature_kwargs(obj: Any) -> Dict[str, inspect.Parameter]:
    """Keyword arguments a class (its ``__init__``) or function accepts.

    Args:
        obj: Class or function.

    Returns:
        Parameter name -> ``inspect.Parameter``, without ``self``, ``*args`` and ``**kwargs``;
        annotations are resolved to types where possible.
    """
    params = inspect.signature(obj).parameters
    try:
        # Modules using ``from __future__ import annotations`` store annotations as strings.
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except Exception:  # noqa: BLE001 - unresolvable annotations only disable type checks
        hints = {}
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        n: p.replace(annotation=hints.get(n, p.annotation))
        for n, p in params.items()
        if p.kind not in skip and n != "self"
    }


def build_from_registry(
    registry: Registry, cfg: Dict[str, Any], key: str = "", file: Optional[str] = None, **extra: Any
) -> Any:
    """Build ``registry.get(cfg['type'])(**rest_of_cfg, **extra)``, turning bad options into ``OptionError``.

    Unknown keyword arguments are reported as ``<key>.<kwarg>`` with the closest valid name; missing
    required ones are listed; an ``OptionError`` raised by the constructor gets ``key`` prefixed.

    Args:
        registry: Where to look up ``cfg['type']``.
        cfg: Option section with ``type`` and constructor arguments. Not mutated.
        key: Dotted option path of ``cfg`` (e.g. ``network_g``), for error messages.
        file: Option file, for error messages.
        extra: Arguments the caller supplies (not from the options, e.g. ``params`` of an optimizer).

    Returns:
        The constructed object.
    """
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise OptionError("needs a 'type'", file=file, key=key or None)
    try:
        target = registry.get(cfg["type"])
    except RegistryError as exc:
        raise RegistryError(exc.message, file=file, key=f"{key}.type" if key else "type") from exc
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    try:
        params = signature_kwargs(target)
        takes_var_kwargs = any(
            p.kind == inspect.Parameter.VAR_KEYWORD for p in inspect.signature(target).parameters.values()
        )
    except (TypeError, ValueError):  # builtins without a signature: let the call itself check
        params, takes_var_kwargs = {}, True
    if not takes_var_kwargs:
        for name in kwargs:
            if name not in params or name in extra:
                close = difflib.get_close_matches(str(name), [p for p in params if p not in extra], n=1, cutoff=0.5)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise OptionError(
                    f"{cfg['type']} has no argument '{name}'{hint}", file=file, key=f"{key}.{name}" if key else name
                )
    missing = [
        n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kwargs and n not in extra
    ]
    if missing:
        raise OptionError(f"{cfg['type']} needs argument(s): {', '.join(missing)}", file=file, key=key or None)
    try:
        return target(**kwargs, **extra)
    except OptionError as exc:
        if key and exc.key and not exc.key.startswith(f"{key}."):
            raise OptionError(exc.message, file=exc.file or file, key=f"{key}.{exc.key}") from exc
        raise
