"""IDT, the Image De-raining Transformer (Xiao et al., TPAMI 2022), parameter names as in jiexiaou/IDT."""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import StochasticDepth

from mcir.constraints import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from mcir.archs.arch_util import ArchBase, transformer_init_weights
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY

# Per U-Net level (encoder 0-3, bottleneck, decoder 0-3): window blocks, spatial layer, relative-position
# clamp bound. Fixed in the official network (its ``depths`` only set the stochastic-depth rates).
_LEVEL_BLOCKS = (3, 3, 2, 2, 1, 1, 2, 2, 3)
_LEVEL_K_BOUND = (16, 8, 4, 2, 1, 2, 4, 8, 16)
_SPATIAL_WIN = 8  # pixels per side of the windows the spatial transformer attends between


def _drop_path(rate: float) -> nn.Module:
    """Per-sample stochastic depth (timm's DropPath), or identity for rate 0."""
    return StochasticDepth(rate, mode="row") if rate > 0 else nn.Identity()


def _relative_index(side: int, k_bound: int) -> Tensor:
    """Index into a (2k-1)^2 bias table for every token pair of a side x side grid, offsets clamped to +-(k-1)."""
    coords = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).clamp(-k_bound + 1, k_bound - 1) + (k_bound - 1)
    return rel[0] * (2 * k_bound - 1) + rel[1]


class _LinearProjection(nn.Module):
    """Q from ``to_q``; K, V and the position branch's V from ``to_kv`` (``dim`` each, ``heads`` heads)."""

    def __init__(self, dim: int, heads: int, bias: bool = True):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_kv = nn.Linear(dim, dim * 3, bias=bias)


class _WindowAttention(nn.Module):
    """Attention over a ``side`` x ``side`` token grid with a clamped (``k_bound``) relative-position bias table,
    plus a depth-wise conv position branch on a third V."""

    def __init__(self, dim: int, side: int, num_heads: int, qkv_bias: bool, qk_scale: Optional[float], k_bound: int):
        super().__init__()
        self.num_heads, self.side = num_heads, side
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * k_bound - 1) ** 2, num_heads))
        reach = min(side - 1, 2)
        self.Position_Extract = nn.Sequential(
            nn.Conv2d(dim, dim, 2 * reach + 1, padding=reach, groups=dim),
            nn.Conv2d(dim, dim, 1, groups=num_heads),
        )
        # Not in the official state_dict (a plain attribute there), so non-persistent.
        self.register_buffer("relative_position_index", _relative_index(side, k_bound), persistent=False)
        self.qkv = _LinearProjection(dim, num_heads, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B', side^2, dim). Returns: same shape."""
        b, n, c = x.shape
        hd = c // self.num_heads
        q = self.qkv.to_q(x).reshape(b, n, self.num_heads, hd).transpose(1, 2)
        k, v, v_pos = self.qkv.to_kv(x).reshape(b, n, 3, self.num_heads, hd).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        # (B', heads, hd, N) -> (B', C, side, side): channel-major layout of the position branch
        pos = self.Position_Extract(v_pos.transpose(-1, -2).reshape(b, c, self.side, self.side))
        out = out.transpose(1, 2).reshape(b, n, c) + pos.reshape(b, c, n).transpose(1, 2)
        return self.proj(out)


class _LeFF(nn.Module):
    """Locally-enhanced feed-forward: linear-GELU, 3x3 depth-wise conv-GELU with a residual, linear."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.linear1 = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU())
        self.dwconv = nn.Sequential(nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim), nn.GELU())
        self.linear2 = nn.Sequential(nn.Linear(hidden_dim, dim))

    def forward(self, x: Tensor, side: int) -> Tensor:
        """Args: x: (B, side^2, dim) tokens of a square map. Returns: same shape."""
        b, n, _ = x.shape
        x = self.linear1(x).transpose(1, 2).reshape(b, -1, side, side)
        x = self.dwconv(x) + x
        return self.linear2(x.flatten(2).transpose(1, 2))


class _IDTBlock(nn.Module):
    """Window block: LN, window attention (window shrunk to the map if larger), residual; LN, LeFF, residual."""

    def __init__(self, dim: int, resolution: int, num_heads: int, win_size: int, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop_path: float):
        super().__init__()
        self.resolution = resolution
        self.win_size = min(win_size, resolution)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _WindowAttention(dim, self.win_size, num_heads, qkv_bias, qk_scale, k_bound=8)
        self.drop_path = _drop_path(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _LeFF(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, resolution^2, dim). Returns: same shape."""
        b, _, c = x.shape
        r, ws = self.resolution, self.win_size
        y = self.norm1(x).view(b, r // ws, ws, r // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        y = self.attn(y).view(b, r // ws, r // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, r * r, c)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x), r))


class _SpatialTransformerLayer(nn.Module):
    """Attention between the 8x8 windows of the map, per channel, with the 64 window pixels as features."""

    def __init__(self, resolution: int, num_heads: int, channel: int, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop_path: float, k_bound: int):
        super().__init__()
        dim = _SPATIAL_WIN * _SPATIAL_WIN
        self.resolution = resolution
        self.attn = _WindowAttention(dim, resolution // _SPATIAL_WIN, num_heads, qkv_bias, qk_scale, k_bound)
        self.drop_path = _drop_path(drop_path)
        self.norm2 = nn.LayerNorm(channel)
        self.mlp = _LeFF(channel, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, resolution^2, channel). Returns: same shape."""
        b, n, c = x.shape
        r, win = self.resolution, _SPATIAL_WIN
        windows = F.unfold(x.transpose(1, 2).reshape(b, c, r, r), win, stride=win)  # (B, C*64, nW)
        y = self.attn(windows.reshape(b * c, win * win, -1).transpose(1, 2))  # (B*C, nW, 64)
        # The official code reads the result back window-major (token = window * 64 + pixel), not as the
        # inverse of the unfold; kept as is so trained weights behave identically.
        y = y.reshape(b, c, -1, win * win).permute(0, 2, 3, 1).reshape(b, n, c)
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x), r))


class _BasicIDTLayer(nn.Module):
    """``num`` window blocks then (``use_cross``) a spatial layer; ``drop_path``: the level's rates (first for the
    window blocks, last for the spatial layer, as the official code)."""

    def __init__(self, dim: int, resolution: int, num_heads: int, win_size: int, mlp_ratio: float, qkv_bias: bool,
                 qk_scale: Optional[float], drop_path: Sequence[float], k_bound: int, num: int, use_cross: bool):
        super().__init__()
        blocks: List[nn.Module] = [
            _IDTBlock(dim, resolution, num_heads, win_size, mlp_ratio, qkv_bias, qk_scale, drop_path[0])
            for _ in range(num)
        ]
        if use_cross:
            blocks.append(_SpatialTransformerLayer(resolution, num_heads, dim, mlp_ratio, qkv_bias, qk_scale,
                                                  drop_path[-1], k_bound))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, resolution^2, dim). Returns: same shape."""
        for blk in self.blocks:
            x = blk(x)
        return x


class _Resample(nn.Module):
    """Token map -> conv (strided down, or transposed up) -> token map."""

    def __init__(self, attr: str, conv: nn.Module):
        super().__init__()
        self.attr = attr
        setattr(self, attr, nn.Sequential(conv))

    def forward(self, x: Tensor, side: int) -> Tensor:
        """Args: x: (B, side^2, C) tokens. Returns: resampled tokens (B, side'^2, C')."""
        b, _, c = x.shape
        out = getattr(self, self.attr)(x.transpose(1, 2).reshape(b, c, side, side))
        return out.flatten(2).transpose(1, 2)


@ARCH_REGISTRY.register()
class IDT(ArchBase):
    """Image De-raining Transformer: a 4-level U-Net of window and spatial transformer layers, ``out = x + f(x)``.

    Defaults are the official deraining settings (``train_derain.py``): 16,416,463 parameters. State-dict
    keys and shapes equal jiexiaou/IDT's ``model.IDT``, so its checkpoints load with ``strict=True`` (mcir's
    weight loader strips DataParallel's ``module.`` prefix). Input and output are RGB in [0, 1].

    The network itself only runs on ``img_size x img_size`` images (its attention grids are fixed at
    construction). Other sizes are handled as the official ``test_full_size.py`` does: the image is cut
    into ``img_size`` patches overlapping by at least ``tile_overlap`` pixels, and the restored patches are
    merged with weights ``1 / distance to the patch centre``. Images smaller than ``img_size`` on a side
    are reflect-padded (replicated where reflection cannot reach) and the output cropped back.

    Args:
        img_size: Patch side the network is built for (a multiple of 64; official 128).
        in_chans: Image channels.
        embed_dim: Channels of the first level (doubled per level).
        depths: Only set the stochastic-depth schedule, as in the official code (9 values).
        num_heads: Heads per level (9 values: encoder 0-3, bottleneck, decoder 0-3).
        win_size: Window side of the window blocks.
        mlp_ratio: LeFF hidden / channels (spatial layers: hidden = 64 * mlp_ratio).
        qkv_bias: Biases in the Q/K/V projections.
        qk_scale: Attention logit scale (default ``head_dim ** -0.5``).
        drop_path_rate: Largest stochastic-depth rate.
        tile_overlap: Minimum overlap of the patches for other image sizes (official 20).
        tile_batch: Patches run through the network at once for other image sizes (bounds memory).
    """

    def __init__(
        self,
        img_size: PositiveInt = 128,
        in_chans: PositiveInt = 3,
        embed_dim: PositiveInt = 32,
        depths: Sequence[NonNegativeInt] = (3, 3, 2, 2, 1, 1, 2, 2, 3),
        num_heads: Sequence[PositiveInt] = (1, 2, 4, 8, 16, 16, 8, 4, 2),
        win_size: PositiveInt = 8,
        mlp_ratio: PositiveFloat = 4.0,
        qkv_bias: bool = True,
        qk_scale: Optional[PositiveFloat] = None,
        drop_path_rate: Probability = 0.1,
        tile_overlap: NonNegativeInt = 20,
        tile_batch: PositiveInt = 16,
    ):
        super().__init__()
        _check_options(img_size, embed_dim, depths, num_heads, win_size, tile_overlap, tile_batch)
        self.img_size, self.tile_overlap, self.tile_batch = img_size, tile_overlap, tile_batch
        enc_dpr = torch.linspace(0, drop_path_rate, sum(depths[:4]), device="cpu").tolist()
        dec_dpr = enc_dpr[::-1]
        enc_rates = [enc_dpr[sum(depths[:i]):sum(depths[:i + 1])] for i in range(4)]
        dec_rates = [dec_dpr[sum(depths[5:5 + i]):sum(depths[5:6 + i])] for i in range(4)]
        level_rates = enc_rates + [[drop_path_rate] * depths[4]] + dec_rates
        level_dims = [embed_dim * 2**i for i in range(5)] + [embed_dim * 2**i for i in (4, 3, 2, 1)]
        level_res = [img_size // 2**i for i in range(5)] + [img_size // 2**i for i in (3, 2, 1, 0)]

        def level(i: int) -> _BasicIDTLayer:
            return _BasicIDTLayer(level_dims[i], level_res[i], num_heads[i], win_size, mlp_ratio, qkv_bias, qk_scale,
                                 level_rates[i], _LEVEL_K_BOUND[i], _LEVEL_BLOCKS[i], use_cross=i != 4)

        self.input_proj = nn.Module()
        self.input_proj.proj = nn.Sequential(nn.Conv2d(in_chans, embed_dim, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.output_proj = nn.Module()
        self.output_proj.proj = nn.Sequential(nn.Conv2d(2 * embed_dim, in_chans, 3, padding=1))
        for i in range(4):
            setattr(self, f"encoderlayer_{i}", level(i))
            d = embed_dim * 2**i
            setattr(self, f"dowsample_{i}", _Resample("conv", nn.Conv2d(d, 2 * d, 4, stride=2, padding=1)))
        self.bottle = level(4)
        for i in range(4):
            up = nn.ConvTranspose2d(level_dims[4 + i], embed_dim * 2 ** (3 - i), 2, stride=2)
            setattr(self, f"upsample_{i}", _Resample("deconv", up))
            setattr(self, f"decoderlayer_{i}", level(5 + i))
        self.apply(transformer_init_weights)

    def forward_patch(self, x: Tensor) -> Tensor:
        """Official network. Args: x: (B, in_chans, img_size, img_size). Returns: same shape."""
        s = self.img_size
        y = self.input_proj.proj(x).flatten(2).transpose(1, 2)
        skips = []
        for i in range(4):
            y = getattr(self, f"encoderlayer_{i}")(y)
            skips.append(y)
            y = getattr(self, f"dowsample_{i}")(y, s >> i)
        y = self.bottle(y)
        for i in range(4):
            y = getattr(self, f"upsample_{i}")(y, s >> (4 - i))
            y = getattr(self, f"decoderlayer_{i}")(torch.cat([y, skips[3 - i]], dim=-1))
        b, _, c = y.shape
        return x + self.output_proj.proj(y.transpose(1, 2).reshape(b, c, s, s))

    def forward(self, x: Tensor) -> Tensor:
        """Derain a batch of any size.

        Args:
            x: (N, in_chans, H, W) in [0, 1].

        Returns:
            (N, in_chans, H, W), not clamped.
        """
        s = self.img_size
        h, w = x.shape[-2:]
        if (h, w) == (s, s):
            return self.forward_patch(x)
        pad_h, pad_w = max(s - h, 0), max(s - w, 0)
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self._forward_tiled(x)[:, :, :h, :w]

    def _forward_tiled(self, x: Tensor) -> Tensor:
        """Overlapping ``img_size`` patches merged with centre-distance weights (official test_full_size.py)."""
        s = self.img_size
        n, c, h, w = x.shape
        starts = [(i, j) for i in _tile_starts(h, s, self.tile_overlap) for j in _tile_starts(w, s, self.tile_overlap)]
        centre = torch.arange(s, device=x.device, dtype=x.dtype) - s / 2
        weight = 1.0 / torch.sqrt(centre[:, None] ** 2 + centre[None, :] ** 2 + 1e-3)
        out = x.new_zeros(n, c, h, w)
        total = x.new_zeros(1, 1, h, w)
        for k in range(0, len(starts), self.tile_batch):
            chunk = starts[k:k + self.tile_batch]
            patches = torch.cat([x[:, :, i:i + s, j:j + s] for i, j in chunk])
            restored = self.forward_patch(patches).split(n)
            for (i, j), patch in zip(chunk, restored):
                out[:, :, i:i + s, j:j + s] += patch * weight
                total[:, :, i:i + s, j:j + s] += weight
        return out / total


def _tile_starts(length: int, size: int, overlap: int) -> List[int]:
    """Patch offsets along one axis: every ``size - overlap`` pixels, the last one flush with the end."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, size - overlap))
    return starts + [length - size]




def _check_options(img_size: int, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int], win_size: int,
                   tile_overlap: int, tile_batch: int) -> None:
    """Raise ``OptionError`` naming the key for settings the official network cannot build or run."""
    for key, value in (("depths", depths), ("num_heads", num_heads)):
        if isinstance(value, (str, bytes)) or len(value) != 9:
            raise OptionError(f"needs 9 values (encoder 0-3, bottleneck, decoder 0-3), got {value!r}", key=key)
    if img_size < 64 or img_size % 64:
        raise OptionError(f"must be a positive multiple of 64 (8x8 windows at 1/8 scale), got {img_size}",
                          key="img_size")
    if win_size < 1 or any((img_size >> i) % min(win_size, img_size >> i) for i in range(5)):
        raise OptionError(f"must divide the feature-map sides {[img_size >> i for i in range(5)]}", key="win_size")
    dims = [embed_dim * 2**i for i in range(5)] + [embed_dim * 2**i for i in (4, 3, 2, 1)]
    for i, (dim, heads) in enumerate(zip(dims, num_heads)):
        if heads < 1 or dim % heads or (i != 4 and (_SPATIAL_WIN * _SPATIAL_WIN) % heads):
            raise OptionError(f"level {i}: {heads} heads do not divide {dim} channels (and 64 for the spatial "
                              "layer)", key="num_heads")
    if not 0 <= tile_overlap < img_size:
        raise OptionError(f"must be in [0, img_size), got {tile_overlap}", key="tile_overlap")
    if tile_batch < 1:
        raise OptionError(f"must be >= 1, got {tile_batch}", key="tile_batch")
