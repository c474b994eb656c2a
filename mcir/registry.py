"""Name -> class/function registries (archs, losses, models, datasets, metrics, optimizers, schedulers)."""

from __future__ import annotations

import difflib
import importlib
import inspect
import typing
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from mcir.errors import OptionError, RegistryError
from mcir.frozen import thaw


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
        self._hints: Dict[str, Mapping[str, Any]] = {}
        self._relations: Dict[str, Tuple[Callable[..., None], ...]] = {}

    def _add(self, name: str, obj: Any) -> None:
        if name in self._obj_map:
            if self._obj_map[name] is obj:
                return
            raise RegistryError(
                f"{self.name} '{name}' is registered twice: first by {_where(self._obj_map[name])}, "
                f"again by {_where(obj)}"
            )
        self._obj_map[name] = obj

    def register(
        self,
        obj: Any = None,
        name: Optional[str] = None,
        hints: Optional[Mapping[str, Any]] = None,
        relations: Sequence[Callable[..., None]] = (),
    ) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``).

        Use as ``@REG.register()``, ``@REG.register(name="Alias")`` or ``REG.register(obj)``.

        Args:
            obj: The class or function (None: return a decorator).
            name: Registry name.
            hints: Option annotations that replace the signature's (for third-party classes whose
                annotations say too little, e.g. ``{"lr": PositiveFloat}`` for torch optimizers).
            relations: Checks between the option values of one section, ``check(section, key, file)``
                raising OptionError (e.g. two lists of the same length).
        """

        def add(target: Any) -> Any:
            key = name or target.__name__
            self._add(key, target)
            self._hints[key] = dict(hints or {})
            self._relations[key] = tuple(relations)
            return target

        return add(obj) if obj is not None else add

    def get(self, name: str) -> Any:
        """Return the object registered as ``name``; unknown names list the closest ones."""
        if name not in self._obj_map:
            close = difflib.get_close_matches(str(name), list(self._obj_map), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RegistryError(
                f"unknown {self.name} '{name}'{hint} (registered: {', '.join(sorted(self._obj_map))})"
            )
        return self._obj_map[name]

    def option_params(self, name: str) -> Optional[Dict[str, inspect.Parameter]]:
        """Keyword arguments of ``name`` with the annotations option values are checked against.

        Args:
            name: Registered name.

        Returns:
            Parameter name -> ``inspect.Parameter`` (see :func:`signature_kwargs`), with the registration's
            ``hints`` applied; None for callables without an inspectable signature (builtins).
        """
        try:
            params = signature_kwargs(self.get(name))
        except (TypeError, ValueError):
            return None
        hints = self._hints.get(name, {})
        return {n: p.replace(annotation=hints[n]) if n in hints else p for n, p in params.items()}

    def option_relations(self, name: str) -> Tuple[Callable[..., None], ...]:
        """The cross-argument checks registered with ``name``."""
        return self._relations.get(name, ())

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
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable annotations only disable type checks
        hints = {}
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        n: p.replace(annotation=hints.get(n, p.annotation))
        for n, p in params.items()
        if p.kind not in skip and n != "self"
    }


def construct(
    registry: Registry, cfg: Mapping[str, Any], key: str = "", file: Optional[str] = None, **extra: Any
) -> Any:
    """``registry.get(cfg['type'])(**rest_of_cfg, **extra)`` for a section the option schema has validated
    (:func:`mcir.options.build_checked` checks a hand-written section first).

    The section is copied into plain dicts and lists first, so the object never shares (or changes) the
    configuration. An ``OptionError`` raised by the constructor gets ``key`` prefixed to its key.

    Args:
        registry: Where to look up ``cfg['type']``.
        cfg: Validated option section with ``type`` and constructor arguments.
        key: Dotted option path of ``cfg`` (e.g. ``network_g``), for messages.
        file: Option file, for messages.
        extra: Arguments the caller supplies (e.g. ``params`` of an optimizer).

    Returns:
        The constructed object.
    """

    if "type" not in cfg:
        raise OptionError("missing 'type'", file=file, key=key or None)
    kwargs = thaw({k: v for k, v in cfg.items() if k != "type"})
    try:
        target = registry.get(cfg["type"])
    except RegistryError as exc:
        raise RegistryError(exc.message, file=file, key=f"{key}.type" if key else "type") from None
    try:
        return target(**kwargs, **extra)
    except OptionError as exc:
        if key and exc.key and not exc.key.startswith(f"{key}."):
            raise OptionError(exc.message, file=exc.file or file, key=f"{key}.{exc.key}") from exc
        if key and not exc.key:
            raise OptionError(exc.message, file=exc.file or file, key=key) from exc
        raise
