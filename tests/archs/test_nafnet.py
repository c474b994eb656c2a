"""Tests of NAFNet: official parameter counts and names, padding to any size, TLC's local pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcir.archs import build_network
from mcir.archs.nafnet_arch import LocalAvgPool2d, NAFNet, NAFNetLocal, local_avg_pool
from mcir.errors import OptionError

GOPRO = {"enc_blk_nums": [1, 1, 1, 28], "middle_blk_num": 1, "dec_blk_nums": [1, 1, 1, 1]}
TINY = {"width": 4, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero beta/gamma too, so every branch contributes (they start at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return net


@pytest.mark.parametrize("width, expected", [(32, 17_111_907), (64, 67_888_835)])
def test_gopro_parameter_counts_match_the_official_release(width: int, expected: int) -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation time
        net = NAFNet(width=width, **GOPRO)
    assert _num_params(net) == expected


def test_state_dict_names_and_shapes_of_a_small_config() -> None:
    state = NAFNet(img_channel=3, width=4, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1]).state_dict()
    block = {
        "beta": (1, 4, 1, 1), "gamma": (1, 4, 1, 1),
        "conv1.weight": (8, 4, 1, 1), "conv1.bias": (8,),
        "conv2.weight": (8, 1, 3, 3), "conv2.bias": (8,),
        "conv3.weight": (4, 4, 1, 1), "conv3.bias": (4,),
        "sca.1.weight": (4, 4, 1, 1), "sca.1.bias": (4,),
        "conv4.weight": (8, 4, 1, 1), "conv4.bias": (8,),
        "conv5.weight": (4, 4, 1, 1), "conv5.bias": (4,),
        "norm1.weight": (4,), "norm1.bias": (4,), "norm2.weight": (4,), "norm2.bias": (4,),
    }
    expected = {"intro.weight": (4, 3, 3, 3), "intro.bias": (4,), "ending.weight": (3, 4, 3, 3), "ending.bias": (3,),
                "downs.0.weight": (8, 4, 2, 2), "downs.0.bias": (8,), "ups.0.0.weight": (16, 8, 1, 1)}
    for prefix, c in (("encoders.0.0.", 4), ("middle_blks.0.", 8), ("decoders.0.0.", 4)):
        for name, shape in block.items():
            expected[prefix + name] = tuple(c if d == 4 else 2 * c if d == 8 else d for d in shape)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    # registration order as in the official module (optimizer states line up with it)
    assert [k.split(".")[0] for k in state][:4] == ["intro", "intro", "ending", "ending"]


@pytest.mark.parametrize("size", [(17, 19), (33, 8), (5, 3)])
def test_any_size_is_padded_and_cropped_back(size) -> None:
    net = _randomise(NAFNet(**TINY)).eval()
    h, w = size
    x = torch.rand(2, 3, h, w)
    with torch.no_grad():
        out = net(x)
        # the network itself zero-pads to a multiple of 2**levels = 4; doing it outside gives the same
        padded = net(F.pad(x, (0, (-w) % 4, 0, (-h) % 4)))
    assert out.shape == x.shape and net.size_multiple == 1
    torch.testing.assert_close(out, padded[..., :h, :w])


def test_block_branch_scales_start_at_zero_as_in_the_official_code() -> None:
    net = NAFNet(**TINY)
    assert all(not p.detach().any() for n, p in net.named_parameters() if n.endswith(("beta", "gamma")))


def test_local_avg_pool_matches_a_direct_window_mean() -> None:
    x = torch.rand(2, 3, 9, 12, dtype=torch.float64)
    out = local_avg_pool(x, (4, 5))
    valid = F.avg_pool2d(x, (4, 5), stride=1)  # means of the windows inside the image: (6, 8)
    # TLC fills the border by replicating the nearest valid mean: rows 1 above / 2 below, cols 2 / 2
    expected = F.pad(valid, (2, 2, 1, 2), mode="replicate")
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected)
    # a window covering the map is the global mean; one covering only one side is clipped to it
    torch.testing.assert_close(local_avg_pool(x, (9, 12)), x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(local_avg_pool(x, (20, 5)), F.pad(F.avg_pool2d(x, (9, 5), stride=1),
                                                                 (2, 2, 4, 4), mode="replicate"))


def test_local_avg_pool_keeps_half_precision_accurate() -> None:
    x = torch.rand(1, 2, 64, 80)
    out = local_avg_pool(x.half(), (16, 16))
    assert out.dtype == torch.float16
    torch.testing.assert_close(out.float(), local_avg_pool(x, (16, 16)), atol=2e-3, rtol=0)


def test_tlc_windows_follow_the_official_converter_for_gopro_training_size() -> None:
    with torch.device("meta"):
        net = NAFNet(width=32, tlc=True, train_size=(1, 3, 256, 256), **GOPRO)
    kernels = {n: m.kernel_size for n, m in net.named_modules() if isinstance(m, LocalAvgPool2d)}
    # 1.5x the feature size at each level for 256x256 crops: 384, 192, 96, 48, and 24 in the middle
    assert kernels["encoders.0.0.sca.0"] == (384, 384)
    assert kernels["encoders.3.27.sca.0"] == (48, 48)
    assert kernels["middle_blks.0.sca.0"] == (24, 24)
    assert kernels["decoders.0.0.sca.0"] == (48, 48)
    assert kernels["decoders.3.0.sca.0"] == (384, 384)
    assert len(kernels) == 28 + 3 + 1 + 4
    # non-square crops not divisible by 2**levels: the official converter pads them first
    small = NAFNet(**{**TINY, "tlc": True, "train_size": (10, 7)})
    assert small.encoders[0][0].sca[0].kernel_size == (12 * 15 // 10, 8 * 10 // 7)


def test_tlc_changes_only_eval_mode_on_images_larger_than_the_training_size() -> None:
    torch.manual_seed(0)
    plain = _randomise(NAFNet(**TINY))
    tlc = NAFNet(**TINY, tlc=True, train_size=(16, 16))
    tlc.load_state_dict(plain.state_dict(), strict=True)  # same parameters with and without TLC
    large, small = torch.rand(1, 3, 64, 48), torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(tlc.train()(large), plain.train()(large))  # training unchanged
        plain.eval(), tlc.eval()
        torch.testing.assert_close(tlc(small), plain(small))  # windows cover training-size inputs
        assert (tlc(large) - plain(large)).abs().max() > 1e-3
    assert NAFNetLocal(**TINY).tlc is True and NAFNet(**TINY).tlc is False


def test_option_errors_name_the_key() -> None:
    with pytest.raises(OptionError) as info:
        build_network({"type": "NAFNet", "enc_blk_nums": [1, 1], "dec_blk_nums": [1]})
    assert info.value.key == "network_g.dec_blk_nums"
    with pytest.raises(OptionError) as info:
        build_network({"type": "NAFNetLocal", "train_size": [256]})
    assert info.value.key == "network_g.train_size"
