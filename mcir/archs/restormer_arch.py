"""Restormer (Zamir et al., CVPR 2022): a U-shaped transformer with channel attention, for restoration."""

from __future__ import annotations

from typing import Literal, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mcir.constraints import NonNegativeInt, PositiveFloat, PositiveInt
from mcir.archs.arch_util import ArchBase
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY

LAYER_NORM_TYPES = ("WithBias", "BiasFree")
#: Three 2x downsamplings: inputs are padded to a multiple of 2**3.
PAD_MULTIPLE = 8


class _ChannelNorm(nn.Module):
    """Layer norm over the channels of every pixel of a (N, C, H, W) map (variance without correction).

    Args:
        dim: Channels.
        with_bias: Learn a bias and subtract the mean (``WithBias``); otherwise only divide by the
            standard deviation about the mean and scale (``BiasFree``).
    """

    def __init__(self, dim: int, with_bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W). Returns: the normalised map, same shape."""
        var = x.var(1, keepdim=True, unbiased=False)
        scale = self.weight.view(1, -1, 1, 1)
        if self.bias is None:
            return x / torch.sqrt(var + 1e-5) * scale
        return (x - x.mean(1, keepdim=True)) / torch.sqrt(var + 1e-5) * scale + self.bias.view(1, -1, 1, 1)


class LayerNorm(nn.Module):
    """The official wrapper module (parameters under ``body.``).

    Args:
        dim: Channels.
        LayerNorm_type: ``WithBias`` or ``BiasFree``.
    """

    def __init__(self, dim: int, LayerNorm_type: str):  # noqa: N803 - the official argument name
        super().__init__()
        self.body = _ChannelNorm(dim, with_bias=LayerNorm_type != "BiasFree")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, C, H, W). Returns: same shape."""
        return self.body(x)


class FeedForward(nn.Module):
    """Gated depth-wise-conv feed-forward network (GDFN): ``out(gelu(a) * b)`` with ``a, b = dw(in(x))``.

    Args:
        dim: Channels in and out.
        ffn_expansion_factor: Hidden channels = ``int(dim * factor)``.
        bias: Biases in the convolutions.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, 2 * hidden, 1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, dim, H, W). Returns: same shape."""
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class Attention(nn.Module):
    """Multi-Dconv-head transposed attention (MDTA): attention across channels, linear in pixel count.

    Args:
        dim: Channels (a multiple of ``num_heads``).
        num_heads: Heads; each attends among its ``dim / num_heads`` channels.
        bias: Biases in the convolutions.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(3 * dim, 3 * dim, 3, padding=1, groups=3 * dim, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, dim, H, W). Returns: same shape."""
        n, c, h, w = x.shape
        heads = [t.reshape(n, self.num_heads, c // self.num_heads, h * w)
                 for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)]
        q, k, v = F.normalize(heads[0], dim=-1), F.normalize(heads[1], dim=-1), heads[2]
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(n, c, h, w))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm1(x))``, then ``+ ffn(norm2(.))``.

    Args:
        dim: Channels.
        num_heads: Attention heads.
        ffn_expansion_factor: GDFN hidden-channel factor.
        bias: Biases in the convolutions.
        LayerNorm_type: ``WithBias`` or ``BiasFree``.
    """

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool,
                 LayerNorm_type: str):  # noqa: N803 - the official argument name
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, dim, H, W). Returns: same shape."""
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 convolution from image to feature channels (no bias, as in the official code).

    Args:
        in_c: Image channels.
        embed_dim: Feature channels.
    """

    def __init__(self, in_c: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, in_c, H, W). Returns: (N, embed_dim, H, W)."""
        return self.proj(x)


class Downsample(nn.Module):
    """Halve the resolution, double the channels: 3x3 conv to ``n_feat/2`` then pixel-unshuffle by 2.

    Args:
        n_feat: Input channels.
    """

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, n_feat, H, W). Returns: (N, 2 n_feat, H/2, W/2)."""
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the channels: 3x3 conv to ``2 n_feat`` then pixel-shuffle by 2.

    Args:
        n_feat: Input channels.
    """

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, n_feat, H, W). Returns: (N, n_feat/2, 2H, 2W)."""
        return self.body(x)


@ARCH_REGISTRY.register()
class Restormer(ArchBase):
    """Restormer with the official constructor arguments and parameter names (swz30/Restormer), so its
    released checkpoints (``params``) load with ``strict=True``.

    Four levels (channels ``dim · 2**level``) of transformer blocks, a refinement stage at full resolution
    with ``2 · dim`` channels, and a global residual (``output(...) + input``). Any input size works: the
    input is reflect-padded (replicated where it is too small to reflect) at the bottom/right to a multiple
    of 8 and the output cropped back, which is what the official test scripts do around the network.

    Args:
        inp_channels: Input channels (6 for dual-pixel defocus deblurring: both views stacked).
        out_channels: Output channels.
        dim: Channels of the first level.
        num_blocks: Transformer blocks per level (4 levels; decoder levels repeat the encoder's counts).
        num_refinement_blocks: Blocks of the refinement stage.
        heads: Attention heads per level; ``dim · 2**level`` must be a multiple of ``heads[level]``.
        ffn_expansion_factor: GDFN hidden-channel factor.
        bias: Biases in the blocks' convolutions (the embedding and resampling convs never have one).
        LayerNorm_type: ``WithBias`` (subtract the mean, learn a bias) or ``BiasFree``.
        dual_pixel_task: Dual-pixel defocus deblurring: a 1x1 skip from the embedding replaces the image
            residual (set ``inp_channels: 6``).
    """

    def __init__(
        self,
        inp_channels: PositiveInt = 3,
        out_channels: PositiveInt = 3,
        dim: PositiveInt = 48,
        num_blocks: Tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (4, 6, 6, 8),
        num_refinement_blocks: NonNegativeInt = 4,
        heads: Tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt] = (1, 2, 4, 8),
        ffn_expansion_factor: PositiveFloat = 2.66,
        bias: bool = False,
        LayerNorm_type: Literal["WithBias", "BiasFree"] = "WithBias",  # noqa: N803 - the official argument name
        dual_pixel_task: bool = False,
    ):
        super().__init__()
        _check_args(inp_channels, out_channels, dim, num_blocks, heads, LayerNorm_type, dual_pixel_task)
        chans = [dim * 2**level for level in range(4)]

        def stage(channels: int, n_heads: int, count: int) -> nn.Sequential:
            return nn.Sequential(*[
                TransformerBlock(channels, n_heads, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(count)
            ])

        # Registered in the official order, so parameters() (and optimizer states) line up with it.
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = stage(chans[0], heads[0], num_blocks[0])
        self.down1_2 = Downsample(chans[0])
        self.encoder_level2 = stage(chans[1], heads[1], num_blocks[1])
        self.down2_3 = Downsample(chans[1])
        self.encoder_level3 = stage(chans[2], heads[2], num_blocks[2])
        self.down3_4 = Downsample(chans[2])
        self.latent = stage(chans[3], heads[3], num_blocks[3])
        self.up4_3 = Upsample(chans[3])
        self.reduce_chan_level3 = nn.Conv2d(chans[3], chans[2], 1, bias=bias)
        self.decoder_level3 = stage(chans[2], heads[2], num_blocks[2])
        self.up3_2 = Upsample(chans[2])
        self.reduce_chan_level2 = nn.Conv2d(chans[2], chans[1], 1, bias=bias)
        self.decoder_level2 = stage(chans[1], heads[1], num_blocks[1])
        self.up2_1 = Upsample(chans[1])  # level 1 keeps the concatenated 2·dim channels (no reduction)
        self.decoder_level1 = stage(chans[1], heads[0], num_blocks[0])
        self.refinement = stage(chans[1], heads[0], num_refinement_blocks)
        self.dual_pixel_task = bool(dual_pixel_task)
        if self.dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, chans[1], 1, bias=bias)
        self.output = nn.Conv2d(chans[1], out_channels, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch.

        Args:
            x: (N, inp_channels, H, W) in [0, 1], any H and W.

        Returns:
            (N, out_channels, H, W), roughly in [0, 1] (not clamped).
        """
        h, w = x.shape[-2:]
        inp = _pad(x, PAD_MULTIPLE)
        emb = self.patch_embed(inp)
        enc1 = self.encoder_level1(emb)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        feat = self.latent(self.down3_4(enc3))
        feat = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(feat), enc3], 1)))
        feat = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(feat), enc2], 1)))
        feat = self.refinement(self.decoder_level1(torch.cat([self.up2_1(feat), enc1], 1)))
        if self.dual_pixel_task:
            out = self.output(feat + self.skip_conv(emb))
        else:
            out = self.output(feat) + inp
        return out[..., :h, :w]


def _pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right to ``multiple``: reflect as the official test scripts, replicate when too small."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")


def _check_args(
    inp_channels: int,
    out_channels: int,
    dim: int,
    num_blocks: Sequence[int],
    heads: Sequence[int],
    layer_norm_type: str,
    dual_pixel_task: bool,
) -> None:
    """Reject constructor arguments the network cannot be built or run with (OptionError naming the key)."""
    if min(inp_channels, out_channels, dim) < 1:
        raise OptionError(f"inp_channels, out_channels and dim must be >= 1, got "
                          f"{inp_channels}, {out_channels}, {dim}", key="dim")
    for key, values in (("num_blocks", num_blocks), ("heads", heads)):
        if len(values) != 4:
            raise OptionError(f"needs 4 values (one per level), got {list(values)}", key=key)
    for level, n_heads in enumerate(heads):
        if n_heads < 1 or (dim * 2**level) % n_heads:
            raise OptionError(
                f"heads[{level}] = {n_heads} does not divide the {dim * 2**level} channels of level {level + 1}",
                key="heads",
            )
    if layer_norm_type not in LAYER_NORM_TYPES:
        raise OptionError(f"must be one of {', '.join(LAYER_NORM_TYPES)}, got {layer_norm_type!r}",
                          key="LayerNorm_type")
    if not dual_pixel_task and inp_channels != out_channels:
        raise OptionError(
            f"the image residual needs inp_channels == out_channels ({inp_channels} != {out_channels}); "
            "dual_pixel_task: true has no residual", key="out_channels",
        )
