"""Named degradations with validated parameters, and pipelines built from option lists of them.

An option list such as ``[{type: gaussian_noise, sigma: [0, 50]}, {type: jpeg, quality: 40}]`` is checked
once (names, parameter names, types and ranges, as :class:`OptionError` naming ``degradations[i].<param>``)
and becomes a :class:`DegradationPipeline`; a ``[low, high]`` value is drawn per image from the generator the
pipeline is called with.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mcir.data.degradations import (
    bicubic_downscale,
    gaussian_noise,
    haze,
    jpeg_compression,
    motion_blur,
    rain,
)
from mcir.errors import OptionError

__all__ = ["DEGRADATIONS", "Param", "DegradationSpec", "Degradation", "DegradationPipeline", "build_pipeline"]

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One degradation parameter: its type, allowed values and default.

    Args:
        kind: ``float``, ``int``, ``bool`` or ``choice``.
        default: Default value (a scalar, a ``(low, high)`` range, or :data:`REQUIRED`).
        low: Smallest allowed value (numbers).
        high: Largest allowed value (numbers).
        choices: Allowed values (``choice``).
        sampled: Whether a ``[low, high]`` range (or a list of choices) may be given, drawn per image.
    """

    kind: str
    default: Any = REQUIRED
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Tuple[str, ...] = ()
    sampled: bool = True


@dataclass(frozen=True)
class DegradationSpec:
    """A named degradation: ``fn(img, rng, **params)`` and its parameters.

    Args:
        fn: The degradation function.
        params: Parameter name -> :class:`Param`.
        doc: One-line description (for listings).
    """

    fn: Callable[..., np.ndarray]
    params: Mapping[str, Param] = field(default_factory=dict)
    doc: str = ""


#: Named degradations usable in a dataset's ``degradations:`` list (read-only).
DEGRADATIONS: Mapping[str, DegradationSpec] = MappingProxyType(
    {
        "gaussian_noise": DegradationSpec(
            gaussian_noise,
            {"sigma": Param("float", low=0.0, high=255.0), "clip": Param("bool", False, sampled=False)},
            "additive white Gaussian noise, sigma in 0-255 units",
        ),
        "jpeg": DegradationSpec(
            jpeg_compression, {"quality": Param("int", low=1, high=100)}, "OpenCV JPEG encode/decode at a quality"
        ),
        "motion_blur": DegradationSpec(
            motion_blur,
            {
                "kernel_size": Param("int", low=1, high=101),
                "angle": Param("float", (0.0, 180.0), low=-360.0, high=360.0),
                "kind": Param("choice", "line", choices=("line", "trajectory")),
            },
            "uniform motion blur with a line or random-trajectory kernel",
        ),
        "haze": DegradationSpec(
            haze,
            {
                "beta": Param("float", (0.6, 1.8), low=0.0, high=10.0),
                "airlight": Param("float", (0.7, 1.0), low=0.0, high=1.0),
                "depth": Param("choice", "ramp", choices=("ramp", "smooth", "uniform")),
            },
            "atmospheric scattering with a depth proxy",
        ),
        "rain": DegradationSpec(
            rain,
            {
                "density": Param("float", (0.002, 0.008), low=0.0, high=1.0),
                "length": Param("int", (15, 40), low=1, high=201),
                "angle": Param("float", (60.0, 120.0), low=-360.0, high=360.0),
                "width": Param("float", 1.0, low=0.0, high=5.0),
                "intensity": Param("float", (0.5, 0.9), low=0.0, high=1.0),
            },
            "additive rain streaks (sparse noise smeared along a direction)",
        ),
        "bicubic": DegradationSpec(
            bicubic_downscale,
            {"scale": Param("int", low=1, high=16, sampled=False), "quantize": Param("bool", True, sampled=False)},
            "MATLAB-bicubic down-scaling by an integer factor",
        ),
    }
)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_scalar(p: Param, value: Any, key: str) -> Any:
    """Check one fixed value of parameter ``p``; returns it converted (int stays int, float becomes float)."""
    if p.kind == "bool":
        if not isinstance(value, bool):
            raise OptionError(f"expected true or false, got {value!r}", key=key)
        return value
    if p.kind == "choice":
        if value not in p.choices:
            raise OptionError(f"must be one of {list(p.choices)}, got {value!r}", key=key)
        return value
    if not _is_number(value) or not math.isfinite(value):
        raise OptionError(f"expected a number, got {value!r}", key=key)
    if p.kind == "int":
        if float(value) != int(value):
            raise OptionError(f"expected an integer, got {value!r}", key=key)
        value = int(value)
    else:
        value = float(value)
    if (p.low is not None and value < p.low) or (p.high is not None and value > p.high):
        raise OptionError(f"{value!r} is outside the allowed range [{p.low}, {p.high}]", key=key)
    return value


def _check_value(p: Param, value: Any, key: str) -> Any:
    """A fixed value, a ``(low, high)`` range (numbers) or a tuple of choices, validated."""
    if not isinstance(value, (list, tuple)):
        return _check_scalar(p, value, key)
    if not p.sampled:
        raise OptionError(f"takes one value, not a list ({value!r})", key=key)
    items = tuple(_check_scalar(p, v, f"{key}[{i}]") for i, v in enumerate(value))
    if p.kind == "choice":
        if not items:
            raise OptionError("the list of choices is empty", key=key)
        return items
    if len(items) != 2 or items[0] > items[1]:
        raise OptionError(f"a range must be [low, high] with low <= high, got {list(value)!r}", key=key)
    return items


@dataclass(frozen=True)
class Degradation:
    """One configured degradation: a spec plus parameter values, each fixed or a range drawn per image.

    Args:
        name: Its name in :data:`mcir.data.degradations.DEGRADATIONS`.
        spec: The spec.
        params: Validated values: scalars, ``(low, high)`` ranges or tuples of choices.
    """

    name: str
    spec: DegradationSpec
    params: Mapping[str, Any]

    def sample(self, rng: np.random.Generator) -> Dict[str, Any]:
        """Draw concrete parameter values: uniform in ranges (integers inclusive), uniform among choices.

        Args:
            rng: Random generator.

        Returns:
            Parameter name -> value for this image.
        """
        out = {}
        for name, value in self.params.items():
            kind = self.spec.params[name].kind
            if not isinstance(value, tuple):
                out[name] = value
            elif kind == "choice":
                out[name] = value[int(rng.integers(len(value)))]
            elif kind == "int":
                out[name] = int(rng.integers(value[0], value[1] + 1))
            else:
                out[name] = float(rng.uniform(value[0], value[1]))
        return out

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade one image with freshly sampled parameters.

        Args:
            img: float32 HWC image in [0, 1].
            rng: Random generator (parameters are drawn first, then the degradation's own randomness).

        Returns:
            The degraded float32 image.
        """
        return self.spec.fn(img, rng, **self.sample(rng))

    def to_option(self) -> Dict[str, Any]:
        """The option dict this degradation was built from (ranges as lists)."""
        return {"type": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}}


def _build_one(cfg: Any, key: str) -> Degradation:
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise OptionError("each degradation must be a mapping with a 'type' (e.g. {type: jpeg, quality: 30})", key=key)
    name = cfg["type"]
    if name not in DEGRADATIONS:
        close = difflib.get_close_matches(str(name), list(DEGRADATIONS), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise OptionError(
            f"unknown degradation '{name}'{hint} (available: {', '.join(sorted(DEGRADATIONS))})", key=f"{key}.type"
        )
    spec = DEGRADATIONS[name]
    params = {}
    for k, v in cfg.items():
        if k == "type":
            continue
        if k not in spec.params:
            close = difflib.get_close_matches(str(k), list(spec.params), n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f" (valid: {', '.join(spec.params)})"
            raise OptionError(f"unknown parameter for degradation '{name}'{hint}", key=f"{key}.{k}")
        params[k] = _check_value(spec.params[k], v, f"{key}.{k}")
    for k, p in spec.params.items():
        if k not in params:
            if p.default is REQUIRED:
                raise OptionError(f"degradation '{name}' needs '{k}'", key=key)
            params[k] = p.default
    return Degradation(name, spec, params)


class DegradationPipeline:
    """Degradations applied in order; each draws its parameters (and noise) from the generator it is given.

    Args:
        degradations: The steps.
    """

    def __init__(self, degradations: Sequence[Degradation]):
        self.degradations: List[Degradation] = list(degradations)

    @property
    def scale(self) -> int:
        """Total down-scaling factor (product of the ``bicubic`` steps' scales; 1 without them)."""
        return math.prod(int(d.params["scale"]) for d in self.degradations if d.name == "bicubic")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Degrade one image.

        Args:
            img: float32 HWC image in [0, 1].
            rng: Random generator; the same generator state gives the same result.

        Returns:
            The degraded float32 image (``scale`` times smaller with ``bicubic`` steps).
        """
        for step in self.degradations:
            img = step(img, rng)
        return img

    def __len__(self) -> int:
        return len(self.degradations)

    def __repr__(self) -> str:
        return f"DegradationPipeline({[d.to_option() for d in self.degradations]})"


def build_pipeline(cfgs: Any, key: str = "degradations") -> DegradationPipeline:
    """Validate an option list of degradations and build the pipeline.

    Args:
        cfgs: A list of ``{type: <name>, <param>: value | [low, high] | [choice, ...]}`` mappings (a single
            mapping counts as a list of one).
        key: Option key of the list, for error messages (items are named ``<key>[i]``).

    Returns:
        The pipeline.
    """
    if isinstance(cfgs, Mapping):
        cfgs = [cfgs]
    if not isinstance(cfgs, (list, tuple)):
        raise OptionError(f"must be a list of degradations, got {type(cfgs).__name__}", key=key)
    return DegradationPipeline([_build_one(cfg, f"{key}[{i}]") for i, cfg in enumerate(cfgs)])
