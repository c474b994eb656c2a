"""EDSR super-resolution network (Lim et al., CVPR-W 2017), parameter names as in BasicSR."""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from mcir.archs.arch_util import (
    ArchBase,
    ResidualBlockNoBN,
    Upsample,
    make_layer,
    register_rgb_mean,
)
from mcir.constraints import NonNegativeInt, PositiveFloat, PositiveInt
from mcir.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class EDSR(ArchBase):
    """Enhanced Deep Residual network for single-image super-resolution.

    Input and output are RGB in [0, 1]. Internally the input is mean-shifted and scaled to
    ``img_range``. State-dict keys match BasicSR's EDSR, so its checkpoints load with ``strict=True``.

    Args:
        num_in_ch: Input channels.
        num_out_ch: Output channels.
        num_feat: Feature channels.
        num_block: Residual blocks in the trunk.
        upscale: Upsampling factor, a power of 2 or 3.
        res_scale: Factor on each residual branch (0.1 for the large EDSR).
        img_range: Range the normalised input is scaled to.
        rgb_mean: Per-channel mean subtracted from the input (DIV2K mean by default);
            one value or one per channel.
    """

    def __init__(
        self,
        num_in_ch: PositiveInt = 3,
        num_out_ch: PositiveInt = 3,
        num_feat: PositiveInt = 64,
        num_block: NonNegativeInt = 16,
        upscale: PositiveInt = 4,
        res_scale: float = 1.0,
        img_range: PositiveFloat = 255.0,
        rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040),
    ):
        super().__init__()
        register_rgb_mean(self, rgb_mean, num_in_ch, num_out_ch)
        self.upscale = int(upscale)
        self.img_range = float(img_range)

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(
            ResidualBlockNoBN, num_block, num_feat=num_feat, res_scale=res_scale, pytorch_init=True
        )
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(self.upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def checkpoint_blocks(self) -> List[nn.Module]:
        """The residual blocks of the trunk (``train.grad_checkpoint``)."""
        return list(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve a batch.

        Args:
            x: (N, num_in_ch, H, W) in [0, 1].

        Returns:
            (N, num_out_ch, H * upscale, W * upscale), roughly in [0, 1] (not clamped).
        """
        mean = self.mean.to(x)
        feat = self.conv_first((x - mean) * self.img_range)
        res = self.conv_after_body(self.body(feat)) + feat
        return self.conv_last(self.upsample(res)) / self.img_range + mean
