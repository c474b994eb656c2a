"""Swin Transformer building blocks: window partitioning, shift masks, window attention, and the block."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

_MASK_FILL = -100.0  # the official value; a finite fill keeps fully masked rows well defined


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """Cut (B, H, W, C) features into non-overlapping windows.

    Args:
        x: Features whose H and W are multiples of ``window``.
        window: Window side.

    Returns:
        (B * num_windows, window * window, C), windows in row-major order within each image.
    """
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`.

    Args:
        windows: (B * num_windows, window * window, C).
        window: Window side.
        h: Feature height.
        w: Feature width.

    Returns:
        (B, H, W, C) features.
    """
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """Additive attention mask that keeps tokens of different regions apart after the cyclic shift.

    Args:
        h: Feature height (a multiple of ``window``).
        w: Feature width (a multiple of ``window``).
        window: Window side.
        shift: Cyclic shift, 0 < shift < window.
        device: Where to build it.

    Returns:
        (num_windows, window * window, window * window) with 0 inside a region and -100 across regions.
    """
    # Label each pixel by the (row band, column band) it falls in before the roll; bands are
    # [0, h - window), [h - window, h - shift), [h - shift, h).
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    row_band = (rows >= h - window).long() + (rows >= h - shift).long()
    col_band = (cols >= w - window).long() + (cols >= w - shift).long()
    labels = (row_band[:, None] * 3 + col_band[None, :]).float()
    labels = window_partition(labels[None, :, :, None], window).squeeze(-1)  # (nW, N)
    diff = labels[:, None, :] - labels[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, _MASK_FILL)


def relative_position_index(window: int) -> torch.Tensor:
    """Index into the (2w-1)^2 relative-position bias table for every pair of tokens in a window.

    Args:
        window: Window side.

    Returns:
        (window^2, window^2) int64 tensor.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]) + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


def biased_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                     mask: Optional[torch.Tensor], scale: float, dropout_p: float = 0.0) -> torch.Tensor:
    """Softmax attention per window with an additive per-head bias and an optional per-window mask.

    Args:
        q: (B * num_windows, heads, N, head_dim) queries.
        k: (B * num_windows, heads, M, head_dim) keys.
        v: Values shaped like ``k``.
        bias: (heads, N, M) additive bias (relative positions).
        mask: (num_windows, N, M) additive mask shared by every image's windows, or None.
        scale: Logit scale.
        dropout_p: Dropout on the attention weights.

    Returns:
        (B * num_windows, heads, N, head_dim).
    """
    bw, heads, n, _ = q.shape
    if mask is not None:
        # Fold the windows of one image into the head axis, so the per-window mask broadcasts
        # over the batch without being copied B times.
        nw, m = mask.shape[0], k.shape[2]
        bias = (bias[None] + mask[:, None].to(bias.dtype)).reshape(1, nw * heads, n, m)
        q, k, v = (t.reshape(bw // nw, nw * heads, t.shape[2], -1) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=dropout_p, scale=scale)
    return out.reshape(bw, heads, n, -1)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias.

    Args:
        dim: Token channels.
        window_size: Window side.
        num_heads: Attention heads (must divide ``dim``).
        qkv_bias: Learn a bias for the query/key/value projection.
        qk_scale: Logit scale; ``None`` means ``head_dim ** -0.5``.
        attn_drop: Dropout on the attention weights.
        proj_drop: Dropout after the output projection.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # Persistent: the official checkpoints contain it.
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the bias table (the negative bank calls this for fresh random copies)."""
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend within each window.

        Args:
            x: (B * num_windows, N, C) tokens, N = window_size ** 2.
            mask: (num_windows, N, N) additive mask, or None.

        Returns:
            Tensor shaped like ``x``.
        """
        bw, n, c = x.shape
        heads = self.num_heads
        q, k, v = self.qkv(x).view(bw, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, heads).permute(2, 0, 1)  # (heads, N, N)
        out = biased_attention(q, k, v, bias, mask, self.scale, self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(bw, n, c)))


class Mlp(nn.Module):
    """Two-layer GELU feed-forward network (``fc1`` / ``fc2``, as in the official code).

    Args:
        dim: Channels in and out.
        hidden: Hidden channels.
        drop: Dropout after each linear layer.
    """

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (..., dim). Returns: tensor of the same shape."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SwinTransformerBlock(nn.Module):
    """(Shifted-)window attention and MLP, each pre-normed and residual.

    Args:
        dim: Token channels.
        input_resolution: Training feature size (H, W); the shift mask for it is stored as ``attn_mask``.
        num_heads: Attention heads.
        window_size: Window side (clamped to the training size when that is smaller, shift then 0).
        shift_size: Cyclic shift (0 for plain windows).
        mlp_ratio: MLP hidden channels / ``dim``.
        qkv_bias: Learn a query/key/value bias.
        qk_scale: Attention logit scale override.
        drop: Dropout after the projections.
        attn_drop: Dropout on attention weights.
        drop_path: Stochastic-depth rate of both residual branches.
    """

    def __init__(self, dim: int, input_resolution: Tuple[int, int], num_heads: int, window_size: int = 7,
                 shift_size: int = 0, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0):
        super().__init__()
        self.input_resolution = tuple(input_resolution)
        if min(self.input_resolution) <= window_size:
            # As the official code: one window covers the whole training patch, nothing to shift.
            window_size, shift_size = min(self.input_resolution), 0
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = StochasticDepth(drop_path, "row") if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        mask = shifted_window_mask(*self.input_resolution, window_size, shift_size) if shift_size > 0 else None
        # Persistent (and shaped by img_size) because the official checkpoints contain it.
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, H, W, C), H and W multiples of the window. Returns: tensor of the same shape."""
        _, h, w, c = x.shape
        y = self.norm1(x)
        mask = None
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            mask = self.attn_mask
            if (h, w) != self.input_resolution:
                mask = shifted_window_mask(h, w, self.window_size, self.shift_size, x.device)
        y = self.attn(window_partition(y, self.window_size), mask)
        y = window_reverse(y, self.window_size, h, w)
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))
