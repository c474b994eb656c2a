"""FFA-Net, Feature Fusion Attention network for single-image dehazing (Qin et al., AAAI 2020)."""

from __future__ import annotations

from typing import List

import torch
from torch import nn

from mcir.constraints import PositiveInt
from mcir.archs.arch_util import ArchBase
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY

#: Per-channel mean and std the official RESIDE data loader normalises the hazy input with.
RESIDE_MEAN = (0.64, 0.6, 0.58)
RESIDE_STD = (0.14, 0.15, 0.152)


def _conv(cin: int, cout: int, kernel_size: int) -> nn.Conv2d:
    """Same-size convolution with bias."""
    return nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)


class PALayer(nn.Module):
    """Pixel attention: one sigmoid weight per pixel, ``x * sigmoid(conv(relu(conv(x))))``.

    Args:
        channel: Input channels (squeezed to channel // 8 in between).
    """

    def __init__(self, channel: int):
        super().__init__()
        self.pa = nn.Sequential(
            nn.Conv2d(channel, channel // 8, 1), nn.ReLU(inplace=True), nn.Conv2d(channel // 8, 1, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W). Returns: x weighted per pixel."""
        return x * self.pa(x)


class CALayer(nn.Module):
    """Channel attention: one sigmoid weight per channel from globally pooled features.

    Args:
        channel: Input channels (squeezed to channel // 8 in between).
    """

    def __init__(self, channel: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.ca = nn.Sequential(
            nn.Conv2d(channel, channel // 8, 1), nn.ReLU(inplace=True), nn.Conv2d(channel // 8, channel, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W). Returns: x weighted per channel."""
        return x * self.ca(self.avg_pool(x))


class FFABlock(nn.Module):
    """Basic block: conv-ReLU with a local skip, conv, channel then pixel attention, residual connection.

    Args:
        dim: Channels.
        kernel_size: Convolution kernel size.
    """

    def __init__(self, dim: int, kernel_size: int):
        super().__init__()
        self.conv1 = _conv(dim, dim, kernel_size)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = _conv(dim, dim, kernel_size)
        self.calayer = CALayer(dim)
        self.palayer = PALayer(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, dim, H, W). Returns: tensor of the same shape."""
        res = self.act1(self.conv1(x)) + x
        res = self.palayer(self.calayer(self.conv2(res)))
        return res + x


class FFAGroup(nn.Module):
    """Group architecture: ``blocks`` basic blocks and a conv, with a residual connection.

    Args:
        dim: Channels.
        kernel_size: Convolution kernel size.
        blocks: Basic blocks in the group.
    """

    def __init__(self, dim: int, kernel_size: int, blocks: int):
        super().__init__()
        self.gp = nn.Sequential(*[FFABlock(dim, kernel_size) for _ in range(blocks)], _conv(dim, dim, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, dim, H, W). Returns: tensor of the same shape."""
        return self.gp(x) + x


@ARCH_REGISTRY.register()
class FFANet(ArchBase):
    """FFA-Net: ``gps`` cascaded groups whose outputs are fused with learned channel weights, then pixel
    attention, two convolutions and a global skip from the input.

    Parameter names match zhilin007/FFA-Net (``net/models/FFA.py``, class ``FFA``), so its checkpoints load
    with ``strict=True`` (their ``'model'`` entry; the ``module.`` prefix is stripped by mcir's loader).
    Fully convolutional without downsampling: any input size works.

    Input normalisation (``input_norm``): the official data loader feeds the network the hazy image
    normalised with the RESIDE mean (0.64, 0.6, 0.58) and std (0.14, 0.15, 0.152), while the loss compares
    the output with the *unnormalised* clear image. With ``input_norm=True`` this module applies that
    normalisation itself to its [0, 1] input, so released weights and the official recipe work in mcir's
    [0, 1] pipeline. The output is not mapped back: the network learns to produce the clear image in
    [0, 1] directly (its global skip adds the normalised input, as in the official code). With the
    default ``False`` the input goes in unchanged.

    Args:
        gps: Number of groups (3 in the paper; the official class only allows 3).
        blocks: Basic blocks per group (19 in the paper).
        dim: Feature channels (64 in the official code; at least 16).
        input_norm: Normalise the input with the official RESIDE mean/std (see above).
    """

    def __init__(self, gps: PositiveInt = 3, blocks: PositiveInt = 19, dim: PositiveInt = 64, input_norm: bool = False):
        super().__init__()
        if gps < 1:
            raise OptionError(f"must be >= 1, got {gps}", key="gps")
        if blocks < 0:
            raise OptionError(f"must be >= 0, got {blocks}", key="blocks")
        if dim < 16:
            raise OptionError(f"must be >= 16 (the fusion attention squeezes to dim // 16), got {dim}", key="dim")
        self.gps = int(gps)
        self.dim = int(dim)
        self.input_norm = bool(input_norm)
        # Buffers (not persistent, like the official code which has none) follow .to(device) and .half().
        self.register_buffer("mean", torch.tensor(RESIDE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(RESIDE_STD).view(1, 3, 1, 1), persistent=False)
        kernel_size = 3
        for i in range(self.gps):
            self.add_module(f"g{i + 1}", FFAGroup(self.dim, kernel_size, blocks))
        self.ca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(self.dim * self.gps, self.dim // 16, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(self.dim // 16, self.dim * self.gps, 1),
            nn.Sigmoid(),
        )
        self.palayer = PALayer(self.dim)
        self.pre = nn.Sequential(_conv(3, self.dim, kernel_size))
        self.post = nn.Sequential(_conv(self.dim, self.dim, kernel_size), _conv(self.dim, 3, kernel_size))

    def _groups(self) -> List[nn.Module]:
        return [getattr(self, f"g{i + 1}") for i in range(self.gps)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dehaze a batch.

        Args:
            x: (N, 3, H, W) hazy images in [0, 1].

        Returns:
            (N, 3, H, W) clear images, roughly in [0, 1] (not clamped).
        """
        if self.input_norm:
            x = (x - self.mean.to(x)) / self.std.to(x)
        feat = self.pre(x)
        outs = []
        for group in self._groups():
            feat = group(feat)
            outs.append(feat)
        w = self.ca(torch.cat(outs, dim=1)).view(-1, self.gps, self.dim, 1, 1)
        fused = w[:, 0] * outs[0]
        for i in range(1, self.gps):
            fused = fused + w[:, i] * outs[i]
        return self.post(self.palayer(fused)) + x
