"""Tests of DehazeFormer: official parameter counts and names, output fingerprint, [0, 1] I/O, padding."""

from __future__ import annotations

import math

import pytest
import torch

from mcir.archs import build_network
from mcir.archs.dehazeformer_arch import DEHAZEFORMER_CONFIGS, DehazeFormer
from mcir.errors import OptionError

# A small config touching every code path: attention and conv-only blocks, shifted windows, both conv types.
TINY = dict(
    embed_dims=[8, 16, 16, 16, 8], mlp_ratios=[2.0, 4.0, 4.0, 2.0, 2.0], depths=[2, 2, 2, 1, 1],
    num_heads=[2, 2, 2, 1, 1], attn_ratio=[0.5, 1.0, 1.0, 0.0, 0.0],
    conv_type=["DWConv", "Conv", "DWConv", "Conv", "DWConv"], window_size=4,
)


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _fill_deterministic(net: torch.nn.Module) -> None:
    """Weights from a formula over the sorted state_dict, so the official code can be fed the same ones."""
    with torch.no_grad():
        for i, (key, value) in enumerate(sorted(net.state_dict().items())):
            if key.endswith("relative_positions"):
                continue
            ramp = torch.arange(value.numel(), dtype=torch.float64) * 0.37 + i
            value.copy_((0.1 * torch.sin(ramp)).view(value.shape).float())


def _image(*shape: int) -> torch.Tensor:
    n = math.prod(shape)
    return (0.5 + 0.4 * torch.sin(torch.arange(n, dtype=torch.float64) * 0.011)).view(shape).float()


@pytest.mark.parametrize(
    "variant, expected",
    [("t", 687_404), ("s", 1_284_884), ("b", 2_517_612), ("m", 4_635_952), ("l", 25_451_652)],
)
def test_official_parameter_counts(variant: str, expected: int) -> None:
    with torch.device("meta"):
        net = DehazeFormer(**DEHAZEFORMER_CONFIGS[variant])
    assert _num_params(net) == expected


def test_defaults_are_dehazeformer_b() -> None:
    with torch.device("meta"):
        assert _num_params(DehazeFormer()) == 2_517_612


def test_state_dict_names_and_shapes_of_t_match_official() -> None:
    with torch.device("meta"):
        sd = DehazeFormer(**DEHAZEFORMER_CONFIGS["t"]).state_dict()
    assert len(sd) == 258  # official dehazeformer_t(), buffers included
    expected = {
        "patch_embed.proj.weight": (24, 3, 3, 3),
        "layer1.blocks.0.attn.conv.weight": (24, 1, 5, 5),
        "layer1.blocks.0.attn.V.weight": (24, 24, 1, 1),
        "layer1.blocks.3.mlp.mlp.2.weight": (24, 48, 1, 1),
        "layer2.blocks.2.norm1.meta1.weight": (48, 1, 1, 1),
        "layer2.blocks.3.attn.QK.weight": (96, 48, 1, 1),
        "layer2.blocks.3.attn.attn.relative_positions": (64, 64, 2),
        "layer3.blocks.0.attn.attn.meta.2.weight": (6, 256),
        "patch_merge2.proj.weight": (96, 48, 2, 2),
        "patch_split1.proj.0.weight": (192, 96, 1, 1),
        "fusion1.mlp.0.weight": (6, 48, 1, 1),
        "fusion2.mlp.2.weight": (48, 4, 1, 1),
        "skip1.weight": (24, 24, 1, 1),
        "patch_unembed.proj.0.weight": (4, 24, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    # attn_ratio 0 in stage 1 (T): no norm/QK there; first half of stage 2 attention-free
    assert not any(k.startswith("layer1.") and (".norm1." in k or ".QK." in k) for k in sd)
    assert "layer2.blocks.1.attn.QK.weight" not in sd and "layer2.blocks.2.attn.QK.weight" in sd


def test_output_matches_official_fingerprint() -> None:
    # Reference numbers: IDKiro/DehazeFormer models/dehazeformer.py (commit 5af7c34) with the same
    # formula weights, fed 2x-1 and mapped back with (y+1)/2. Odd 37x42 input exercises the padding.
    net = DehazeFormer(**TINY).eval()
    _fill_deterministic(net)
    x = _image(1, 3, 37, 42)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.mean().item() == pytest.approx(0.5397214293479919, abs=1e-5)
    assert (y - x).abs().mean().item() == pytest.approx(0.045120492577552795, abs=1e-5)
    expected = {(17, 29): [0.9011243581771851, 0.569095253944397, 0.1714230477809906],
                (36, 41): [0.223518967628479, 0.6608210206031799, 0.8188133835792542]}
    for (i, j), rgb in expected.items():
        torch.testing.assert_close(y[0, :, i, j], torch.tensor(rgb), atol=2e-5, rtol=0)


def test_unit_range_io_is_the_official_mapping_in_0_1() -> None:
    torch.manual_seed(0)
    unit = DehazeFormer(**TINY, unit_range_io=True).eval()
    official = DehazeFormer(**TINY, unit_range_io=False).eval()
    official.load_state_dict(unit.state_dict(), strict=True)
    x = torch.rand(2, 3, 33, 35)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), (official(x * 2 - 1) + 1) / 2, atol=1e-6, rtol=0)


def test_zero_head_returns_input() -> None:
    # J = K*I - B + I: with a zero head (K = B = 0) the network is the identity, in both ranges.
    for unit in (True, False):
        net = DehazeFormer(**TINY, unit_range_io=unit)
        with torch.no_grad():
            net.patch_unembed.proj[0].weight.zero_()
            net.patch_unembed.proj[0].bias.zero_()
        x = torch.rand(1, 3, 21, 18)
        torch.testing.assert_close(net(x), x, atol=1e-6, rtol=0)


def test_odd_and_tiny_sizes_are_padded_and_cropped_back() -> None:
    torch.manual_seed(0)
    net = DehazeFormer(**TINY).eval()
    x = torch.rand(1, 3, 37, 42)
    padded = torch.nn.functional.pad(x, (0, 2, 0, 3), mode="reflect")  # what check_image_size does
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(padded)[:, :, :37, :42], atol=1e-6, rtol=0)
        for shape in [(2, 3, 5, 7), (1, 3, 17, 19), (1, 3, 1, 30)]:
            out = net(torch.rand(*shape))
            assert out.shape == shape and torch.isfinite(out).all()
    assert net.size_multiple == 1 and net.upscale == 1


def test_bad_options_name_the_key() -> None:
    cases = [
        ({"out_chans": 3}, "network_g.out_chans"),
        ({"conv_type": ["DWConv"] * 4 + ["Conv3"]}, "network_g.conv_type"),
        ({"depths": [1, 1, 1]}, "network_g.depths"),
        ({"embed_dims": [24, 48, 96, 32, 24]}, "network_g.embed_dims"),
        ({"num_heads": [5, 4, 6, 1, 1]}, "network_g.num_heads"),
    ]
    for extra, key in cases:
        with pytest.raises(OptionError) as info:
            build_network({"type": "DehazeFormer", **extra})
        assert info.value.key == key, extra


def test_official_checkpoint_container_loads_strictly(tmp_path) -> None:
    # train.py saves {'state_dict': DataParallel(net).state_dict()}: a container and 'module.' prefixes.
    from mcir.core.checkpoint_io import load_network_weights

    torch.manual_seed(0)
    src = DehazeFormer(**DEHAZEFORMER_CONFIGS["t"])
    path = tmp_path / "dehazeformer-t.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    dst = DehazeFormer(**DEHAZEFORMER_CONFIGS["t"])
    load_network_weights(dst, str(path), "params", strict=True)
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
