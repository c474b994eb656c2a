"""Network architectures, registered in ``ARCH_REGISTRY``, and ``build_network``.

Conventions every architecture follows (the registry-generated tests check them):

* It is an ``nn.Module`` registered with ``@ARCH_REGISTRY.register()``, with explicit keyword
  constructor arguments (no ``**kwargs``), so option files can be checked against its signature.
* ``self.upscale: int``: output size / input size (1 for restoration tasks).
* ``self.size_multiple: int``: input height and width must be multiples of this (1 if any size works).
* ``requires_training: bool`` (class attribute): ``False`` for parameter-free baselines such as
  ``Bicubic`` and ``Identity``; the trainer refuses to train those.
* Input and output are float images in [0, 1] shaped (N, C, H, W); the output is not clamped.
* Optionally ``checkpoint_blocks()``: the repeatable blocks ``train.grad_checkpoint`` recomputes in the
  backward pass (``mcir.archs.grad_checkpoint``); archs without it cannot use that option.

Subclassing ``mcir.archs.arch_util.ArchBase`` supplies the defaults (``upscale=1``,
``size_multiple=1``, ``requires_training=True``).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from torch import nn

# Imported for their registration side effect.
from mcir.archs import edsr_arch, simple_arch  # noqa: F401
from mcir.archs import dehazeformer_arch, ffanet_arch, idt_arch, nafnet_arch, swinir_arch  # noqa: F401
from mcir.archs import hat_arch, rcan_arch, restormer_arch  # noqa: F401
from mcir.registry import ARCH_REGISTRY, construct

__all__ = ["ARCH_REGISTRY", "build_network"]


def build_network(cfg: Mapping[str, Any], key: str = "network_g", file: Optional[str] = None) -> nn.Module:
    """Build the network of a validated ``network_g``-style section.

    Option files are checked when they are loaded; check a hand-written section with
    ``mcir.options.build_checked(ARCH_REGISTRY, cfg)`` instead.

    Args:
        cfg: Section with ``type`` (a registered arch name) and constructor arguments. Not mutated.
        key: Dotted option path of the section, for messages of the constructor's own checks.
        file: Option file, for messages.

    Returns:
        The constructed network.
    """
    return construct(ARCH_REGISTRY, cfg, key, file)
