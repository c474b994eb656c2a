"""Losses, registered in ``LOSS_REGISTRY``, and ``build_loss``."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from torch import nn

# Imported for their registration side effect.
from mcir.losses import (  # noqa: F401
    ccr_loss,
    contrastive_loss,
    perceptual_loss,
    pixel_loss,
    psnr_loss,
    ssim_loss,
    vgg_features,
)
from mcir.registry import LOSS_REGISTRY, construct

__all__ = ["LOSS_REGISTRY", "build_loss"]


def build_loss(cfg: Mapping[str, Any], key: str, file: Optional[str] = None) -> nn.Module:
    """Build the loss of a validated option section (``mcir.options.build_checked`` checks a hand-written one).

    Args:
        cfg: Section with ``type`` (a registered loss name) and constructor arguments. Not mutated.
        key: Dotted option path of the section (``train.pixel_opt``), for messages.
        file: Option file, for messages.

    Returns:
        The constructed loss module.
    """
    return construct(LOSS_REGISTRY, cfg, key, file)
