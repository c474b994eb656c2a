"""SwinIR (Liang et al., ICCV-W 2021): shifted-window transformer for restoration, loading the official weights."""

from __future__ import annotations

import math
from typing import List, Literal, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mcir.constraints import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from mcir.archs.arch_util import Upsample
from mcir.archs.swin_sr_base import SwinSRBase, check_swin_layout, image_pair
from mcir.archs.swin_blocks import SwinTransformerBlock
from mcir.errors import DataError, OptionError
from mcir.registry import ARCH_REGISTRY

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
RESI_CONNECTIONS = ("1conv", "3conv")


def _conv_lrelu(dim: int, num_feat: int) -> nn.Sequential:
    """3x3 conv to the reconstruction width, then LeakyReLU (slope 0.01, as the official code)."""
    return nn.Sequential(nn.Conv2d(dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))


def _conv_block(dim: int, resi_connection: str) -> nn.Module:
    """The convolution closing each residual group and the body: one 3x3, or a 3x3-1x1-3x3 bottleneck."""
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    return nn.Sequential(
        nn.Conv2d(dim, dim // 4, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(dim // 4, dim // 4, 1, 1, 0), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(dim // 4, dim, 3, 1, 1),
    )


class ResidualGroup(nn.Module):
    """A stack of Swin blocks (alternating plain and shifted windows), held as ``blocks``.

    Args:
        blocks: The blocks, in order.
        use_checkpoint: Recompute each block in the backward pass to save memory.
    """

    def __init__(self, blocks: List[SwinTransformerBlock], use_checkpoint: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.use_checkpoint = use_checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, H, W, C). Returns: tensor of the same shape."""
        for blk in self.blocks:
            x = checkpoint(blk, x, use_reentrant=False) if self.use_checkpoint and x.requires_grad else blk(x)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks, a convolution, and a skip connection.

    Args:
        blocks: The group's Swin blocks.
        dim: Channels.
        resi_connection: ``1conv`` or ``3conv``.
        use_checkpoint: Gradient checkpointing per block.
    """

    def __init__(self, blocks: List[SwinTransformerBlock], dim: int, resi_connection: str, use_checkpoint: bool):
        super().__init__()
        self.residual_group = ResidualGroup(blocks, use_checkpoint)
        self.conv = _conv_block(dim, resi_connection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, H, W, C). Returns: tensor of the same shape."""
        y = self.residual_group(x).permute(0, 3, 1, 2)
        return self.conv(y).permute(0, 2, 3, 1) + x


class PatchEmbed(nn.Module):
    """Optional LayerNorm over the pixel tokens (SwinIR embeds single pixels; only the norm has weights).

    Args:
        dim: Channels.
        norm: Whether to normalise.
    """

    def __init__(self, dim: int, norm: bool):
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, H, W, C). Returns: tensor of the same shape."""
        return self.norm(x) if self.norm is not None else x


@ARCH_REGISTRY.register()
class SwinIR(SwinSRBase):
    """SwinIR for super-resolution (classical, lightweight, real-world), denoising and JPEG artefact removal.

    State-dict names, shapes and outputs match ``models/network_swinir.py`` of JingyunLiang/SwinIR, so the
    released ``.pth`` files load with ``strict=True`` when ``img_size`` is the one the model was built
    with there (48 or 64 for SR, 128 for denoising, 126 for JPEG): the stored shift masks have that size.
    Inputs of any size work (reflect-padded to a multiple of ``window_size``, output cropped back).

    Args:
        img_size: Training LR patch size (int or [H, W]); fixes the stored masks' shapes.
        patch_size: Must be 1 (the official code embeds single pixels).
        in_chans: Input and output channels.
        embed_dim: Transformer channels.
        depths: Swin blocks per residual group.
        num_heads: Attention heads per residual group.
        window_size: Attention window side.
        mlp_ratio: MLP hidden channels / ``embed_dim``.
        qkv_bias: Learn a query/key/value bias.
        qk_scale: Attention logit scale override (``None``: head_dim ** -0.5).
        drop_rate: Dropout after embeddings and projections.
        attn_drop_rate: Dropout on attention weights.
        drop_path_rate: Largest stochastic-depth rate (linear over all blocks; official default 0.1).
        ape: Learn an absolute position embedding (then inputs must pad to ``img_size``).
        patch_norm: LayerNorm after the embedding.
        use_checkpoint: Gradient checkpointing per block (saves memory, costs time).
        upscale: Scale factor; 1 for ``upsampler: ''``.
        img_range: Range the mean-shifted input is scaled to (1 or 255).
        upsampler: ``pixelshuffle`` (classical SR), ``pixelshuffledirect`` (lightweight SR),
            ``nearest+conv`` (real-world SR, x2/x4) or ``''`` / ``null`` (denoising / JPEG: residual output).
        resi_connection: ``1conv`` or ``3conv`` (bottleneck) after each residual group.
    """

    def __init__(
        self,
        img_size: Union[PositiveInt, Tuple[PositiveInt, PositiveInt]] = 64,
        patch_size: PositiveInt = 1,
        in_chans: PositiveInt = 3,
        embed_dim: PositiveInt = 96,
        depths: Sequence[NonNegativeInt] = (6, 6, 6, 6),
        num_heads: Sequence[PositiveInt] = (6, 6, 6, 6),
        window_size: PositiveInt = 7,
        mlp_ratio: PositiveFloat = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[PositiveFloat] = None,
        drop_rate: Probability = 0.0,
        attn_drop_rate: Probability = 0.0,
        drop_path_rate: Probability = 0.1,
        ape: bool = False,
        patch_norm: bool = True,
        use_checkpoint: bool = False,
        upscale: PositiveInt = 2,
        img_range: PositiveFloat = 1.0,
        upsampler: Optional[Literal["", "pixelshuffle", "pixelshuffledirect", "nearest+conv"]] = "",
        resi_connection: Literal["1conv", "3conv"] = "1conv",
    ):
        super().__init__()
        upsampler = upsampler or ""
        self._check(patch_size, embed_dim, depths, num_heads, window_size, upscale, upsampler, resi_connection)
        resolution = image_pair(img_size, "img_size")
        self.upscale = int(upscale)
        self.upsampler = upsampler
        self.window_size = window_size
        self.img_range = float(img_range)
        self.patches_resolution = resolution
        mean = [0.4488, 0.4371, 0.4040] if in_chans == 3 else [0.0]  # DIV2K mean, as the official code
        # Not in the state dict (the official model keeps it out), but follows .to() and .half().
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        num_feat = 64

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, patch_norm)
        self.absolute_pos_embed = (
            nn.Parameter(torch.zeros(1, resolution[0] * resolution[1], embed_dim)) if ape else None
        )
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            blocks = [
                SwinTransformerBlock(
                    embed_dim, resolution, heads, window_size, 0 if j % 2 == 0 else window_size // 2, mlp_ratio,
                    qkv_bias, qk_scale, drop_rate, attn_drop_rate, rates[sum(depths[:i]) + j],
                )
                for j in range(depth)
            ]
            self.layers.append(RSTB(blocks, embed_dim, resi_connection, use_checkpoint))
        # The blocks shrink their window to a training patch smaller than it; pad to suit both.
        self._pad_multiple = math.lcm(window_size, self.layers[0].residual_group.blocks[0].window_size)
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _conv_block(embed_dim, resi_connection)

        if upsampler == "pixelshuffle":
            self.conv_before_upsample = _conv_lrelu(embed_dim, num_feat)
            self.upsample = Upsample(self.upscale, num_feat)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(embed_dim, self.upscale**2 * in_chans, 3, 1, 1), nn.PixelShuffle(self.upscale)
            )
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = _conv_lrelu(embed_dim, num_feat)
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            if self.upscale == 4:
                self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)
        else:
            self.conv_last = nn.Conv2d(embed_dim, in_chans, 3, 1, 1)
        self.apply(self._init_weights)
        if self.absolute_pos_embed is not None:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)

    @staticmethod
    def _check(patch_size: int, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int], window_size: int,
               upscale: int, upsampler: str, resi_connection: str) -> None:
        """Reject settings the official code would build wrongly or fail on later."""
        check_swin_layout("SwinIR", patch_size, embed_dim, depths, num_heads)
        if window_size < 1:
            raise OptionError("must be >= 1", key="window_size")
        if upsampler not in UPSAMPLERS:
            raise OptionError(f"must be one of {list(UPSAMPLERS)}, got {upsampler!r}", key="upsampler")
        if resi_connection not in RESI_CONNECTIONS:
            raise OptionError(f"must be one of {list(RESI_CONNECTIONS)}, got {resi_connection!r}",
                              key="resi_connection")
        if upsampler == "" and upscale != 1:
            raise OptionError("must be 1 without an upsampler (denoising / JPEG)", key="upscale")
        if upsampler == "nearest+conv" and upscale not in (2, 4):
            raise OptionError("nearest+conv supports 2 and 4", key="upscale")
        if upscale < 1:
            raise OptionError("must be >= 1", key="upscale")

    def checkpoint_blocks(self) -> List[nn.Module]:
        """Every Swin block of every residual group (``train.grad_checkpoint``)."""
        return [blk for layer in self.layers for blk in layer.residual_group.blocks]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features: residual Swin groups on (B, C, H, W), returned in the same layout."""
        x = self.patch_embed(x.permute(0, 2, 3, 1))
        if self.absolute_pos_embed is not None:
            if tuple(x.shape[1:3]) != self.patches_resolution:
                raise DataError(
                    f"SwinIR with ape=true needs inputs padded to img_size {self.patches_resolution}, "
                    f"got {tuple(x.shape[1:3])}"
                )
            x = x + self.absolute_pos_embed.view(1, *self.patches_resolution, -1)
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).permute(0, 3, 1, 2)
