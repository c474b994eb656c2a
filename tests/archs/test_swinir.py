"""Tests of SwinIR: official parameter counts and state-dict layout, masks, padding, upsamplers, option errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from mcir.archs import build_network
from mcir.archs.swin_blocks import relative_position_index, shifted_window_mask, window_partition, window_reverse
from mcir.archs.swinir_arch import SwinIR
from mcir.errors import DataError, OptionError

OPTIONS = Path(__file__).resolve().parents[2] / "options"
LIGHT = dict(img_size=64, window_size=8, embed_dim=60, depths=[6] * 4, num_heads=[6] * 4, mlp_ratio=2,
             upsampler="pixelshuffledirect")
CLASSICAL = dict(img_size=48, window_size=8, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, mlp_ratio=2,
                 upsampler="pixelshuffle")
TINY = dict(img_size=8, window_size=4, embed_dim=8, depths=[2], num_heads=[2], mlp_ratio=2, drop_path_rate=0.0)


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# Counts of JingyunLiang/SwinIR models/network_swinir.py built with the same arguments (x4 ones published).
@pytest.mark.parametrize(
    "cfg, upscale, expected",
    [
        (LIGHT, 2, 910_152), (LIGHT, 3, 918_267), (LIGHT, 4, 929_628),
        (CLASSICAL, 2, 11_752_487), (CLASSICAL, 3, 11_937_127), (CLASSICAL, 4, 11_900_199),
    ],
    ids=["light-x2", "light-x3", "light-x4", "classical-x2", "classical-x3", "classical-x4"],
)
def test_official_parameter_counts(cfg: Dict[str, Any], upscale: int, expected: int) -> None:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        net = SwinIR(upscale=upscale, **cfg)
    assert _num_params(net) == expected


def test_state_dict_layout_matches_official() -> None:
    # Derived from the official network_swinir.py with the same arguments (3conv, pixelshuffle, x2).
    sd = SwinIR(upscale=2, resi_connection="3conv", upsampler="pixelshuffle", **TINY).state_dict()
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    outside = {k: s for k, s in shapes.items() if not k.startswith("layers.")}
    assert outside == {
        "conv_first.weight": (8, 3, 3, 3), "conv_first.bias": (8,),
        "patch_embed.norm.weight": (8,), "patch_embed.norm.bias": (8,),
        "norm.weight": (8,), "norm.bias": (8,),
        "conv_after_body.0.weight": (2, 8, 3, 3), "conv_after_body.0.bias": (2,),
        "conv_after_body.2.weight": (2, 2, 1, 1), "conv_after_body.2.bias": (2,),
        "conv_after_body.4.weight": (8, 2, 3, 3), "conv_after_body.4.bias": (8,),
        "conv_before_upsample.0.weight": (64, 8, 3, 3), "conv_before_upsample.0.bias": (64,),
        "upsample.0.weight": (256, 64, 3, 3), "upsample.0.bias": (256,),
        "conv_last.weight": (3, 64, 3, 3), "conv_last.bias": (3,),
    }
    block = "layers.0.residual_group.blocks."
    per_block = {
        "norm1.weight": (8,), "norm1.bias": (8,), "norm2.weight": (8,), "norm2.bias": (8,),
        "attn.relative_position_bias_table": (49, 2), "attn.relative_position_index": (16, 16),
        "attn.qkv.weight": (24, 8), "attn.qkv.bias": (24,), "attn.proj.weight": (8, 8), "attn.proj.bias": (8,),
        "mlp.fc1.weight": (16, 8), "mlp.fc1.bias": (16,), "mlp.fc2.weight": (8, 16), "mlp.fc2.bias": (8,),
    }
    assert {k[len(block) + 2:]: s for k, s in shapes.items() if k.startswith(block + "0.")} == per_block
    # Only shifted (odd) blocks keep a mask, shaped by img_size: (8/4)^2 windows of 16 tokens.
    assert {k[len(block) + 2:]: s for k, s in shapes.items() if k.startswith(block + "1.")} == {
        **per_block, "attn_mask": (4, 16, 16)}
    assert {k for k in shapes if k.startswith("layers.0.conv.")} == {
        f"layers.0.conv.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    assert len(shapes) == 18 + 2 * 14 + 1 + 6
    assert "mean" not in sd


@pytest.mark.parametrize("upsampler, upscale, extra", [
    ("pixelshuffledirect", 3, {"upsample.0.weight"}),
    ("nearest+conv", 4, {"conv_up1.weight", "conv_up2.weight", "conv_hr.weight", "conv_last.weight"}),
    ("nearest+conv", 2, {"conv_up1.weight", "conv_hr.weight", "conv_last.weight"}),
    ("", 1, {"conv_last.weight"}),
])
def test_upsampler_heads_and_output_shapes(upsampler: str, upscale: int, extra: set) -> None:
    net = SwinIR(upscale=upscale, upsampler=upsampler, **TINY)
    heads = {k for k in net.state_dict() if k.endswith(".weight") and not k.startswith(
        ("layers.", "conv_first", "conv_after_body", "norm", "patch_embed", "conv_before_upsample"))}
    assert heads == extra
    assert net(torch.rand(1, 3, 9, 13)).shape == (1, 3, 9 * upscale, 13 * upscale)


def test_shift_mask_separates_regions() -> None:
    # 4x4 map, window 2, shift 1: bands are rows/cols {0,1}, {2}, {3}.
    mask = shifted_window_mask(4, 4, 2, 1)
    assert mask.shape == (4, 4, 4)
    assert torch.all(mask[0] == 0)  # top-left window lies in one region
    assert torch.equal(mask[3] == 0, torch.eye(4, dtype=torch.bool))  # bottom-right: four regions
    assert int((mask[1] == 0).sum()) == 8  # top-right: two regions of two tokens
    assert set(mask.unique().tolist()) == {0.0, -100.0}


def test_relative_position_index_and_window_roundtrip() -> None:
    idx = relative_position_index(2)
    # tokens (0,0),(0,1),(1,0),(1,1); offset (dy+1)*3 + (dx+1)
    assert idx.tolist() == [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    x = torch.rand(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 6, 16, 5)
    assert torch.equal(windows[1].view(4, 4, 5), x[0, :4, 4:8])
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_stored_and_computed_masks_give_the_same_output() -> None:
    torch.manual_seed(0)
    small = SwinIR(upscale=2, upsampler="pixelshuffledirect", **TINY).eval()
    cfg = {**TINY, "img_size": 16}
    big = SwinIR(upscale=2, upsampler="pixelshuffledirect", **cfg).eval()
    state = {k: v for k, v in small.state_dict().items() if not k.endswith("attn_mask")}
    big.load_state_dict(state, strict=False)
    x = torch.rand(1, 3, 8, 8)  # small uses its stored 8x8 mask, big computes one
    torch.testing.assert_close(big(x), small(x), rtol=0, atol=1e-6)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(big(x), small(x), rtol=0, atol=1e-6)


def test_odd_and_tiny_inputs_are_padded_and_cropped() -> None:
    net = SwinIR(upscale=2, upsampler="pixelshuffle", **TINY).eval()
    assert net.size_multiple == 1
    x = torch.rand(1, 3, 17, 19)
    out = net(x)
    assert out.shape == (1, 3, 34, 38)
    # As the official code: reflect-pad bottom/right to the window multiple (20x20), then crop.
    x_pad = torch.nn.functional.pad(x, (0, 1, 0, 3), mode="reflect")
    torch.testing.assert_close(net(x_pad)[:, :, :34, :38], out, rtol=0, atol=1e-6)
    assert net(torch.rand(1, 3, 2, 3)).shape == (1, 3, 4, 6)  # too small to reflect: replicated


def test_zero_weights_give_mean_or_identity() -> None:
    sr = SwinIR(upscale=2, upsampler="pixelshuffle", **TINY)
    dn = SwinIR(upscale=1, upsampler="", in_chans=1, img_range=255.0, **TINY)
    with torch.no_grad():
        for p in [*sr.parameters(), *dn.parameters()]:
            p.zero_()
    out = sr(torch.rand(1, 3, 5, 6))
    expected = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand_as(out)
    torch.testing.assert_close(out, expected)
    x = torch.rand(1, 1, 5, 6)
    torch.testing.assert_close(dn(x), x)  # denoising output = input + residual


def test_drop_path_only_in_training_and_checkpointing_keeps_gradients() -> None:
    torch.manual_seed(0)
    cfg = {**TINY, "drop_path_rate": 0.9}
    net = SwinIR(upscale=1, upsampler="", **cfg)
    x = torch.rand(4, 3, 8, 8)
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    net.train()
    assert not torch.allclose(net(x), net.eval()(x))

    torch.manual_seed(1)
    plain = SwinIR(upscale=2, upsampler="pixelshuffledirect", **TINY)
    ckpt = SwinIR(upscale=2, upsampler="pixelshuffledirect", use_checkpoint=True, **TINY)
    ckpt.load_state_dict(plain.state_dict())
    for net in (plain, ckpt):
        net(x).square().mean().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_reset_parameters_redraws_the_bias_table() -> None:
    attn = SwinIR(upscale=1, upsampler="", **TINY).layers[0].residual_group.blocks[0].attn
    before = attn.relative_position_bias_table.detach().clone()
    attn.reset_parameters()
    assert not torch.equal(before, attn.relative_position_bias_table)
    assert 0.01 < attn.relative_position_bias_table.std() < 0.03  # trunc normal, std 0.02


def test_absolute_position_embedding_needs_training_size() -> None:
    net = SwinIR(upscale=2, upsampler="pixelshuffledirect", ape=True, **TINY)
    assert net.state_dict()["absolute_pos_embed"].shape == (1, 64, 8)
    assert net(torch.rand(1, 3, 7, 5)).shape == (1, 3, 14, 10)  # padded to 8x8
    with pytest.raises(DataError, match="img_size"):
        net(torch.rand(1, 3, 12, 12))


@pytest.mark.parametrize("change, key", [
    ({"upsampler": "pixelshuffel"}, "network_g.upsampler"),
    ({"resi_connection": "2conv"}, "network_g.resi_connection"),
    ({"upsampler": "", "upscale": 2}, "network_g.upscale"),
    ({"upsampler": "nearest+conv", "upscale": 3}, "network_g.upscale"),
    ({"upsampler": "pixelshuffle", "upscale": 5}, "network_g.upscale"),
    ({"patch_size": 2}, "network_g.patch_size"),
    ({"num_heads": [3]}, "network_g.num_heads"),
    ({"depths": [2, 2]}, "network_g.num_heads"),
    ({"img_size": [8, 8, 8]}, "network_g.img_size"),
])
def test_bad_options_name_the_key(change: Dict[str, Any], key: str) -> None:
    cfg = {"type": "SwinIR", "upscale": 2, "upsampler": "pixelshuffle", **TINY, **change}
    with pytest.raises(OptionError) as info:
        build_network(cfg, file="x.yml")
    assert info.value.key == key and info.value.file == "x.yml"


def test_null_upsampler_means_denoising() -> None:
    net = build_network({"type": "SwinIR", "upscale": 1, "upsampler": None, **TINY})
    assert net.upsampler == "" and net(torch.rand(1, 3, 5, 5)).shape == (1, 3, 5, 5)


@pytest.mark.parametrize("path, expected", [
    ("train/SR/train_SwinIR_light_SRx4_DIV2K.yml", 929_628),
    ("train/SR/train_SwinIR_light_SRx4_DIV2K_SPN.yml", 929_628),
    ("test/SR/test_SwinIR_light_SRx4.yml", 929_628),
    ("train/SR/train_SwinIR_SRx4_DIV2K.yml", 11_900_199),
    ("train/SR/train_SwinIR_SRx4_DIV2K_SPN.yml", 11_900_199),
    ("test/SR/test_SwinIR_SRx4.yml", 11_900_199),
])
def test_option_files_build_the_released_networks(path: str, expected: int) -> None:
    from mcir.options import load_options

    opt = load_options(str(OPTIONS / path), is_train=path.startswith("train"))
    with torch.device("meta"):
        net = build_network(opt["network_g"])
    assert _num_params(net) == expected
    # The released files' masks are shaped by the training patch: 64 (light) / 48 (classical), window 8.
    mask = net.layers[0].residual_group.blocks[1].attn_mask
    assert mask.shape == ((64 if "light" in path else 36), 64, 64)
