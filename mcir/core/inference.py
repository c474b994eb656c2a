"""Inference helpers: pad to a size multiple, tiled inference and x8 self-ensemble, behind ``restore``."""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mcir.errors import OptionError

_PAD_MODES = ("reflect", "replicate", "constant")


def _check_4d(x: Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected an (N, C, H, W) tensor, got shape {tuple(x.shape)}")


def _check_positive_int(value: int, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"must be a positive integer, got {value!r}", key=key)
    return value


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> Tuple[Tensor, Tuple[int, int]]:
    """Pad the bottom and right of ``x`` so that its height and width are multiples of ``multiple``.

    Reflect padding needs the pad to be smaller than the side it mirrors; for images that small
    the function falls back to ``replicate``.

    Args:
        x: (N, C, H, W) tensor.
        multiple: Target multiple for H and W (1 means no padding).
        mode: ``reflect``, ``replicate`` or ``constant`` (zeros).

    Returns:
        The padded tensor (``x`` itself when no padding is needed) and ``(pad_h, pad_w)``.
    """
    _check_4d(x)
    multiple = _check_positive_int(multiple, "size_multiple")
    if mode not in _PAD_MODES:
        raise OptionError(f"unknown padding mode {mode!r}; use one of {', '.join(_PAD_MODES)}", key="pad_mode")
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    if mode == "reflect" and (pad_h >= h or pad_w >= w):
        mode = "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (pad_h, pad_w)


def forward_padded(net: Callable[[Tensor], Tensor], x: Tensor, scale: int, multiple: int) -> Tensor:
    """Run ``net`` on ``x`` padded to ``multiple`` and crop the output back to ``(H*scale, W*scale)``.

    Args:
        net: Network (or any callable) mapping (N, C, h, w) to (N, C', h*scale, w*scale).
        x: (N, C, H, W) input.
        scale: Output/input size ratio of ``net``.
        multiple: Input H and W multiple ``net`` needs.

    Returns:
        (N, C', H*scale, W*scale) output.
    """
    scale = _check_positive_int(scale, "scale")
    h, w = x.shape[-2:]
    padded, _ = pad_to_multiple(x, multiple)
    out = net(padded)
    want = (padded.shape[-2] * scale, padded.shape[-1] * scale)
    if tuple(out.shape[-2:]) != want:
        raise OptionError(
            f"network output {tuple(out.shape[-2:])} for input {tuple(padded.shape[-2:])} "
            f"is not {scale}x its input",
            key="scale",
        )
    if out.shape[-2:] == (h * scale, w * scale):
        return out
    return out[..., : h * scale, : w * scale]


def check_tile_args(tile: int, overlap: int, multiple: int = 1) -> None:
    """Validate tiling options.

    Args:
        tile: Tile side in input pixels; a positive multiple of ``multiple``.
        overlap: Overlap between neighbouring tiles; ``0 <= overlap < tile``.
        multiple: Input H and W multiple the network needs.

    Raises:
        OptionError: With key ``tile`` or ``tile_overlap``.
    """
    multiple = _check_positive_int(multiple, "size_multiple")
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise OptionError(f"must be a positive integer, got {tile!r}", key="tile")
    if tile % multiple:
        raise OptionError(f"{tile} is not a multiple of the network's size multiple {multiple}", key="tile")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < tile:
        raise OptionError(f"must be an integer with 0 <= overlap < tile ({tile}), got {overlap!r}", key="tile_overlap")


def tile_starts(size: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of tiles along one side: stride ``tile - overlap``, last tile flush with the border.

    Args:
        size: Side length in pixels.
        tile: Tile side.
        overlap: Overlap between neighbours (``< tile``).

    Returns:
        Increasing offsets; ``[0]`` when one tile covers the side.
    """
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, tile - overlap))
    starts.append(size - tile)
    return starts


def tiled_forward(
    net: Callable[[Tensor], Tensor], x: Tensor, scale: int, tile: int, overlap: int, multiple: int = 1
) -> Tensor:
    """Run ``net`` tile by tile and blend the tile outputs with uniform weights (plain averaging).

    Tiles are ``tile`` x ``tile`` input pixels (clipped to the image when it is smaller), placed
    with stride ``tile - overlap``; the last tile in each direction is aligned to the border.
    Each tile goes through ``forward_padded``, so it is padded to ``multiple`` only if needed.
    Overlapping outputs are summed into an accumulator on ``x``'s device and divided by the count
    of tiles covering each pixel. When a single tile covers the image this is exactly
    ``forward_padded(net, x, scale, multiple)``.

    Args:
        net: Network mapping (N, C, h, w) to (N, C', h*scale, w*scale).
        x: (N, C, H, W) input.
        scale: Output/input size ratio of ``net``.
        tile: Tile side in input pixels; a multiple of ``multiple``.
        overlap: Overlap of neighbouring tiles in input pixels, ``0 <= overlap < tile``.
        multiple: Input H and W multiple ``net`` needs.

    Returns:
        (N, C', H*scale, W*scale) output.
    """
    _check_4d(x)
    scale = _check_positive_int(scale, "scale")
    check_tile_args(tile, overlap, multiple)
    h, w = x.shape[-2:]
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return forward_padded(net, x, scale, multiple)

    acc: Optional[Tensor] = None
    out_dtype = x.dtype
    count = torch.zeros((1, 1, h * scale, w * scale), dtype=torch.float32, device=x.device)
    for y0 in ys:
        for x0 in xs:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            out = forward_padded(net, x[..., y0:y1, x0:x1], scale, multiple).to(x.device)
            if acc is None:
                # Half-precision sums of several tiles lose precision, so accumulate in at least float32.
                dtype = torch.promote_types(out.dtype, torch.float32)
                acc = torch.zeros((x.shape[0], out.shape[1], h * scale, w * scale), dtype=dtype, device=x.device)
                out_dtype = out.dtype
            oy, ox = slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale)
            acc[..., oy, ox] += out
            count[..., oy, ox] += 1
    assert acc is not None  # at least two tiles ran
    return (acc / count.to(acc.dtype)).to(out_dtype)


def _dihedral(x: Tensor, k: int, flip: bool) -> Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def _dihedral_inverse(y: Tensor, k: int, flip: bool) -> Tensor:
    if k:
        y = torch.rot90(y, -k, dims=(-2, -1))
    return y.flip(-1) if flip else y


def self_ensemble(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Average ``fn`` over the 8 dihedral transforms (rot90 by 0-3 quarter turns, with/without flip).

    Each transformed input is run through ``fn`` and its output mapped back with the inverse
    transform before averaging.

    Args:
        fn: Callable mapping (N, C, H, W) to (N, C', H*s, W*s) for any H, W.
        x: (N, C, H, W) input.

    Returns:
        The mean of the 8 back-transformed outputs.
    """
    _check_4d(x)
    total: Optional[Tensor] = None
    for flip in (False, True):
        for k in range(4):
            out = _dihedral_inverse(fn(_dihedral(x, k, flip)), k, flip)
            total = out.clone() if total is None else total.add_(out)
    assert total is not None
    return total / 8


def restore(
    net: nn.Module,
    x: Tensor,
    scale: Optional[int] = None,
    multiple: Optional[int] = None,
    tile: Optional[int] = None,
    overlap: int = 0,
    ensemble: bool = False,
) -> Tensor:
    """Restore a batch: pad to the network's size multiple, optionally tile and self-ensemble.

    Runs under ``torch.no_grad()``; the caller chooses train/eval mode of ``net``.

    Args:
        net: Network mapping (N, C, H, W) in [0, 1] to (N, C', H*scale, W*scale).
        x: (N, C, H, W) input on the device results should be accumulated on.
        scale: Output/input size ratio; defaults to ``net.upscale`` (1 when absent).
        multiple: Input H and W multiple; defaults to ``net.size_multiple`` (1 when absent).
        tile: Tile side in input pixels, or None to run the whole image at once.
        overlap: Overlap between tiles in input pixels (ignored without ``tile``).
        ensemble: Average over the 8 flips/rotations (x8 self-ensemble).

    Returns:
        (N, C', H*scale, W*scale) output (not clamped).
    """
    _check_4d(x)
    scale = _check_positive_int(int(getattr(net, "upscale", 1)) if scale is None else scale, "scale")
    multiple = _check_positive_int(
        int(getattr(net, "size_multiple", 1)) if multiple is None else multiple, "size_multiple"
    )
    if tile is not None:
        check_tile_args(tile, overlap, multiple)

    def run(inp: Tensor) -> Tensor:
        if tile is None:
            return forward_padded(net, inp, scale, multiple)
        return tiled_forward(net, inp, scale, tile, overlap, multiple)

    with torch.no_grad():
        return self_ensemble(run, x) if ensemble else run(x)


def infer(
    net: nn.Module,
    lq: Tensor,
    tile: Optional[int] = None,
    tile_overlap: int = 0,
    self_ensemble: bool = False,
    device: Optional[torch.device] = None,
) -> Tensor:
    """Restore a batch with ``net`` in eval mode (its mode is put back afterwards).

    Args:
        net: The network.
        lq: Degraded batch (N, C, H, W) in [0, 1], on any device.
        tile: Tile side in input pixels (None: whole image).
        tile_overlap: Overlap between tiles.
        self_ensemble: Average the 8 flips/rotations.
        device: Where to run (default: where ``net``'s parameters are; ``lq``'s device for parameter-free nets).

    Returns:
        The restored batch (not clamped), on that device.
    """
    if device is None:
        param = next(net.parameters(), None)
        device = param.device if param is not None else lq.device
    was_training = net.training
    net.eval()
    try:
        return restore(net, lq.to(device), tile=tile, overlap=tile_overlap, ensemble=self_ensemble)
    finally:
        net.train(was_training)
