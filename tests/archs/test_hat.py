"""Tests of HAT: recorded official outputs, official parameter counts and shapes, padding, shifts, option errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch

from mcir.archs import build_network
from mcir.archs.hat_arch import HAT
from mcir.archs.hat_blocks import overlap_position_index
from mcir.errors import DataError, OptionError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS = Path(__file__).resolve().parents[2] / "options"
NAME = "train_HAT_SRx4_DF2K"
_spec = importlib.util.spec_from_file_location("make_hat_rcan", FIXTURES / "make_hat_rcan.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)

# Released configurations (XPixelGroup/HAT options/test/HAT_SRx4.yml, HAT-L_SRx4_ImageNet-pretrain.yml, ...).
RELEASED = dict(img_size=64, window_size=16, compress_ratio=3, squeeze_factor=30, conv_scale=0.01, overlap_ratio=0.5,
                img_range=1.0, embed_dim=180, mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv")
TINY = dict(make.HAT_CONFIG, drop_path_rate=0.0)


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_matches_the_official_output_with_strict_loading() -> None:
    data = np.load(FIXTURES / "hat_tiny.npz")
    assert json.loads(str(data["config"])) == make.HAT_CONFIG
    net = HAT(**make.HAT_CONFIG).eval()
    own = net.state_dict()
    # Official names and shapes, and the official index buffers (the OCA one has negative entries).
    assert sorted(own) == data["keys"].tolist()
    assert {k: list(v.shape) for k, v in own.items()} == json.loads(str(data["shapes"]))
    for name in ("relative_position_index_SA", "relative_position_index_OCA"):
        assert np.array_equal(own[name].numpy(), data[f"buffer:{name}"]), name
    net.load_state_dict(make.seeded_weights(own, int(data["seeds"][0])), strict=True)
    x = torch.from_numpy(data["input"])
    assert x.shape[-1] % make.HAT_CONFIG["window_size"] and x.shape[-2] % make.HAT_CONFIG["window_size"]
    with torch.no_grad():
        out = net(x)
    assert out.shape == data["output"].shape
    assert (out - torch.from_numpy(data["output"])).abs().max().item() <= 1e-5


# Counts of XPixelGroup/HAT hat/archs/hat_arch.py (commit 1638a9a) built with the released option files'
# network_g: HAT = options/test/HAT_SRx{2,4}.yml (6 groups), HAT-L = options/test/HAT-L_SRx{2,4}_ImageNet-pretrain.yml
# (12 groups); the paper's Table 6 rounds HAT x4 to 20.8M.
@pytest.mark.parametrize("groups, upscale, expected", [
    (6, 2, 20_624_795), (6, 4, 20_772_507), (12, 2, 40_698_863), (12, 4, 40_846_575),
], ids=["HAT-x2", "HAT-x4", "HAT-L-x2", "HAT-L-x4"])
def test_official_parameter_counts(groups: int, upscale: int, expected: int) -> None:
    with torch.device("meta"):
        net = HAT(upscale=upscale, depths=[6] * groups, num_heads=[6] * groups, **RELEASED)
    assert _num_params(net) == expected


def test_released_shapes_of_the_attention_tables_and_indices() -> None:
    with torch.device("meta"):
        sd = HAT(upscale=4, depths=[6] * 6, num_heads=[6] * 6, **RELEASED).state_dict()
    blk = "layers.5.residual_group.blocks.5."
    assert sd[blk + "attn.relative_position_bias_table"].shape == (31 * 31, 6)
    assert sd[blk + "conv_block.cab.3.attention.1.weight"].shape == (6, 180, 1, 1)  # 180 // squeeze 30
    assert sd[blk + "conv_block.cab.0.weight"].shape == (60, 180, 3, 3)  # 180 // compress 3
    assert sd["layers.0.residual_group.overlap_attn.relative_position_bias_table"].shape == (39 * 39, 6)
    assert sd["relative_position_index_SA"].shape == (256, 256)
    assert sd["relative_position_index_OCA"].shape == (256, 576)
    assert not any("attn_mask" in k or k == "mean" for k in sd)


def test_overlap_index_covers_the_table_once_despite_negative_entries() -> None:
    idx = overlap_position_index(16, 24)
    assert idx.min() < 0  # as the official calculate_rpi_oca; indexing wraps these
    wrapped = idx % (39 * 39)
    assert wrapped.unique().numel() == 39 * 39
    # same (dy, dx) offset -> same row: query (0, 0) / key (1, 2) and query (3, 4) / key (4, 6)
    assert idx[0, 1 * 24 + 2] == idx[3 * 16 + 4, 4 * 24 + 6]


def test_any_size_is_reflect_padded_to_the_window_and_cropped() -> None:
    torch.manual_seed(0)
    net = HAT(**TINY).eval()
    assert net.size_multiple == 1
    x = torch.rand(1, 3, 9, 6)
    with torch.no_grad():
        out = net(x)
        ref = net(torch.nn.functional.pad(x, (0, 2, 0, 3), mode="reflect"))[:, :, :18, :12]
        assert out.shape == (1, 3, 18, 12)
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
        assert net(torch.rand(2, 3, 3, 2)).shape == (2, 3, 6, 4)  # too small to reflect: replicated


def test_shift_follows_img_size_and_window() -> None:
    shifted = HAT(**TINY)
    assert [b.shift_size for b in shifted.layers[0].residual_group.blocks] == [0, 2]
    flat = HAT(**{**TINY, "img_size": 4})  # a training patch of one window: nothing to shift (official rule)
    assert all(b.shift_size == 0 for layer in flat.layers for b in layer.residual_group.blocks)


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    net = HAT(**{**TINY, "drop_path_rate": 0.9})
    x = torch.rand(4, 3, 8, 8)
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    net.train()
    assert not torch.allclose(net(x), net.eval()(x))


def test_identity_residual_connection_and_ape() -> None:
    net = HAT(**{**TINY, "resi_connection": "identity", "ape": True})
    assert not any(k.startswith("conv_after_body") or ".conv." in k for k in net.state_dict())
    assert net.state_dict()["absolute_pos_embed"].shape == (1, 64, 12)
    assert net(torch.rand(1, 3, 7, 5)).shape == (1, 3, 14, 10)  # padded to the window (8x8 = img_size)
    with pytest.raises(DataError, match="img_size"):
        net(torch.rand(1, 3, 12, 12))


@pytest.mark.parametrize("change, key", [
    ({"upsampler": ""}, "network_g.upsampler"),
    ({"window_size": 7, "img_size": 14}, "network_g.overlap_ratio"),  # the official default window: odd overlap
    ({"img_size": 3}, "network_g.img_size"),
    ({"patch_size": 2}, "network_g.patch_size"),
    ({"num_heads": [5, 3]}, "network_g.num_heads"),
    ({"depths": [2]}, "network_g.num_heads"),
    ({"resi_connection": "3conv"}, "network_g.resi_connection"),
    ({"squeeze_factor": 13}, "network_g.squeeze_factor"),
    ({"upscale": 5}, "network_g.upscale"),
])
def test_bad_options_name_the_key(change: Dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as info:
        build_network({"type": "HAT", **TINY, **change}, file="x.yml")
    assert info.value.key == key and info.value.file == "x.yml"


@pytest.mark.parametrize("path, expected", [
    ("train/SR/train_HAT_SRx4_DF2K.yml", 20_772_507),
    ("train/SR/train_HAT_SRx4_DF2K_SPN.yml", 20_772_507),
    ("test/SR/test_HAT_SRx4.yml", 20_772_507),
    ("test/SR/test_HAT-L_SRx4.yml", 40_846_575),
])
def test_option_files_build_the_released_networks(path: str, expected: int) -> None:
    from mcir.options import load_options

    opt = load_options(str(OPTIONS / path), is_train=path.startswith("train"))
    with torch.device("meta"):
        net = build_network(opt["network_g"])
    assert _num_params(net) == expected
