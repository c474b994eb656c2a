"""Losses, registered in ``LOSS_REGISTRY``, and ``build_loss``."""

from __future__ import annotations

from typing import Any, Dict, Optional

from torch import nn

# Imported for their registration side effect.
from mcir.losses import (  # noqa: F401
    ccr_loss,
    contrastive_loss,
    perceptual_loss,
    pixel_loss,
    psnr_loss,
    spn_loss,
    ssim_loss,
    vgg_features,
)
from mcir.registry import LOSS_REGISTRY, build_from_registry

__all__ = ["LOSS_REGISTRY", "build_loss"]


def build_loss(cfg: Dict[str, Any], key: str, file: Optional[str] = None) -> nn.Module:
    """Build the loss described by an option section.

    Args:
        cfg: Section with ``type`` (a registered loss name) and constructor arguments. Not mutated.
        key: Dotted option path of the section (``train.pixel_opt``), used in error messages.
        file: Option file, for error messages.

    Returns:
        The constructed loss module.

    Raises:
        OptionError: Unknown type, unknown/missing argument (naming the closest valid one), or a
            value the loss rejects (e.g. ``train.pixel_opt.reduction``).
    """
    return build_from_registry(LOSS_REGISTRY, cfg, key, file=file)
