"""HAT building blocks: window and overlapping cross-attention, channel-attention block, HAB, OCAB, RHAG."""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from mcir.archs.rcan_arch import ChannelAttention
from mcir.archs.swin_blocks import Mlp, biased_attention, window_partition, window_reverse


def overlap_position_index(window: int, overlap_window: int) -> torch.Tensor:
    """Index into OCAB's ``(window + overlap_window - 1)^2`` bias table for each (query, key) pair.

    Reproduces the official ``calculate_rpi_oca`` values exactly, negative entries included: the
    offset it adds does not make every index non-negative, and tensor indexing wraps those around the
    end of the table. The map from relative offsets to table rows stays one-to-one.

    Args:
        window: Query window side.
        overlap_window: Key/value window side (``window + int(overlap_ratio * window)``).

    Returns:
        (window^2, overlap_window^2) int64 tensor.
    """
    def coords(side: int) -> torch.Tensor:
        return torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")).flatten(1)

    rel = coords(overlap_window)[:, None, :] - coords(window)[:, :, None] + (window - overlap_window + 1)
    return rel[0] * (window + overlap_window - 1) + rel[1]


class WindowAttention(nn.Module):
    """Window self-attention with a relative-position bias whose index the caller passes in (one per network).

    Args:
        dim: Token channels.
        window_size: Window side.
        num_heads: Attention heads.
        qkv_bias: Learn a query/key/value bias.
        qk_scale: Logit scale override (``None``: head_dim ** -0.5).
        attn_drop: Dropout on the attention weights.
        proj_drop: Dropout after the output projection.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the bias table (truncated normal, std 0.02)."""
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Attend within each window.

        Args:
            x: (B * num_windows, N, C) tokens.
            rpi: (N, N) relative-position index.
            mask: (num_windows, N, N) additive shift mask, or None.

        Returns:
            Tensor shaped like ``x``.
        """
        bw, n, c = x.shape
        heads = self.num_heads
        q, k, v = self.qkv(x).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[rpi.view(-1)].view(n, n, heads).permute(2, 0, 1)
        out = biased_attention(q, k, v, bias, mask, self.scale, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))


class CAB(nn.Module):
    """Channel-attention block, held as ``cab``: 3x3 conv squeezing by ``compress_ratio``, GELU, 3x3 conv, CA.

    Args:
        num_feat: Channels.
        compress_ratio: Hidden channels are ``num_feat // compress_ratio``.
        squeeze_factor: Channel-attention squeeze factor.
    """

    def __init__(self, num_feat: int, compress_ratio: int = 3, squeeze_factor: int = 30):
        super().__init__()
        hidden = num_feat // compress_ratio
        self.cab = nn.Sequential(
            nn.Conv2d(num_feat, hidden, 3, 1, 1), nn.GELU(), nn.Conv2d(hidden, num_feat, 3, 1, 1),
            ChannelAttention(num_feat, squeeze_factor),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, num_feat, H, W). Returns: tensor of the same shape."""
        return self.cab(x)


class HAB(nn.Module):
    """Hybrid attention block: (shifted-)window attention plus a scaled CAB branch, then an MLP.

    Args:
        dim: Token channels.
        num_heads: Attention heads.
        window_size: Window side.
        shift_size: Cyclic shift (0 for plain windows).
        compress_ratio: CAB compression.
        squeeze_factor: CAB channel-attention squeeze factor.
        conv_scale: Factor on the CAB branch.
        mlp_ratio: MLP hidden channels / ``dim``.
        qkv_bias: Learn a query/key/value bias.
        qk_scale: Logit scale override.
        drop: Dropout after the projections.
        attn_drop: Dropout on attention weights.
        drop_path: Stochastic-depth rate of both residual branches.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int, compress_ratio: int,
                 squeeze_factor: int, conv_scale: float, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop: float, attn_drop: float, drop_path: float):
        super().__init__()
        self.window_size, self.shift_size, self.conv_scale = window_size, shift_size, conv_scale
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.conv_block = CAB(dim, compress_ratio, squeeze_factor)
        self.drop_path = StochasticDepth(drop_path, "row") if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Args: x: (B, H, W, C), H and W multiples of the window; rpi: (N, N) index; mask: shift mask.

        Returns: tensor shaped like ``x``.
        """
        _, h, w, _ = x.shape
        y = self.norm1(x)
        conv = self.conv_block(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        s = self.shift_size
        if s > 0:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        y = self.attn(window_partition(y, self.window_size), rpi, mask if s > 0 else None)
        y = window_reverse(y, self.window_size, h, w)
        if s > 0:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + self.drop_path(y) + conv * self.conv_scale
        return x + self.drop_path(self.mlp(self.norm2(x)))


class OCAB(nn.Module):
    """Overlapping cross-attention block: window queries attend to larger, overlapping key/value windows.

    Args:
        dim: Token channels.
        window_size: Query window side.
        overlap_ratio: Key/value windows are ``window_size + int(overlap_ratio * window_size)`` wide.
        num_heads: Attention heads.
        qkv_bias: Learn a query/key/value bias.
        qk_scale: Logit scale override.
        mlp_ratio: MLP hidden channels / ``dim``.
    """

    def __init__(self, dim: int, window_size: int, overlap_ratio: float, num_heads: int, qkv_bias: bool,
                 qk_scale: Optional[float], mlp_ratio: float):
        super().__init__()
        self.window_size = window_size
        self.overlap_win_size = int(window_size * overlap_ratio) + window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        side = window_size + self.overlap_win_size - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(side * side, num_heads))
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the bias table (truncated normal, std 0.02)."""
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, rpi: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, H, W, C), H and W multiples of the window; rpi: (window^2, overlap^2) index.

        Returns: tensor shaped like ``x``.
        """
        b, h, w, c = x.shape
        ws, ows, heads = self.window_size, self.overlap_win_size, self.num_heads
        q, kv = self.qkv(self.norm1(x)).split((c, 2 * c), dim=-1)
        q = window_partition(q, ws).view(-1, ws * ws, heads, c // heads).transpose(1, 2)
        # Overlapping windows of zero-padded keys/values: (B, 2C*ows*ows, nW) -> 2 x (B*nW, heads, ows^2, d).
        kv = F.unfold(kv.permute(0, 3, 1, 2), ows, padding=(ows - ws) // 2, stride=ws)
        kv = kv.view(b, 2, heads, c // heads, ows * ows, -1).permute(1, 0, 5, 2, 4, 3)
        k, v = kv.reshape(2, -1, heads, ows * ows, c // heads).unbind(0)
        bias = self.relative_position_bias_table[rpi.view(-1)].view(ws * ws, ows * ows, heads).permute(2, 0, 1)
        out = biased_attention(q, k, v, bias, None, self.scale)
        out = window_reverse(out.transpose(1, 2).reshape(-1, ws * ws, c), ws, h, w)
        x = self.proj(out) + x
        return x + self.mlp(self.norm2(x))


class AttenBlocks(nn.Module):
    """The HABs of one group (``blocks``, plain and shifted windows alternating) and its OCAB (``overlap_attn``).

    Args:
        blocks: The HABs, in order.
        overlap_attn: The closing OCAB.
    """

    def __init__(self, blocks: List[HAB], overlap_attn: OCAB):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.overlap_attn = overlap_attn

    def forward(self, x: torch.Tensor, rpi_sa: torch.Tensor, rpi_oca: torch.Tensor,
                mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Args: x: (B, H, W, C); rpi_sa / rpi_oca: position indices; mask: shift mask. Returns: like ``x``."""
        for blk in self.blocks:
            x = blk(x, rpi_sa, mask)
        return self.overlap_attn(x, rpi_oca)


class RHAG(nn.Module):
    """Residual hybrid attention group: HABs, an OCAB, a 3x3 conv (or identity), and a skip connection.

    Args:
        residual_group: The group's attention blocks.
        conv: The closing convolution (``nn.Identity`` for ``resi_connection: identity``).
    """

    def __init__(self, residual_group: AttenBlocks, conv: nn.Module):
        super().__init__()
        self.residual_group = residual_group
        self.conv = conv

    def forward(self, x: torch.Tensor, rpi_sa: torch.Tensor, rpi_oca: torch.Tensor,
                mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Args: x: (B, H, W, C); rpi_sa / rpi_oca: position indices; mask: shift mask. Returns: like ``x``."""
        y = self.residual_group(x, rpi_sa, rpi_oca, mask).permute(0, 3, 1, 2)
        return self.conv(y).permute(0, 2, 3, 1) + x
