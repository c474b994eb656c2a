"""Network architectures, registered in ``ARCH_REGISTRY``, and ``build_network``.

Conventions every architecture follows (the registry-generated tests check them):

* It is an ``nn.Module`` registered with ``@ARCH_REGISTRY.register()``, with explicit keyword
  constructor arguments (no ``**kwargs``), so option files can be checked against its signature.
* ``self.upscale: int``: output size / input size (1 for restoration tasks).
* ``self.size_multiple: int``: input height and width must be multiples of this (1 if any size works).
* ``requires_training: bool`` (class attribute): ``False`` for parameter-free baselines such as
  ``Bicubic`` and ``Identity``; the trainer refuses to train those.
* Input and output are float images in [0, 1] shaped (N, C, H, W); the output is not clamped.

Subclassing ``mcir.archs.arch_util.ArchBase`` supplies the defaults (``upscale=1``,
``size_multiple=1``, ``requires_training=True``).
"""

from __future__ import annotations

import inspect
from typing import Any, Dict, Optional

from torch import nn

# Imported for their registration side effect.
from mcir.archs import edsr_arch, simple_arch  # noqa: F401
from mcir.archs import dehazeformer_arch, ffanet_arch, idt_arch, nafnet_arch, swinir_arch  # noqa: F401
from mcir.archs import restormer_arch  # noqa: F401
from mcir.registry import ARCH_REGISTRY, build_from_registry, signature_kwargs

__all__ = ["ARCH_REGISTRY", "arch_kwargs", "build_network"]


def build_network(cfg: Dict[str, Any], key: str = "network_g", file: Optional[str] = None) -> nn.Module:
    """Build the network described by an option section.

    Args:
        cfg: Section with ``type`` (a registered arch name) and constructor arguments. Not mutated.
        key: Dotted option path of the section, used in error messages (``network_g.num_feat``).
        file: Option file, for error messages.

    Returns:
        The constructed network.

    Raises:
        OptionError: Unknown type, unknown/missing argument (naming the closest valid one), or a
            value the architecture rejects.
    """
    return build_from_registry(ARCH_REGISTRY, cfg, key, file=file)


def arch_kwargs(name: str) -> Dict[str, inspect.Parameter]:
    """Constructor arguments of a registered architecture, for the options validator.

    Args:
        name: Registered arch name (``EDSR``).

    Returns:
        Argument name -> ``inspect.Parameter`` (default in ``.default``, annotation in ``.annotation``).
    """
    return signature_kwargs(ARCH_REGISTRY.get(name))
