"""Tests of the inference helpers: padding to a multiple, tiled inference, x8 self-ensemble, restore."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data as skdata
from torch import nn

from mcir.archs.edsr_arch import EDSR
from mcir.core.inference import (
    forward_padded,
    pad_to_multiple,
    restore,
    self_ensemble,
    tile_starts,
    tiled_forward,
)
from mcir.errors import OptionError


def _astronaut(h: int, w: int) -> torch.Tensor:
    """A real (1, 3, h, w) RGB crop in [0, 1]."""
    img = skdata.astronaut()[100 : 100 + h, 180 : 180 + w].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]


class _Multiple8Net(nn.Module):
    """x2 conv + pixel-shuffle net that refuses inputs whose sides are not multiples of 8."""

    upscale = 2
    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 12, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0, tuple(x.shape)
        return self.shuffle(self.conv(x))


class _Pointwise(nn.Module):
    """x2 net with no spatial receptive field: 1x1 conv then pixel shuffle."""

    upscale = 2

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 12, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class _Recorder(nn.Module):
    """Wraps a net and records the spatial size of every input it is given."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.upscale = net.upscale
        self.sizes: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        return self.net(x)


def _edsr() -> EDSR:
    torch.manual_seed(0)
    return EDSR(num_feat=8, num_block=1, upscale=2).eval()


# ---- padding ----------------------------------------------------------------------------------


def test_pad_to_multiple_reflects_and_falls_back_to_replicate():
    x = torch.rand(1, 3, 37, 45)
    padded, pads = pad_to_multiple(x, 8)
    assert pads == (3, 3) and padded.shape[-2:] == (40, 48)
    assert torch.equal(padded[..., :37, :45], x)
    assert torch.equal(padded[..., 37:40, :45], x[..., [35, 34, 33], :])

    small = torch.rand(1, 3, 3, 3)
    padded, pads = pad_to_multiple(small, 8)
    assert pads == (5, 5) and padded.shape[-2:] == (8, 8)
    assert torch.equal(padded[..., 3:, :3], small[..., 2:3, :].expand(-1, -1, 5, -1))

    same, pads = pad_to_multiple(padded, 8)
    assert same is padded and pads == (0, 0)


def test_restore_pads_for_size_multiple_and_crops():
    net = _Multiple8Net()
    x = _astronaut(37, 45)
    out = restore(net, x)
    assert out.shape == (1, 3, 74, 90)
    assert not out.requires_grad
    with torch.no_grad():
        expected = net(F.pad(x, (0, 3, 0, 3), mode="reflect"))[..., :74, :90]
    assert torch.equal(out, expected)
    with torch.no_grad():
        assert torch.equal(forward_padded(net, x, 2, 8), expected)


def test_tiles_are_padded_to_multiple_when_clipped():
    net = _Multiple8Net()
    x = _astronaut(37, 45)
    # Tile 40: one 37-row tile (padded to 40) per column; columns start at 0 and 5.
    out = restore(net, x, tile=40, overlap=8)
    assert out.shape == (1, 3, 74, 90)
    out16 = restore(net, x, tile=16, overlap=4)
    assert out16.shape == (1, 3, 74, 90)


# ---- tiling -----------------------------------------------------------------------------------


def test_tile_starts_grid_and_border_alignment():
    assert tile_starts(40, 16, 4) == [0, 12, 24]
    assert tile_starts(52, 16, 4) == [0, 12, 24, 36]
    assert tile_starts(16, 16, 4) == [0]
    assert tile_starts(10, 16, 0) == [0]


def test_tile_covering_image_is_bitwise_whole_image():
    net = _edsr()
    x = _astronaut(40, 52)
    whole = restore(net, x)
    assert torch.equal(restore(net, x, tile=52, overlap=4), whole)
    assert torch.equal(restore(net, x, tile=64), whole)


def _seam_free_mask(size: int, starts: list, tile: int, margin: int) -> torch.Tensor:
    """Positions that every covering tile sees at least ``margin`` away from its inner edges."""
    good = torch.ones(size, dtype=torch.bool)
    for s in starts:
        e = min(s + tile, size)
        for p in range(s, e):
            near_start = s > 0 and p - s < margin
            near_end = e < size and e - 1 - p < margin
            if near_start or near_end:
                good[p] = False
    return good


def test_tiled_edsr_matches_whole_image_away_from_seams():
    net = _Recorder(_edsr())
    x = _astronaut(40, 52)
    whole = restore(net, x)
    net.sizes.clear()
    tiled = restore(net, x, tile=16, overlap=4)
    assert tiled.shape == whole.shape == (1, 3, 80, 104)
    # Memory bound: the network only ever sees tiles.
    assert len(net.sizes) == 12 and max(max(s) for s in net.sizes) == 16

    # EDSR's receptive field reaches 5 LR pixels (+1 HR pixel), so 7 LR pixels clear every seam.
    margin, scale = 7, 2
    good_y = _seam_free_mask(40, [0, 12, 24], 16, margin).repeat_interleave(scale)
    good_x = _seam_free_mask(52, [0, 12, 24, 36], 16, margin).repeat_interleave(scale)
    good = good_y[:, None] & good_x[None, :]
    assert good.any() and (~good).any()
    diff = (tiled - whole).abs()
    assert diff[..., good].max() <= 1e-5
    assert diff[..., ~good].max() > 1e-4


def test_pointwise_net_tiled_equals_whole_everywhere():
    net = _Pointwise()
    x = _astronaut(40, 52)
    whole = restore(net, x)
    for tile, overlap in [(16, 4), (16, 0), (7, 3), (9, 5)]:
        tiled = restore(net, x, tile=tile, overlap=overlap)
        assert tiled.shape == whole.shape
        torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


# ---- self-ensemble ----------------------------------------------------------------------------


def _by_hand_ensemble(fn, x: torch.Tensor) -> torch.Tensor:
    """Dihedral group as (transpose?, flip rows?, flip cols?), a parametrisation independent of rot90."""
    outs = []
    for transpose in (False, True):
        for fh in (False, True):
            for fw in (False, True):
                dims = [d for d, on in ((-2, fh), (-1, fw)) if on]
                t = x.flip(dims) if dims else x
                t = t.transpose(-2, -1) if transpose else t
                y = fn(t)
                y = y.transpose(-2, -1) if transpose else y
                outs.append(y.flip(dims) if dims else y)
    return torch.stack(outs).mean(0)


def test_self_ensemble_matches_mean_of_eight_transforms():
    net = _edsr()
    x = _astronaut(20, 28)
    with torch.no_grad():
        expected = _by_hand_ensemble(net, x)
        got = self_ensemble(net, x)
        plain = net(x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert (got - plain).abs().max() > 1e-4
    torch.testing.assert_close(restore(net, x, ensemble=True), expected, atol=1e-6, rtol=0)


def test_self_ensemble_with_tiles_and_padding_runs():
    net = _Multiple8Net()
    x = _astronaut(37, 45)
    out = restore(net, x, tile=16, overlap=4, ensemble=True)
    assert out.shape == (1, 3, 74, 90)


@pytest.mark.parametrize("net", [nn.Identity(), nn.Conv2d(3, 3, 1)], ids=["identity", "conv1x1"])
def test_self_ensemble_of_equivariant_net_is_plain_forward(net):
    torch.manual_seed(2)
    x = _astronaut(20, 28)
    with torch.no_grad():
        plain = net(x)
    torch.testing.assert_close(restore(net, x, ensemble=True), plain, atol=1e-6, rtol=0)


# ---- argument errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"tile": 0}, "tile"),
        ({"tile": 12}, "tile"),  # not a multiple of 8
        ({"tile": 16.0}, "tile"),
        ({"tile": 16, "overlap": 16}, "tile_overlap"),
        ({"tile": 16, "overlap": -1}, "tile_overlap"),
        ({"scale": 3}, "scale"),
        ({"multiple": 0}, "size_multiple"),
    ],
)
def test_bad_arguments_raise_option_error(kwargs, key):
    net = _Multiple8Net()
    with pytest.raises(OptionError) as err:
        restore(net, torch.rand(1, 3, 24, 24), **kwargs)
    assert err.value.key == key


def test_tiled_forward_validates_directly():
    with pytest.raises(OptionError) as err:
        tiled_forward(_Pointwise(), torch.rand(1, 3, 8, 8), 2, tile=4, overlap=5)
    assert err.value.key == "tile_overlap"


# ---- memory -----------------------------------------------------------------------------------

_PEAK_CHILD = r"""
import sys, torch
from mcir.archs.edsr_arch import EDSR
from mcir.core.inference import restore

def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

def peak_extra(fn):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = rss_kib("VmRSS")
    fn()
    return rss_kib("VmHWM") - before

torch.set_num_threads(1)
torch.manual_seed(0)
net = EDSR(num_feat=32, num_block=2, upscale=1).eval()
x = torch.rand(1, 3, 512, 512)
restore(net, x[..., :64, :64])  # load kernels and thread pools before measuring
tiled = peak_extra(lambda: restore(net, x, tile=64, overlap=8))
whole = peak_extra(lambda: restore(net, x))
print(tiled, whole)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc peak-RSS reset")
def test_tiled_peak_memory_is_bounded_by_the_tile():
    """Peak RSS above the baseline, in a fresh process: a 64-pixel tile vs the whole 512x512 image."""
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", _PEAK_CHILD], capture_output=True, text=True, cwd=str(repo),
                         env={**os.environ, "PYTHONPATH": str(repo)}, timeout=300)
    assert out.returncode == 0, out.stderr
    tiled_kib, whole_kib = map(int, out.stdout.split())
    # Whole image: several 32 x 512 x 512 float maps (32 MiB each) alive at once.
    assert whole_kib > 64 * 1024
    # Tiled: the output accumulator (3 MiB) + count (1 MiB) + 64 x 64 tile maps (0.5 MiB each) + allocator slack.
    assert tiled_kib < 16 * 1024 and tiled_kib * 4 < whole_kib
