"""DehazeFormer (Song et al., IEEE TIP 2023), parameter names as in IDKiro/DehazeFormer."""

from __future__ import annotations

import math
from typing import Dict, List, Literal, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mcir.constraints import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from mcir.archs.arch_util import ArchBase
from mcir.errors import OptionError
from mcir.registry import ARCH_REGISTRY

_CONV_TYPES = ("DWConv", "Conv")

# The published variants (official ``dehazeformer_<name>()`` factories); every one uses RLN norms.
DEHAZEFORMER_CONFIGS: Dict[str, Dict[str, list]] = {
    name: {
        "embed_dims": dims,
        "mlp_ratios": [2.0, 4.0, 4.0, 2.0, 2.0],
        "depths": depths,
        "num_heads": [2, 4, 6, 1, 1],
        "attn_ratio": [0.0, 0.5, 1.0, 0.0, 0.0] if name == "t" else [0.25, 0.5, 0.75, 0.0, 0.0],
        "conv_type": [conv] * 5,
    }
    for name, dims, depths, conv in (
        ("t", [24, 48, 96, 48, 24], [4, 4, 4, 2, 2], "DWConv"),
        ("s", [24, 48, 96, 48, 24], [8, 8, 8, 4, 4], "DWConv"),
        ("b", [24, 48, 96, 48, 24], [16, 16, 16, 8, 8], "DWConv"),
        ("d", [24, 48, 96, 48, 24], [32, 32, 32, 16, 16], "DWConv"),
        ("w", [48, 96, 192, 96, 48], [16, 16, 16, 8, 8], "DWConv"),
        ("m", [24, 48, 96, 48, 24], [12, 12, 12, 6, 6], "Conv"),
        ("l", [48, 96, 192, 96, 48], [16, 16, 16, 12, 12], "Conv"),
    )
}


def _trunc_normal_scaled(weight: Tensor, gain: float) -> None:
    """Truncated-normal init with std ``gain * sqrt(2 / (fan_in + fan_out))`` (the official scheme)."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(weight)
    nn.init.trunc_normal_(weight, std=gain * math.sqrt(2.0 / float(fan_in + fan_out)))


class _RLN(nn.Module):
    """Rescale-and-rebias LayerNorm over (C, H, W); also returns the re-scale/re-bias applied after the mixer."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.meta1 = nn.Conv2d(1, dim, 1)
        self.meta2 = nn.Conv2d(1, dim, 1)
        nn.init.trunc_normal_(self.meta1.weight, std=0.02)
        nn.init.constant_(self.meta1.bias, 1.0)
        nn.init.trunc_normal_(self.meta2.weight, std=0.02)
        nn.init.constant_(self.meta2.bias, 0.0)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Args: x: (B, C, H, W). Returns: normalised x, rescale (B, C, 1, 1), rebias (B, C, 1, 1)."""
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = torch.sqrt((x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True) + self.eps)
        out = (x - mean) / std * self.weight + self.bias
        return out, self.meta1(std), self.meta2(mean)


class _Mlp(nn.Module):
    """1x1-conv MLP ``conv-ReLU-conv``; ``network_depth`` (all blocks) scales the init."""

    def __init__(self, network_depth: int, dim: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1), nn.ReLU(True), nn.Conv2d(hidden, dim, 1))
        gain = (8 * network_depth) ** (-1 / 4)
        for conv in (self.mlp[0], self.mlp[2]):
            _trunc_normal_scaled(conv.weight, gain)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, dim, H, W). Returns: same shape."""
        return self.mlp(x)


def _log_relative_positions(window_size: int) -> Tensor:
    """Signed log-spaced relative (dy, dx) of every token pair in a window, shape (N, N, 2), N = ws^2."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    coords = coords.flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    return torch.sign(rel) * torch.log1p(rel.abs().float())


class _WindowAttention(nn.Module):
    """Multi-head attention inside ``window_size``^2-token windows, relative-position bias from a small MLP."""

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.scale = (dim // num_heads) ** -0.5
        # Persistent: the official checkpoints contain it, so strict loading needs the key.
        self.register_buffer("relative_positions", _log_relative_positions(window_size))
        self.meta = nn.Sequential(nn.Linear(2, 256), nn.ReLU(True), nn.Linear(256, num_heads))

    def forward(self, qkv: Tensor) -> Tensor:
        """Args: qkv: (B', N, 3 * dim) per window. Returns: (B', N, dim)."""
        b, n, _ = qkv.shape
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, self.dim // self.num_heads).permute(2, 0, 3, 1, 4)
        bias = self.meta(self.relative_positions).permute(2, 0, 1).unsqueeze(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return out.transpose(1, 2).reshape(b, n, self.dim)


class _Attention(nn.Module):
    """Token mixer: (shifted) window attention on 1x1-conv Q/K/V plus a conv branch on V (``'DWConv'``: 5x5
    depth-wise between 1x1 projections; ``'Conv'``: two 3x3 convs); conv branch only when ``use_attn`` is False."""

    def __init__(
        self, network_depth: int, dim: int, num_heads: int, window_size: int, shift_size: int, use_attn: bool,
        conv_type: str,
    ):
        super().__init__()
        self.dim, self.window_size, self.shift_size = dim, window_size, shift_size
        self.use_attn, self.conv_type = use_attn, conv_type
        if conv_type == "Conv":
            self.conv = nn.Sequential(
                nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect"),
                nn.ReLU(True),
                nn.Conv2d(dim, dim, 3, padding=1, padding_mode="reflect"),
            )
        else:
            self.conv = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, padding_mode="reflect")
        if conv_type == "DWConv" or use_attn:
            self.V = nn.Conv2d(dim, dim, 1)
            self.proj = nn.Conv2d(dim, dim, 1)
        if use_attn:
            self.QK = nn.Conv2d(dim, dim * 2, 1)
            self.attn = _WindowAttention(dim, window_size, num_heads)
        gain = (8 * network_depth) ** (-1 / 4)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # Q/K keep unit gain so the attention logits start at a useful scale.
                _trunc_normal_scaled(m.weight, 1.0 if m is getattr(self, "QK", None) else gain)
                nn.init.zeros_(m.bias)

    def _pad_windows(self, x: Tensor) -> Tensor:
        """Reflect-pad to whole windows; shifted blocks put ``shift_size`` rows/columns before the image."""
        h, w = x.shape[-2:]
        ws, s = self.window_size, self.shift_size
        pad_h, pad_w = (ws - h % ws) % ws, (ws - w % ws) % ws
        if s > 0:
            return F.pad(x, (s, (ws - s + pad_w) % ws, s, (ws - s + pad_h) % ws), mode="reflect")
        return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")

    def _window_attention(self, qkv: Tensor) -> Tensor:
        """Attend within windows of the padded map and crop back. Args: qkv (B, 3C, H, W). Returns (B, C, H, W)."""
        b, _, h, w = qkv.shape
        ws, s = self.window_size, self.shift_size
        padded = self._pad_windows(qkv)
        hp, wp = padded.shape[-2:]
        windows = padded.reshape(b, -1, hp // ws, ws, wp // ws, ws).permute(0, 2, 4, 3, 5, 1)
        windows = windows.reshape(-1, ws * ws, 3 * self.dim)
        out = self.attn(windows).reshape(b, hp // ws, wp // ws, ws, ws, self.dim)
        out = out.permute(0, 5, 1, 3, 2, 4).reshape(b, self.dim, hp, wp)
        return out[:, :, s : s + h, s : s + w]

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, dim, H, W). Returns: same shape."""
        if not self.use_attn:
            return self.conv(x) if self.conv_type == "Conv" else self.proj(self.conv(self.V(x)))
        v = self.V(x)
        attn_out = self._window_attention(torch.cat([self.QK(x), v], dim=1))
        return self.proj(self.conv(v) + attn_out)


class _TransformerBlock(nn.Module):
    """RLN -> token mixer -> re-scale/re-bias residual (conv-only blocks skip the norm), then an MLP residual."""

    def __init__(
        self, network_depth: int, dim: int, num_heads: int, mlp_ratio: float, window_size: int, shift_size: int,
        use_attn: bool, conv_type: str,
    ):
        super().__init__()
        self.use_attn = use_attn
        self.norm1 = _RLN(dim) if use_attn else nn.Identity()
        self.attn = _Attention(network_depth, dim, num_heads, window_size, shift_size, use_attn, conv_type)
        self.norm2 = nn.Identity()  # the official mlp_norm=False; kept so module indices line up
        self.mlp = _Mlp(network_depth, dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, dim, H, W). Returns: same shape."""
        if self.use_attn:
            normed, rescale, rebias = self.norm1(x)
            x = x + self.attn(normed) * rescale + rebias
        else:
            x = x + self.attn(x)
        return x + self.mlp(x)


class _BasicLayer(nn.Module):
    """``depth`` blocks at one scale; the last ``attn_ratio * depth`` attend, windows shifted on odd indices."""

    def __init__(
        self, network_depth: int, dim: int, depth: int, num_heads: int, mlp_ratio: float, window_size: int,
        attn_ratio: float, conv_type: str,
    ):
        super().__init__()
        attn_depth = attn_ratio * depth
        self.blocks = nn.ModuleList(
            _TransformerBlock(
                network_depth, dim, num_heads, mlp_ratio, window_size,
                shift_size=0 if i % 2 == 0 else window_size // 2,
                use_attn=i >= depth - attn_depth, conv_type=conv_type,
            )
            for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, dim, H, W). Returns: same shape."""
        for blk in self.blocks:
            x = blk(x)
        return x


class _PatchEmbed(nn.Module):
    """Reflect-padded conv with stride ``patch_size`` (embedding, 2x down-sampling); kernel defaults to the stride."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, kernel_size: int = 0):
        super().__init__()
        kernel_size = kernel_size or patch_size
        self.proj = nn.Conv2d(
            in_chans, embed_dim, kernel_size, stride=patch_size, padding=(kernel_size - patch_size + 1) // 2,
            padding_mode="reflect",
        )

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, in_chans, H, W). Returns: (B, embed_dim, H / patch_size, W / patch_size)."""
        return self.proj(x)


class _PatchUnEmbed(nn.Module):
    """Conv to ``out_chans * patch_size^2`` channels + PixelShuffle (2x up-sampling, output head)."""

    def __init__(self, patch_size: int, out_chans: int, embed_dim: int, kernel_size: int = 1):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans * patch_size**2, kernel_size, padding=kernel_size // 2,
                      padding_mode="reflect"),
            nn.PixelShuffle(patch_size),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Args: x: (B, embed_dim, H, W). Returns: (B, out_chans, H * patch_size, W * patch_size)."""
        return self.proj(x)


class _SKFusion(nn.Module):
    """Selective-kernel fusion: ``height`` maps summed with channel-wise softmax weights from a pooled MLP."""

    def __init__(self, dim: int, height: int = 2, reduction: int = 8):
        super().__init__()
        self.height = height
        d = max(int(dim / reduction), 4)
        self.mlp = nn.Sequential(nn.Conv2d(dim, d, 1, bias=False), nn.ReLU(), nn.Conv2d(d, dim * height, 1, bias=False))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Args: feats: ``height`` tensors (B, dim, H, W). Returns: their weighted sum (B, dim, H, W)."""
        stacked = torch.stack(list(feats), dim=1)
        b, _, c = stacked.shape[:3]
        weights = self.mlp(stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True))
        weights = torch.softmax(weights.view(b, self.height, c, 1, 1), dim=1)
        return (stacked * weights).sum(dim=1)


@ARCH_REGISTRY.register()
class DehazeFormer(ArchBase):
    """DehazeFormer: a 5-stage U-shaped Swin-style network predicting ``K`` and ``B`` of ``J = K*I - B + I``.

    Defaults are DehazeFormer-B; ``DEHAZEFORMER_CONFIGS`` holds the published T/S/B/D/W/M/L settings
    (parameters: T 687,404, S 1,284,884, B 2,517,612, M 4,635,952, L 25,451,652). State-dict keys and
    shapes equal IDKiro/DehazeFormer's, so its checkpoints (``state_dict`` without the ``module.`` prefix)
    load with ``strict=True``.

    The official network maps images in [-1, 1] to [-1, 1]. With ``unit_range_io=True`` (default) this
    module takes and returns [0, 1] images (``x -> 2x - 1`` before the official body, ``y -> (y + 1) / 2``
    after), so official weights work unchanged with mcir's [0, 1] data, metrics and SPN loss
    (``range_norm: false``). With ``unit_range_io=False`` it is exactly the official [-1, 1] mapping; feed it
    [-1, 1] data and give the SPN loss ``range_norm: true``.

    The input is reflect-padded to a multiple of 4 (the official ``check_image_size``) and the output
    cropped back. Images smaller than ``4 * window_size`` (32 px) on a side, for which the official
    shifted-window padding fails, are first reflect-padded up to that size (replicate where reflection
    cannot reach).

    Args:
        in_chans: Image channels.
        out_chans: Head channels, ``in_chans + 1`` (the 1-channel K map and the B image).
        window_size: Attention window side.
        embed_dims: Channels of the five stages (stage 4 = stage 2, stage 5 = stage 1).
        mlp_ratios: MLP expansion per stage.
        depths: Blocks per stage.
        num_heads: Attention heads per stage.
        attn_ratio: Fraction of each stage's blocks (the last ones) that use attention.
        conv_type: ``'DWConv'`` or ``'Conv'`` per stage.
        unit_range_io: Input and output in [0, 1] (mapped to the official [-1, 1] inside).
    """

    def __init__(
        self,
        in_chans: PositiveInt = 3,
        out_chans: PositiveInt = 4,
        window_size: PositiveInt = 8,
        embed_dims: Sequence[PositiveInt] = (24, 48, 96, 48, 24),
        mlp_ratios: Sequence[PositiveFloat] = (2.0, 4.0, 4.0, 2.0, 2.0),
        depths: Sequence[NonNegativeInt] = (16, 16, 16, 8, 8),
        num_heads: Sequence[PositiveInt] = (2, 4, 6, 1, 1),
        attn_ratio: Sequence[Probability] = (0.25, 0.5, 0.75, 0.0, 0.0),
        conv_type: Sequence[Literal["Conv", "DWConv"]] = ("DWConv",) * 5,
        unit_range_io: bool = True,
    ):
        super().__init__()
        _check_options(in_chans, out_chans, window_size, embed_dims, mlp_ratios, depths, num_heads, attn_ratio,
                       conv_type)
        self.in_chans, self.window_size, self.unit_range_io = in_chans, window_size, unit_range_io
        self.patch_size = 4  # two 2x down-samplings
        total = sum(depths)

        def stage(i: int) -> _BasicLayer:
            return _BasicLayer(total, embed_dims[i], depths[i], num_heads[i], mlp_ratios[i], window_size,
                              attn_ratio[i], conv_type[i])

        self.patch_embed = _PatchEmbed(1, in_chans, embed_dims[0], kernel_size=3)
        self.layer1 = stage(0)
        self.patch_merge1 = _PatchEmbed(2, embed_dims[0], embed_dims[1])
        self.skip1 = nn.Conv2d(embed_dims[0], embed_dims[0], 1)
        self.layer2 = stage(1)
        self.patch_merge2 = _PatchEmbed(2, embed_dims[1], embed_dims[2])
        self.skip2 = nn.Conv2d(embed_dims[1], embed_dims[1], 1)
        self.layer3 = stage(2)
        self.patch_split1 = _PatchUnEmbed(2, embed_dims[3], embed_dims[2])
        self.fusion1 = _SKFusion(embed_dims[3])
        self.layer4 = stage(3)
        self.patch_split2 = _PatchUnEmbed(2, embed_dims[4], embed_dims[3])
        self.fusion2 = _SKFusion(embed_dims[4])
        self.layer5 = stage(4)
        self.patch_unembed = _PatchUnEmbed(1, out_chans, embed_dims[4], kernel_size=3)

    def forward_features(self, x: Tensor) -> Tensor:
        """Official body. Args: x: (B, in_chans, H, W), H and W multiples of 4. Returns: (B, out_chans, H, W)."""
        x = self.layer1(self.patch_embed(x))
        skip1 = x
        x = self.layer2(self.patch_merge1(x))
        skip2 = x
        x = self.patch_split1(self.layer3(self.patch_merge2(x)))
        x = self.fusion1([x, self.skip2(skip2)]) + x
        x = self.patch_split2(self.layer4(x))
        x = self.fusion2([x, self.skip1(skip1)]) + x
        return self.patch_unembed(self.layer5(x))

    def _pad(self, x: Tensor) -> Tensor:
        """Reflect-pad to a multiple of 4 (official), and tiny images up to ``4 * window_size``."""
        h, w = x.shape[-2:]
        m, least = self.patch_size, self.patch_size * self.window_size
        pad_h, pad_w = (m - h % m) % m, (m - w % m) % m
        pad_h, pad_w = max(pad_h, least - h), max(pad_w, least - w)
        if pad_h == 0 and pad_w == 0:
            return x
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)

    def forward(self, x: Tensor) -> Tensor:
        """Dehaze a batch.

        Args:
            x: (N, in_chans, H, W), in [0, 1] (``unit_range_io``) or [-1, 1].

        Returns:
            (N, in_chans, H, W) in the same range (not clamped).
        """
        h, w = x.shape[-2:]
        if self.unit_range_io:
            x = x * 2 - 1
        x = self._pad(x)
        k, b = torch.split(self.forward_features(x), (1, self.in_chans), dim=1)
        out = (k * x - b + x)[:, :, :h, :w]
        return (out + 1) / 2 if self.unit_range_io else out


def _check_options(
    in_chans: int, out_chans: int, window_size: int, embed_dims: Sequence[int], mlp_ratios: Sequence[float],
    depths: Sequence[int], num_heads: Sequence[int], attn_ratio: Sequence[float], conv_type: Sequence[str],
) -> None:
    """Raise ``OptionError`` naming the key for settings the official network cannot build or run."""
    lists: List[Tuple[str, Sequence]] = [
        ("embed_dims", embed_dims), ("mlp_ratios", mlp_ratios), ("depths", depths), ("num_heads", num_heads),
        ("attn_ratio", attn_ratio), ("conv_type", conv_type),
    ]
    for key, value in lists:
        if isinstance(value, (str, bytes)) or len(value) != 5:
            raise OptionError(f"needs 5 values (one per stage), got {value!r}", key=key)
    if out_chans != in_chans + 1:
        raise OptionError(f"must be in_chans + 1 = {in_chans + 1} (K map + B image), got {out_chans}", key="out_chans")
    if window_size < 2:
        raise OptionError(f"must be >= 2, got {window_size}", key="window_size")
    if embed_dims[3] != embed_dims[1] or embed_dims[4] != embed_dims[0]:
        raise OptionError(f"stage 4 must equal stage 2 and stage 5 stage 1 (skip fusion), got {list(embed_dims)}",
                          key="embed_dims")
    for i, (dim, heads, ratio) in enumerate(zip(embed_dims, num_heads, attn_ratio)):
        if ratio > 0 and dim % heads:
            raise OptionError(f"stage {i + 1}: {dim} channels are not divisible by {heads} heads", key="num_heads")
    for ct in conv_type:
        if ct not in _CONV_TYPES:
            raise OptionError(f"unknown conv_type '{ct}' (choose from {', '.join(_CONV_TYPES)})", key="conv_type")
