"""RCAN (Zhang et al., ECCV 2018): residual channel-attention network, with BasicSR's names and state dict."""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from mcir.archs.arch_util import ArchBase, Upsample, make_layer, register_rgb_mean
from mcir.constraints import NonNegativeInt, PositiveFloat, PositiveInt
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: ``x * sigmoid(conv(relu(conv(avgpool(x)))))``.

    Held as ``attention`` (pool, conv, ReLU, conv, sigmoid), the layout of BasicSR's and HAT's modules.

    Args:
        num_feat: Channels.
        squeeze_factor: The hidden layer has ``num_feat // squeeze_factor`` channels.
    """

    def __init__(self, num_feat: int, squeeze_factor: int = 16):
        super().__init__()
        hidden = num_feat // squeeze_factor
        self.attention = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(num_feat, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, num_feat, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, num_feat, H, W). Returns: tensor of the same shape."""
        return x * self.attention(x)


class RCAB(nn.Module):
    """Residual channel-attention block: ``x + res_scale * CA(conv(relu(conv(x))))``, held as ``rcab``.

    Args:
        num_feat: Channels.
        squeeze_factor: Channel-attention squeeze factor.
        res_scale: Factor on the residual branch.
    """

    def __init__(self, num_feat: int, squeeze_factor: int = 16, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.rcab = nn.Sequential(
            nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(num_feat, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, num_feat, H, W). Returns: tensor of the same shape."""
        return self.rcab(x) * self.res_scale + x


class ResidualGroup(nn.Module):
    """``num_block`` RCABs (``residual_group``) and a 3x3 conv (``conv``), with a skip connection.

    Args:
        num_feat: Channels.
        num_block: RCABs in the group.
        squeeze_factor: Channel-attention squeeze factor.
        res_scale: Factor on each RCAB's residual branch.
    """

    def __init__(self, num_feat: int, num_block: int, squeeze_factor: int = 16, res_scale: float = 1.0):
        super().__init__()
        self.residual_group = make_layer(
            RCAB, num_block, num_feat=num_feat, squeeze_factor=squeeze_factor, res_scale=res_scale
        )
        self.conv = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, num_feat, H, W). Returns: tensor of the same shape."""
        return self.conv(self.residual_group(x)) + x


@ARCH_REGISTRY.register()
class RCAN(ArchBase):
    """Residual Channel Attention Network for super-resolution.

    Constructor arguments and state-dict names are those of BasicSR's ``basicsr/archs/rcan_arch.py``, so its
    checkpoints (and ``RCAN_BIX4-official.pth``, converted by BasicSR from the authors' release) load with
    ``strict=True``; outputs match BasicSR's module given the same weights. Any input size works (convolutions
    only). The published RCAN uses ``num_block: 20``; BasicSR's default is 16.

    Args:
        num_in_ch: Input channels.
        num_out_ch: Output channels.
        num_feat: Feature channels.
        num_group: Residual groups.
        num_block: RCABs per residual group.
        squeeze_factor: Channel-attention squeeze factor.
        upscale: Upsampling factor, a power of 2 or 3.
        res_scale: Factor on each RCAB's residual branch.
        img_range: Range the mean-shifted input is scaled to.
        rgb_mean: Per-channel mean subtracted from the input (DIV2K mean); one value or one per channel.
    """

    def __init__(
        self,
        num_in_ch: PositiveInt = 3,
        num_out_ch: PositiveInt = 3,
        num_feat: PositiveInt = 64,
        num_group: NonNegativeInt = 10,
        num_block: NonNegativeInt = 16,
        squeeze_factor: PositiveInt = 16,
        upscale: PositiveInt = 4,
        res_scale: float = 1.0,
        img_range: PositiveFloat = 255.0,
        rgb_mean: Sequence[float] = (0.4488, 0.4371, 0.4040),
    ):
        super().__init__()
        register_rgb_mean(self, rgb_mean, num_in_ch, num_out_ch)
        if not 1 <= squeeze_factor <= num_feat:
            raise OptionError(f"must be in [1, num_feat={num_feat}], got {squeeze_factor}", key="squeeze_factor")
        self.upscale = int(upscale)
        self.img_range = float(img_range)
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(
            ResidualGroup, num_group, num_feat=num_feat, num_block=num_block, squeeze_factor=squeeze_factor,
            res_scale=res_scale,
        )
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(self.upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def checkpoint_blocks(self) -> List[nn.Module]:
        """The residual groups (``train.grad_checkpoint``): each keeps only its input for the backward pass.

        Groups rather than single RCABs: 200 small blocks would keep 200 inputs, a group recomputes 20.
        """
        return list(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Super-resolve a batch.

        Args:
            x: (N, num_in_ch, H, W) in [0, 1], any H and W.

        Returns:
            (N, num_out_ch, H * upscale, W * upscale), roughly in [0, 1] (not clamped).
        """
        mean = self.mean.to(x)
        feat = self.conv_first((x - mean) * self.img_range)
        res = self.conv_after_body(self.body(feat)) + feat
        return self.conv_last(self.upsample(res)) / self.img_range + mean
