"""Value constraints for option annotations: ``Annotated[float, Range(gt=0)]`` says "a number > 0".

Constructors of registered components (archs, losses, datasets, schedulers, ...) annotate their arguments
with these, and the option schema checks every value of an option file against the annotation before
anything is built. Nothing here imports the rest of mcir but its errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Dict, Optional, Sequence

from mcir.errors import OptionError


def _fmt(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass(frozen=True)
class Range:
    """Bounds of a number (``ge``/``gt`` below, ``le``/``lt`` above; None: unbounded)."""

    ge: Optional[float] = None
    gt: Optional[float] = None
    le: Optional[float] = None
    lt: Optional[float] = None

    def holds(self, value: float) -> bool:
        """Whether ``value`` is within the bounds."""
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self) -> str:
        """The bounds in words: ``> 0``, ``in [0, 1)``, ``>= 1``."""
        low = (self.ge, "[") if self.ge is not None else (self.gt, "(") if self.gt is not None else None
        high = (self.le, "]") if self.le is not None else (self.lt, ")") if self.lt is not None else None
        if low and high:
            return f"in {low[1]}{_fmt(low[0])}, {_fmt(high[0])}{high[1]}"
        if low:
            return f"{'>=' if low[1] == '[' else '>'} {_fmt(low[0])}"
        if high:
            return f"{'<=' if high[1] == ']' else '<'} {_fmt(high[0])}"
        return ""


@dataclass(frozen=True)
class Increasing:
    """A sequence whose items strictly increase."""

    def holds(self, value: Sequence[Any]) -> bool:
        """Whether every item is larger than the one before."""
        return all(b > a for a, b in zip(value, value[1:]))

    def describe(self) -> str:
        """In words."""
        return "strictly increasing"


@dataclass(frozen=True)
class NonEmpty:
    """A sequence or mapping with at least one item."""

    def holds(self, value: Sequence[Any]) -> bool:
        """Whether there is an item."""
        return len(value) > 0

    def describe(self) -> str:
        """In words."""
        return "not empty"


def same_length(first: str, second: str) -> Callable[[Dict[str, Any], str, Optional[str]], None]:
    """A relation for a registered callable: its list arguments ``first`` and ``second`` have the same length.

    Args:
        first: The argument whose length counts.
        second: The argument that must match it.

    Returns:
        ``check(section, key, file)``, raising OptionError naming ``<key>.<second>``.
    """

    def check(section: Dict[str, Any], key: str, file: Optional[str]) -> None:
        a, b = section.get(first), section.get(second)
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) != len(b):
            raise OptionError(
                f"expected {len(a)} values (one per {first} entry), got {len(b)}: {list(b)}",
                file,
                f"{key}.{second}" if key else second,
            )

    return check


PositiveInt = Annotated[int, Range(gt=0)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
Probability = Annotated[float, Range(ge=0, le=1)]
Decay = Annotated[float, Range(ge=0, lt=1)]
