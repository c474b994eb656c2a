"""Tests of FFA-Net: official parameter count and names, fusion of the groups, RESIDE input normalisation."""

from __future__ import annotations

import pytest
import torch

from mcir.archs import build_network
from mcir.archs.ffanet_arch import RESIDE_MEAN, RESIDE_STD, FFANet
from mcir.errors import OptionError


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_parameter_count_matches_the_official_model() -> None:
    with torch.device("meta"):
        net = FFANet(gps=3, blocks=19)
    assert _num_params(net) == 4_455_913


def test_state_dict_names_and_shapes_of_a_small_config() -> None:
    state = {k: tuple(v.shape) for k, v in FFANet(gps=3, blocks=1, dim=16).state_dict().items()}
    block = {
        "conv1.weight": (16, 16, 3, 3), "conv1.bias": (16,), "conv2.weight": (16, 16, 3, 3), "conv2.bias": (16,),
        "calayer.ca.0.weight": (2, 16, 1, 1), "calayer.ca.0.bias": (2,),
        "calayer.ca.2.weight": (16, 2, 1, 1), "calayer.ca.2.bias": (16,),
        "palayer.pa.0.weight": (2, 16, 1, 1), "palayer.pa.0.bias": (2,),
        "palayer.pa.2.weight": (1, 2, 1, 1), "palayer.pa.2.bias": (1,),
    }
    expected = {}
    for g in ("g1", "g2", "g3"):
        expected.update({f"{g}.gp.0.{k}": v for k, v in block.items()})
        expected.update({f"{g}.gp.1.weight": (16, 16, 3, 3), f"{g}.gp.1.bias": (16,)})
    expected.update({
        "ca.1.weight": (1, 48, 1, 1), "ca.1.bias": (1,), "ca.3.weight": (48, 1, 1, 1), "ca.3.bias": (48,),
        "palayer.pa.0.weight": (2, 16, 1, 1), "palayer.pa.0.bias": (2,),
        "palayer.pa.2.weight": (1, 2, 1, 1), "palayer.pa.2.bias": (1,),
        "pre.0.weight": (16, 3, 3, 3), "pre.0.bias": (16,),
        "post.0.weight": (16, 16, 3, 3), "post.0.bias": (16,), "post.1.weight": (3, 16, 3, 3), "post.1.bias": (3,),
    })
    assert state == expected
    assert "mean" not in state and "std" not in state  # official checkpoints have no such entries


def test_fusion_weights_each_group_output_per_channel() -> None:
    torch.manual_seed(0)
    net = FFANet(gps=2, blocks=1, dim=16).eval()
    x = torch.rand(2, 3, 7, 9)
    with torch.no_grad():
        feat = net.pre(x)
        r1 = net.g1(feat)
        r2 = net.g2(r1)
        w = net.ca(torch.cat([r1, r2], 1))
        fused = w[:, :16] * r1 + w[:, 16:] * r2
        expected = net.post(net.palayer(fused)) + x
        torch.testing.assert_close(net(x), expected)


def test_input_norm_uses_reside_statistics_and_does_not_map_the_output_back() -> None:
    plain = FFANet(gps=3, blocks=1, dim=16)
    normed = FFANet(gps=3, blocks=1, dim=16, input_norm=True)
    normed.load_state_dict(plain.state_dict(), strict=True)
    x = torch.rand(1, 3, 11, 13)
    mean, std = torch.tensor(RESIDE_MEAN).view(1, 3, 1, 1), torch.tensor(RESIDE_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(normed(x), plain((x - mean) / std))
        for p in normed.parameters():
            p.zero_()
        # zero weights leave only the global skip: the normalised input, not de-normalised
        torch.testing.assert_close(normed(x), (x - mean) / std)
    assert RESIDE_MEAN == (0.64, 0.6, 0.58) and RESIDE_STD == (0.14, 0.15, 0.152)


def test_odd_sizes_keep_their_shape() -> None:
    net = FFANet(gps=3, blocks=1, dim=16)
    assert net(torch.rand(2, 3, 17, 19)).shape == (2, 3, 17, 19)


@pytest.mark.parametrize("key, value", [("dim", 8), ("gps", 0), ("blocks", -1)])
def test_option_errors_name_the_key(key: str, value: int) -> None:
    with pytest.raises(OptionError) as info:
        build_network({"type": "FFANet", key: value})
    assert info.value.key == f"network_g.{key}"
