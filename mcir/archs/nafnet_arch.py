"""NAFNet (Chen et al., ECCV 2022), optionally with the test-time local converter TLC (Chu et al., ECCV 2022)."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mcir.constraints import NonNegativeInt, PositiveInt
from mcir.archs.arch_util import ArchBase
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY


def local_avg_pool(x: torch.Tensor, kernel_size: Tuple[int, int]) -> torch.Tensor:
    """Mean over a ``kernel_size`` window around each pixel, same size as ``x`` (TLC's local statistics).

    Windows never leave the image: the valid-window means are computed from an integral image and the
    border is filled by replicating the nearest valid mean. When the kernel covers the whole feature map
    the result is the global mean, shaped (N, C, 1, 1).

    Args:
        x: (N, C, H, W) features.
        kernel_size: (kh, kw) window in pixels; clipped to the feature size.

    Returns:
        (N, C, H, W) local means, or (N, C, 1, 1) when the window covers the whole map.
    """
    h, w = x.shape[-2:]
    if kernel_size[0] >= h and kernel_size[1] >= w:
        return F.adaptive_avg_pool2d(x, 1)
    kh, kw = min(h, kernel_size[0]), min(w, kernel_size[1])
    # An integral image costs O(HW) whatever the window; avg_pool2d would cost O(HW·kh·kw), and TLC
    # windows are hundreds of pixels wide. Accumulate in at least float32 so half precision stays accurate.
    acc = x.to(torch.promote_types(x.dtype, torch.float32))
    s = F.pad(acc.cumsum(-1).cumsum(-2), (1, 0, 1, 0))
    out = (s[..., kh:, kw:] + s[..., :-kh, :-kw] - s[..., :-kh, kw:] - s[..., kh:, :-kw]) / (kh * kw)
    dh, dw = h - out.shape[-2], w - out.shape[-1]
    out = F.pad(out, (dw // 2, (dw + 1) // 2, dh // 2, (dh + 1) // 2), mode="replicate")
    return out.to(x.dtype)


class LocalAvgPool2d(nn.Module):
    """Global average pooling while training; :func:`local_avg_pool` with a fixed window in eval mode.

    Args:
        kernel_size: (kh, kw) window used in eval mode.
    """

    def __init__(self, kernel_size: Tuple[int, int]):
        super().__init__()
        self.kernel_size = (int(kernel_size[0]), int(kernel_size[1]))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W). Returns: (N, C, 1, 1) in training, local means in eval mode."""
        if self.training:
            return F.adaptive_avg_pool2d(x, 1)
        return local_avg_pool(x, self.kernel_size)


class LayerNorm2d(nn.Module):
    """Layer norm over the channels of an (N, C, H, W) tensor, with per-channel affine ``weight``/``bias``.

    Written out rather than permuting for ``F.layer_norm``: the permuted result would be channels-last
    and silently change the memory format of every following convolution.

    Args:
        channels: C.
        eps: Added to the variance.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W). Returns: normalised tensor of the same shape."""
        mu = x.mean(1, keepdim=True)
        var = (x - mu).pow(2).mean(1, keepdim=True)
        y = (x - mu) / (var + self.eps).sqrt()
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    """Split the channels in two halves and multiply them (NAFNet's replacement for activations)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, 2C, H, W). Returns: (N, C, H, W)."""
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """NAFNet block: norm, 1x1 conv, 3x3 depthwise conv, SimpleGate, simplified channel attention, 1x1 conv,
    then a gated 1x1 feed-forward; both branches are scaled by learned per-channel factors (zero at start).

    Args:
        c: Channels in and out.
        pool_kernel: None for global average pooling in the channel attention; (kh, kw) for TLC's local
            pooling in eval mode.
    """

    def __init__(self, c: int, pool_kernel: Optional[Tuple[int, int]] = None):
        super().__init__()
        dw = 2 * c  # NAFNet's DW_Expand = FFN_Expand = 2
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        pool = nn.AdaptiveAvgPool2d(1) if pool_kernel is None else LocalAvgPool2d(pool_kernel)
        self.sca = nn.Sequential(pool, nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Args: inp: (N, c, H, W). Returns: tensor of the same shape."""
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        x = self.conv3(x * self.sca(x))
        y = inp + x * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


def _train_hw(train_size: Sequence[int]) -> Tuple[int, int]:
    """(H, W) from ``train_size`` given as (N, C, H, W) like the official code, or (H, W)."""
    if len(train_size) not in (2, 4) or any(isinstance(v, bool) or int(v) != v or v < 1 for v in train_size):
        raise OptionError(f"must be (N, C, H, W) or (H, W) positive integers, got {list(train_size)}", key="train_size")
    return int(train_size[-2]), int(train_size[-1])


@ARCH_REGISTRY.register()
class NAFNet(ArchBase):
    """Nonlinear-activation-free U-Net for image restoration (deblurring, denoising).

    Parameter names match megvii-research/NAFNet, so its released checkpoints load with ``strict=True``.
    Any input size works: the input is zero-padded to a multiple of ``2 ** len(enc_blk_nums)`` and the
    output cropped back, as in the official code. The network predicts a residual added to the input.

    With ``tlc=True`` (Test-time Local Converter, megvii-research/TLC) every channel-attention pooling uses,
    in eval mode, the mean over a local window instead of the whole image: the window is 1.5x the
    feature size seen when training on ``train_size`` crops (official ``NAFNetLocal`` with
    ``fast_imp=False``), so statistics at test time match those seen in training on large images.
    Training behaviour is unchanged (global pooling; on ``train_size`` crops both are the same).
    Parameters are identical with and without TLC.

    Args:
        img_channel: Input and output channels.
        width: Channels of the first level (doubled at each downsampling).
        middle_blk_num: Blocks at the lowest resolution.
        enc_blk_nums: Blocks per encoder level.
        dec_blk_nums: Blocks per decoder level (as many levels as the encoder).
        tlc: Use TLC's local pooling in eval mode.
        train_size: Training crop size, (N, C, H, W) as in the official code or (H, W); sets TLC's windows.
    """

    def __init__(
        self,
        img_channel: PositiveInt = 3,
        width: PositiveInt = 16,
        middle_blk_num: NonNegativeInt = 1,
        enc_blk_nums: Sequence[NonNegativeInt] = (),
        dec_blk_nums: Sequence[NonNegativeInt] = (),
        tlc: bool = False,
        train_size: Tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (1, 3, 256, 256),
    ):
        super().__init__()
        if len(enc_blk_nums) != len(dec_blk_nums):
            raise OptionError(
                f"has {len(dec_blk_nums)} levels but enc_blk_nums has {len(enc_blk_nums)}; they must match",
                key="dec_blk_nums",
            )
        if width < 1 or img_channel < 1:
            raise OptionError(f"width and img_channel must be >= 1, got {width} and {img_channel}", key="width")
        levels = len(enc_blk_nums)
        self.padder_size = 2**levels
        self.tlc = bool(tlc)
        th, tw = _train_hw(train_size)
        # The official converter fixes each window on a forward pass at train_size: feature size at that
        # level (input padded to padder_size) times base_size / train size, with base_size = 1.5x.
        ph = math.ceil(th / self.padder_size) * self.padder_size
        pw = math.ceil(tw / self.padder_size) * self.padder_size
        base_h, base_w = int(th * 1.5), int(tw * 1.5)

        def block(chan: int, level: int) -> NAFBlock:
            kernel = None
            if self.tlc:
                kernel = ((ph >> level) * base_h // th, (pw >> level) * base_w // tw)
            return NAFBlock(chan, kernel)

        encoders, downs, ups, decoders = [], [], [], []
        chan = width
        for level, num in enumerate(enc_blk_nums):
            encoders.append(nn.Sequential(*[block(chan, level) for _ in range(num)]))
            downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        middle = nn.Sequential(*[block(chan, levels) for _ in range(middle_blk_num)])
        for i, num in enumerate(dec_blk_nums):
            ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            decoders.append(nn.Sequential(*[block(chan, levels - 1 - i) for _ in range(num)]))
        # Registered in the official order, so parameters() (and optimizer states) line up with it too.
        self.intro = nn.Conv2d(img_channel, width, 3, padding=1)
        self.ending = nn.Conv2d(width, img_channel, 3, padding=1)
        self.encoders = nn.ModuleList(encoders)
        self.decoders = nn.ModuleList(decoders)
        self.middle_blks = middle
        self.ups = nn.ModuleList(ups)
        self.downs = nn.ModuleList(downs)

    def checkpoint_blocks(self) -> List[nn.Module]:
        """Every NAFBlock of the encoders, the middle and the decoders (``train.grad_checkpoint``)."""
        stages = [*self.encoders, self.middle_blks, *self.decoders]
        return [blk for stage in stages for blk in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch.

        Args:
            x: (N, img_channel, H, W) in [0, 1], any H and W.

        Returns:
            (N, img_channel, H, W), roughly in [0, 1] (not clamped).
        """
        h, w = x.shape[-2:]
        inp = F.pad(x, (0, (-w) % self.padder_size, 0, (-h) % self.padder_size))
        feat = self.intro(inp)
        skips = []
        for encoder, down in zip(self.encoders, self.downs):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle_blks(feat)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            feat = decoder(up(feat) + skip)
        out = self.ending(feat) + inp
        return out[..., :h, :w]


@ARCH_REGISTRY.register()
class NAFNetLocal(NAFNet):
    """NAFNet with TLC on by default: the official test-time class name, so NAFNet option files port.

    Args:
        img_channel: Input and output channels.
        width: Channels of the first level.
        middle_blk_num: Blocks at the lowest resolution.
        enc_blk_nums: Blocks per encoder level.
        dec_blk_nums: Blocks per decoder level.
        tlc: Use TLC's local pooling in eval mode.
        train_size: Training crop size (N, C, H, W) or (H, W).
    """

    def __init__(
        self,
        img_channel: PositiveInt = 3,
        width: PositiveInt = 16,
        middle_blk_num: NonNegativeInt = 1,
        enc_blk_nums: Sequence[NonNegativeInt] = (),
        dec_blk_nums: Sequence[NonNegativeInt] = (),
        tlc: bool = True,
        train_size: Tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (1, 3, 256, 256),
    ):
        super().__init__(img_channel, width, middle_blk_num, enc_blk_nums, dec_blk_nums, tlc, train_size)
