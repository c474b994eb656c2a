"""What SwinIR and HAT share: image-size parsing, the official init, window padding and the SR head's forward."""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from mcir.archs.arch_util import ArchBase, transformer_init_weights
from mcir.errors import OptionError


def image_pair(value: Union[int, Sequence[int]], key: str) -> Tuple[int, int]:
    """``img_size`` as (H, W): one int or two.

    Args:
        value: The option value.
        key: Its option name, for the message.

    Returns:
        ``(H, W)``.
    """
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise OptionError(f"must be a positive int or [height, width], got {value!r}", key=key)
    return pair  # type: ignore[return-value]


def check_swin_layout(arch: str, patch_size: int, embed_dim: int, depths: Sequence[int],
                      num_heads: Sequence[int]) -> None:
    """The checks every Swin-style SR network makes of its layout (the official code builds these wrongly).

    Args:
        arch: Network name, for the message.
        patch_size: Must be 1 (single-pixel embedding).
        embed_dim: Channel width.
        depths: Blocks per residual group.
        num_heads: Heads per group (same length as ``depths``; each divides ``embed_dim``).
    """
    if patch_size != 1:
        raise OptionError(f"only 1 is supported ({arch} embeds single pixels)", key="patch_size")
    if len(depths) != len(num_heads) or not depths:
        raise OptionError(f"depths {list(depths)} and num_heads {list(num_heads)} need the same, non-zero "
                          "length", key="num_heads")
    if any(embed_dim % h for h in num_heads):
        raise OptionError(f"every head count must divide embed_dim={embed_dim}", key="num_heads")


class SwinSRBase(ArchBase):
    """The shared part of SwinIR and HAT: mean shift, reflect padding to ``_pad_multiple``, the deep features
    (``forward_features``, each network's own) with a residual ``conv_after_body``, and the reconstruction head
    chosen by ``upsampler`` (``pixelshuffle``, ``pixelshuffledirect``, ``nearest+conv`` or ``''``).

    Subclasses set ``mean``, ``img_range``, ``upscale``, ``upsampler``, ``_pad_multiple`` and the head's layers
    (official names: ``conv_first``, ``conv_after_body``, ``conv_before_upsample``, ``upsample``, ``conv_up1/2``,
    ``conv_hr``, ``conv_last``, ``lrelu``).
    """

    _pad_multiple: int = 1
    upsampler: str = "pixelshuffle"

    #: The official initialisation (``self.apply(self._init_weights)``).
    _init_weights = staticmethod(transformer_init_weights)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        """Pad bottom/right to a multiple of the window: reflect as the official code, replicate when too small."""
        h, w = x.shape[-2:]
        ph, pw = -h % self._pad_multiple, -w % self._pad_multiple
        if not (ph or pw):
            return x
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - each network has its own
        """Deep features on (B, C, H, W), returned in the same layout."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch.

        Args:
            x: (N, in_chans, H, W) in [0, 1], any H and W.

        Returns:
            (N, in_chans, H * upscale, W * upscale), roughly in [0, 1] (not clamped).
        """
        h, w = x.shape[-2:]
        mean = self.mean.to(x)
        x = (self._pad(x) - mean) * self.img_range
        feat = self.conv_first(x)
        feat = self.conv_after_body(self.forward_features(feat)) + feat
        if self.upsampler == "pixelshuffle":
            out = self.conv_last(self.upsample(self.conv_before_upsample(feat)))
        elif self.upsampler == "pixelshuffledirect":
            out = self.upsample(feat)
        elif self.upsampler == "nearest+conv":
            out = self.conv_before_upsample(feat)
            out = self.lrelu(self.conv_up1(F.interpolate(out, scale_factor=2, mode="nearest")))
            if self.upscale == 4:
                out = self.lrelu(self.conv_up2(F.interpolate(out, scale_factor=2, mode="nearest")))
            out = self.conv_last(self.lrelu(self.conv_hr(out)))
        else:
            out = x + self.conv_last(feat)
        out = out / self.img_range + mean
        return out[:, :, : h * self.upscale, : w * self.upscale]
