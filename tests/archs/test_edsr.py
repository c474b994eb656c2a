"""Tests of EDSR: BasicSR-compatible parameter counts and names, x3 upsampling, option errors."""

from __future__ import annotations

import pytest
import torch

from mcir.archs import build_network
from mcir.archs.edsr_arch import EDSR
from mcir.errors import OptionError


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("upscale, expected", [(2, 1_369_859), (4, 1_517_571)])
def test_light_edsr_parameter_count(upscale: int, expected: int) -> None:
    assert _num_params(EDSR(num_feat=64, num_block=16, upscale=upscale)) == expected


def test_state_dict_keys_match_basicsr() -> None:
    keys = set(EDSR(num_feat=8, num_block=3, upscale=4).state_dict())
    for key in (
        "conv_first.weight",
        "body.0.conv1.weight",
        "body.2.conv2.bias",
        "conv_after_body.weight",
        "upsample.0.weight",
        "upsample.2.weight",
        "conv_last.bias",
    ):
        assert key in keys, key
    assert "mean" not in keys
    assert not any(k.startswith("body.3.") or k.startswith("upsample.4") for k in keys)


def test_state_dict_roundtrip_strict() -> None:
    src = EDSR(num_feat=8, num_block=2, upscale=2)
    dst = EDSR(num_feat=8, num_block=2, upscale=2)
    dst.load_state_dict(src.state_dict(), strict=True)
    x = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(dst(x), src(x))


def test_x3_upsampler_and_output_shape() -> None:
    net = EDSR(num_feat=8, num_block=1, upscale=3)
    assert net.upsample[0].weight.shape == (9 * 8, 8, 3, 3)
    assert isinstance(net.upsample[1], torch.nn.PixelShuffle) and len(net.upsample) == 2
    assert net(torch.rand(1, 3, 7, 5)).shape == (1, 3, 21, 15)


def test_mean_is_restored_on_output() -> None:
    net = EDSR(num_feat=8, num_block=1, upscale=2)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    out = net(torch.rand(1, 3, 4, 4))
    # With zero weights only the mean shift survives: output == rgb_mean everywhere.
    expected = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand_as(out)
    torch.testing.assert_close(out, expected)


def test_bad_upscale_and_rgb_mean_name_the_option() -> None:
    with pytest.raises(OptionError) as info:
        build_network({"type": "EDSR", "upscale": 5})
    assert info.value.key == "network_g.upscale"
    with pytest.raises(OptionError) as info:
        build_network({"type": "EDSR", "num_in_ch": 1, "num_out_ch": 1, "rgb_mean": [0.1, 0.2]})
    assert info.value.key == "network_g.rgb_mean"
    gray = build_network({"type": "EDSR", "num_in_ch": 1, "num_out_ch": 1, "rgb_mean": [0.44],
                          "num_feat": 4, "num_block": 1, "upscale": 2})
    assert gray(torch.rand(1, 1, 4, 4)).shape == (1, 1, 8, 8)
