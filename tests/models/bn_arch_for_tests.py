"""A tiny residual network with BatchNorm, registered for the MCIR method tests (float buffers that move)."""

from __future__ import annotations

import torch
from torch import nn

from mcir.archs.arch_util import ArchBase
from mcir.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class TinyBNNetForTests(ArchBase):
    """conv → BatchNorm → ReLU → conv, plus the input: its BatchNorm running statistics change on every
    training forward, so averaging buffers (and leaving them alone) can be observed.

    Args:
        num_feat: Hidden channels.
    """

    def __init__(self, num_feat: int = 8):
        super().__init__()
        self.conv_in = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.bn = nn.BatchNorm2d(num_feat)
        self.conv_out = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch (same size as the input)."""
        return x + self.conv_out(torch.relu(self.bn(self.conv_in(x))))
