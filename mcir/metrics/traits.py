"""What the framework needs to know about a registered metric besides its arguments (direction, GT, setup)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: ``prepare(**kwargs) -> score(img, img2)``: builds a metric's expensive state (a network) once per evaluation.
Prepare = Callable[..., Callable[..., float]]


def metric_traits(
    better: str = "higher", reference: bool = True, prepare: Optional[Prepare] = None
) -> Callable[[F], F]:
    """Decorate a metric function with its traits (stored as attributes, read by :func:`traits_of`).

    Args:
        better: ``'higher'`` or ``'lower'``: the default of the option key ``better``.
        reference: The metric compares with a GT image (False: no-reference, called as ``fn(img, **kw)``).
        prepare: Optional builder taking the metric's option kwargs and returning a scorer with the
            same call convention as the function, holding state (e.g. a network) built once.

    Returns:
        The decorator.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")

    def wrap(fn: F) -> F:
        fn.mcir_traits = {"better": better, "reference": reference, "prepare": prepare}  # type: ignore[attr-defined]
        return fn

    return wrap


def traits_of(fn: Callable[..., Any]) -> Dict[str, Any]:
    """Traits of a metric function; undecorated functions are full-reference, higher-is-better, no setup.

    Args:
        fn: A registered metric function.

    Returns:
        ``{'better': str, 'reference': bool, 'prepare': callable or None}``.
    """
    return dict(getattr(fn, "mcir_traits", None) or {"better": "higher", "reference": True, "prepare": None})
