"""Building blocks shared by architectures, and checked construction of registered classes."""

from __future__ import annotations

import difflib
import inspect
import math
import typing
from typing import Any, Dict, Optional

import torch
from torch import nn

from mcir.errors import OptionError, RegistryError
from mcir.registry import Registry


class ArchBase(nn.Module):
    """Base class holding the attributes every mcir architecture declares.

    Subclasses set ``self.upscale`` in their constructor and override the class
    attributes below when they differ.
    """

    #: Whether the network has something to learn; the trainer refuses to train it otherwise.
    requires_training: bool = True
    #: Input height and width must be multiples of this.
    size_multiple: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.upscale: int = 1


@torch.no_grad()
def default_init_weights(module: nn.Module, scale: float = 1.0, bias_fill: float = 0.0) -> None:
    """Kaiming-normal initialise every conv/linear layer in ``module``, then scale the weights.

    A scale below 1 keeps deep residual stacks close to identity at the start of training.

    Args:
        module: Module whose ``Conv2d`` and ``Linear`` children are re-initialised in place.
        scale: Factor applied to the initialised weights.
        bias_fill: Value written into every bias.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            m.weight.mul_(scale)
            if m.bias is not None:
                m.bias.fill_(bias_fill)


class ResidualBlockNoBN(nn.Module):
    """conv-ReLU-conv residual block without batch norm: ``x + res_scale * conv2(relu(conv1(x)))``.

    Args:
        num_feat: Channels in and out.
        res_scale: Factor applied to the residual branch.
        pytorch_init: Keep PyTorch's default initialisation instead of scaled Kaiming (scale 0.1).
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0, pytorch_init: bool = False):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        if not pytorch_init:
            default_init_weights(self, scale=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, num_feat, H, W). Returns: tensor of the same shape."""
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


def make_layer(block: type, num_blocks: int, **kwargs: Any) -> nn.Sequential:
    """Stack ``num_blocks`` fresh instances of ``block(**kwargs)``.

    Args:
        block: Module class to instantiate.
        num_blocks: How many to stack.
        kwargs: Constructor arguments for every block.

    Returns:
        An ``nn.Sequential`` whose children are named ``0 .. num_blocks-1``.
    """
    return nn.Sequential(*[block(**kwargs) for _ in range(num_blocks)])


class Upsample(nn.Sequential):
    """Sub-pixel upsampler: (conv to 4x channels + PixelShuffle(2)) per x2 step, or one x3 step.

    Args:
        scale: 2**n or 3.
        num_feat: Feature channels in and out.
    """

    def __init__(self, scale: int, num_feat: int):
        layers = []
        if scale >= 1 and (scale & (scale - 1)) == 0:
            for _ in range(int(math.log2(scale))):
                layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
        else:
            raise OptionError(f"upscale {scale} is not supported; use a power of 2 or 3", key="upscale")
        super().__init__(*layers)


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
    except Exception:  # noqa: BLE001 - unresolvable annotations are only cosmetic here
        hints = {}
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return {
        n: p.replace(annotation=hints.get(n, p.annotation))
        for n, p in params.items()
        if p.kind not in skip and n != "self"
    }


def build_checked(registry: Registry, cfg: Dict[str, Any], key: str, file: Optional[str] = None) -> Any:
    """Build ``registry.get(cfg['type'])(**rest)``, turning bad options into ``OptionError``.

    Unknown keyword arguments are reported as ``<key>.<kwarg>`` with the closest valid name;
    missing required ones are listed; ``OptionError`` raised by the constructor gets ``key`` prefixed.

    Args:
        registry: Where to look up ``cfg['type']``.
        cfg: Option section with ``type`` and constructor arguments. Not mutated.
        key: Dotted option path of ``cfg`` (e.g. ``network_g``).
        file: Option file, for error messages.

    Returns:
        The constructed object.
    """
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise OptionError("needs a 'type'", file=file, key=key)
    try:
        cls = registry.get(cfg["type"])
    except RegistryError as exc:
        raise RegistryError(exc.message, file=file, key=f"{key}.type") from exc
    kwargs = {k: v for k, v in cfg.items() if k != "type"}
    params = signature_kwargs(cls)
    takes_var_kwargs = any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in inspect.signature(cls).parameters.values()
    )
    if not takes_var_kwargs:
        for name in kwargs:
            if name not in params:
                close = difflib.get_close_matches(str(name), list(params), n=1, cutoff=0.5)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                valid = ", ".join(params) or "none"
                raise OptionError(
                    f"{cfg['type']} has no argument '{name}'{hint} (valid: {valid})",
                    file=file,
                    key=f"{key}.{name}",
                )
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kwargs]
    if missing:
        raise OptionError(f"{cfg['type']} needs argument(s): {', '.join(missing)}", file=file, key=key)
    try:
        return cls(**kwargs)
    except OptionError as exc:
        if exc.key and not exc.key.startswith(f"{key}."):
            raise OptionError(exc.message, file=exc.file or file, key=f"{key}.{exc.key}") from exc
        raise
