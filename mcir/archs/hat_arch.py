"""HAT (Chen et al., CVPR 2023): hybrid attention transformer for super-resolution, loading the official weights."""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from mcir.constraints import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability
from mcir.archs.arch_util import Upsample
from mcir.archs.swin_sr_base import SwinSRBase, check_swin_layout, image_pair
from mcir.archs.hat_blocks import HAB, OCAB, RHAG, AttenBlocks, overlap_position_index
from mcir.archs.swin_blocks import relative_position_index, shifted_window_mask
from mcir.archs.swinir_arch import PatchEmbed
from mcir.errors import DataError, OptionError
from mcir.registry import ARCH_REGISTRY

UPSAMPLERS = ("pixelshuffle",)
RESI_CONNECTIONS = ("1conv", "identity")


@ARCH_REGISTRY.register()
class HAT(SwinSRBase):
    """Hybrid Attention Transformer for classical super-resolution (HAT-S, HAT, HAT-L are configurations).

    Constructor arguments (except the official ``norm_layer``, always LayerNorm) and state-dict names match
    ``hat/archs/hat_arch.py`` of XPixelGroup/HAT, so its released ``.pth`` files (``params_ema``) load with
    ``strict=True``, and outputs match the official network run through its test-time padding. Inputs of
    any size work: reflect-padded bottom/right to a multiple of ``window_size`` (as the official
    ``HATModel`` does before inference), output cropped back. The official code only implements
    ``upsampler: pixelshuffle`` (its default ``''`` returns the input) and needs an even overlap
    ``int(overlap_ratio * window_size)``, so its defaults are rejected here: set ``upsampler`` and
    ``window_size`` as the released configurations do (16 with ratio 0.5).

    Args:
        img_size: Training LR patch size (int or [H, W]); with ``window_size`` it fixes whether blocks shift.
        patch_size: Must be 1 (pixels are the tokens).
        in_chans: Input and output channels.
        embed_dim: Transformer channels.
        depths: HABs per residual group (6 groups for HAT, 12 for HAT-L).
        num_heads: Attention heads per residual group.
        window_size: Attention window side.
        compress_ratio: CAB compression (3; HAT-S: 24).
        squeeze_factor: CAB channel-attention squeeze factor (30; HAT-S: 24).
        conv_scale: Factor on the CAB branch.
        overlap_ratio: OCAB key/value window enlargement.
        mlp_ratio: MLP hidden channels / ``embed_dim``.
        qkv_bias: Learn a query/key/value bias.
        qk_scale: Attention logit scale override.
        drop_rate: Dropout after embeddings and projections.
        attn_drop_rate: Dropout on attention weights.
        drop_path_rate: Largest stochastic-depth rate (linear over all HABs).
        ape: Learn an absolute position embedding (then inputs must pad to ``img_size``).
        patch_norm: LayerNorm after the embedding.
        use_checkpoint: Recompute every HAB and OCAB in the backward pass while training (the official
            argument, which the official code ignores; same as ``train.grad_checkpoint``).
        upscale: Scale factor (2^n or 3).
        img_range: Range the mean-shifted input is scaled to.
        upsampler: ``pixelshuffle``.
        resi_connection: ``1conv`` or ``identity`` after each group and the body.
    """

    def __init__(
        self,
        img_size: Union[int, Sequence[int]] = 64,
        patch_size: PositiveInt = 1,
        in_chans: PositiveInt = 3,
        embed_dim: PositiveInt = 96,
        depths: Sequence[NonNegativeInt] = (6, 6, 6, 6),
        num_heads: Sequence[PositiveInt] = (6, 6, 6, 6),
        window_size: PositiveInt = 7,
        compress_ratio: PositiveInt = 3,
        squeeze_factor: PositiveInt = 30,
        conv_scale: float = 0.01,
        overlap_ratio: NonNegativeFloat = 0.5,
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
        upsampler: Optional[str] = "",
        resi_connection: str = "1conv",
    ):
        super().__init__()
        resolution = image_pair(img_size, "img_size")
        self._check(patch_size, embed_dim, depths, num_heads, window_size, compress_ratio, squeeze_factor,
                    overlap_ratio, resolution, upscale, upsampler or "", resi_connection)
        self.upscale = int(upscale)
        self.window_size = window_size
        self._pad_multiple = window_size
        self.upsampler = upsampler
        self.img_range = float(img_range)
        self.patches_resolution = resolution
        mean = [0.4488, 0.4371, 0.4040] if in_chans == 3 else [0.0]  # DIV2K mean, as the official code
        # Not in the state dict (the official model keeps it out), but follows .to() and .half().
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        # Persistent: the official checkpoints contain both.
        overlap = int(overlap_ratio * window_size) + window_size
        self.register_buffer("relative_position_index_SA", relative_position_index(window_size))
        self.register_buffer("relative_position_index_OCA", overlap_position_index(window_size, overlap))
        # As the official blocks: a training patch no larger than the window (only equal is valid) means
        # one window per patch and no shift.
        self.shift_size = window_size // 2 if min(resolution) > window_size else 0
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
                HAB(embed_dim, heads, window_size, 0 if j % 2 == 0 else self.shift_size, compress_ratio,
                    squeeze_factor, conv_scale, mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate,
                    rates[sum(depths[:i]) + j])
                for j in range(depth)
            ]
            ocab = OCAB(embed_dim, window_size, overlap_ratio, heads, qkv_bias, qk_scale, mlp_ratio)
            conv = nn.Conv2d(embed_dim, embed_dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()
            self.layers.append(RHAG(AttenBlocks(blocks, ocab), conv))
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = (
            nn.Conv2d(embed_dim, embed_dim, 3, 1, 1) if resi_connection == "1conv" else nn.Identity()
        )
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(embed_dim, num_feat, 3, 1, 1), nn.LeakyReLU(inplace=True))
        self.upsample = Upsample(self.upscale, num_feat)
        self.conv_last = nn.Conv2d(num_feat, in_chans, 3, 1, 1)
        self.apply(self._init_weights)
        if self.absolute_pos_embed is not None:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        if use_checkpoint:
            from mcir.archs.grad_checkpoint import enable_grad_checkpoint

            enable_grad_checkpoint(self, key="use_checkpoint")

    @staticmethod
    def _check(patch_size: int, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int], window_size: int,
               compress_ratio: int, squeeze_factor: int, overlap_ratio: float, resolution: Tuple[int, int],
               upscale: int, upsampler: str, resi_connection: str) -> None:
        """Reject settings the official code would build wrongly or fail on later."""
        check_swin_layout("HAT", patch_size, embed_dim, depths, num_heads)
        if window_size < 2:
            raise OptionError("must be >= 2", key="window_size")
        if min(resolution) < window_size:
            raise OptionError(f"must be at least window_size={window_size} (the official code fails otherwise)",
                              key="img_size")
        if int(overlap_ratio * window_size) % 2 or overlap_ratio < 0:
            raise OptionError(
                f"int(overlap_ratio * window_size) = {int(overlap_ratio * window_size)} must be even and >= 0: the "
                "official OCAB pads it equally on both sides (window_size 16 with overlap_ratio 0.5 is the "
                "released setting)", key="overlap_ratio")
        for name, value in (("compress_ratio", compress_ratio), ("squeeze_factor", squeeze_factor)):
            if not 1 <= value <= embed_dim:
                raise OptionError(f"must be in [1, embed_dim={embed_dim}], got {value}", key=name)
        if upsampler not in UPSAMPLERS:
            raise OptionError(f"must be one of {list(UPSAMPLERS)}, got {upsampler!r} (the official HAT has no "
                              "other reconstruction head)", key="upsampler")
        if resi_connection not in RESI_CONNECTIONS:
            raise OptionError(f"must be one of {list(RESI_CONNECTIONS)}, got {resi_connection!r}",
                              key="resi_connection")
        if upscale < 1:
            raise OptionError("must be >= 1", key="upscale")

    def checkpoint_blocks(self) -> List[nn.Module]:
        """Every HAB and every group's OCAB (``train.grad_checkpoint``)."""
        groups = [layer.residual_group for layer in self.layers]
        return [m for g in groups for m in (*g.blocks, g.overlap_attn)]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Deep features: the residual hybrid attention groups on (B, C, H, W), returned in the same layout."""
        h, w = x.shape[-2:]
        mask = None
        if self.shift_size > 0:
            mask = shifted_window_mask(h, w, self.window_size, self.shift_size, x.device)
        x = self.patch_embed(x.permute(0, 2, 3, 1))
        if self.absolute_pos_embed is not None:
            if (h, w) != self.patches_resolution:
                raise DataError(f"HAT with ape=true needs inputs padded to img_size {self.patches_resolution}, "
                                f"got {(h, w)}")
            x = x + self.absolute_pos_embed.view(1, h, w, -1)
        x = self.pos_drop(x)
        for layer in self.layers:
            x = layer(x, self.relative_position_index_SA, self.relative_position_index_OCA, mask)
        return self.norm(x).permute(0, 3, 1, 2)
