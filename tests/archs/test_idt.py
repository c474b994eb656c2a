"""Tests of IDT: official parameter count and names, output fingerprint, any-size inference."""

from __future__ import annotations

import math

import pytest
import torch

from mcir.archs import build_network
from mcir.archs.idt_arch import IDT, _tile_starts
from mcir.errors import OptionError


def _fill_deterministic(net: torch.nn.Module) -> None:
    """Weights from a formula over the sorted state_dict, so the official code can be fed the same ones."""
    with torch.no_grad():
        for i, (_, value) in enumerate(sorted(net.state_dict().items())):
            ramp = torch.arange(value.numel(), dtype=torch.float64) * 0.37 + i
            value.copy_((0.1 * torch.sin(ramp)).view(value.shape).float())


def _image(*shape: int) -> torch.Tensor:
    n = math.prod(shape)
    return (0.5 + 0.4 * torch.sin(torch.arange(n, dtype=torch.float64) * 0.011)).view(shape).float()


def test_official_parameter_count_and_names() -> None:
    with torch.device("meta"):
        sd = IDT().state_dict()
    assert sum(v.numel() for v in sd.values()) == 16_416_463
    assert len(sd) == 571
    expected = {
        "input_proj.proj.0.weight": (32, 3, 3, 3),
        "encoderlayer_0.blocks.0.attn.relative_position_bias_table": (225, 1),
        "encoderlayer_0.blocks.0.attn.qkv.to_kv.weight": (96, 32),
        "encoderlayer_0.blocks.3.attn.relative_position_bias_table": (961, 1),  # spatial layer, k_bound 16
        "encoderlayer_0.blocks.3.attn.Position_Extract.0.weight": (64, 1, 5, 5),
        "encoderlayer_0.blocks.3.mlp.linear1.0.weight": (256, 32),
        "encoderlayer_0.blocks.3.norm2.weight": (32,),
        "encoderlayer_3.blocks.2.attn.Position_Extract.0.weight": (64, 1, 3, 3),  # 2x2 window grid
        "dowsample_3.conv.0.weight": (512, 256, 4, 4),
        "bottle.blocks.0.attn.Position_Extract.1.weight": (512, 32, 1, 1),
        "upsample_0.deconv.0.weight": (512, 256, 2, 2),
        "upsample_3.deconv.0.weight": (128, 32, 2, 2),
        "decoderlayer_0.blocks.1.attn.relative_position_bias_table": (9, 16),
        "decoderlayer_3.blocks.3.mlp.linear2.0.weight": (64, 256),
        "output_proj.proj.0.weight": (3, 64, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert "bottle.blocks.1.norm1.weight" not in sd  # one block, no spatial layer
    assert "encoderlayer_3.blocks.3.norm2.weight" not in sd  # two window blocks + spatial at level 3
    assert not any("relative_position_index" in k for k in sd)  # a plain attribute in the official code


def test_output_matches_official_fingerprint() -> None:
    # Reference numbers: jiexiaou/IDT model.py (commit d72510c) with img_size 64, embed_dim 32 -> 8 and the
    # same formula weights; the 70x100 image through test_full_size.py's split / score-map merge.
    net = IDT(img_size=64, embed_dim=8).eval()
    _fill_deterministic(net)
    x = _image(1, 3, 64, 64)
    with torch.no_grad():
        y = net(x)
    assert y.mean().item() == pytest.approx(0.5432372689247131, abs=1e-5)
    assert (y - x).abs().mean().item() == pytest.approx(0.16979539394378662, abs=1e-5)
    rgb = [0.34773266315460205, 0.9124591946601868, 0.9908365607261658]
    torch.testing.assert_close(y[0, :, 17, 29], torch.tensor(rgb), atol=2e-5, rtol=0)
    x = _image(1, 3, 70, 100)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.mean().item() == pytest.approx(0.5396745800971985, abs=1e-5)
    assert (y - x).abs().mean().item() == pytest.approx(0.15101651847362518, abs=1e-5)
    rgb = [0.07718613743782043, 0.4334489405155182, 0.742200493812561]
    torch.testing.assert_close(y[0, :, 60, 50], torch.tensor(rgb), atol=2e-5, rtol=0)


def test_tile_starts_follow_official_split() -> None:
    assert _tile_starts(128, 128, 20) == [0]
    assert _tile_starts(129, 128, 20) == [0, 1]
    assert _tile_starts(321, 128, 20) == [0, 108, 193]
    assert _tile_starts(481, 128, 20) == [0, 108, 216, 324, 353]


def test_any_size_and_tile_batch_do_not_change_results() -> None:
    torch.manual_seed(0)
    net = IDT(img_size=64, embed_dim=4, mlp_ratio=1.0).eval()
    x = torch.rand(2, 3, 66, 64)  # two overlapping patches per image (the fingerprint test covers 2-D merges)
    small = torch.rand(1, 3, 17, 19)
    with torch.no_grad():
        ref = net(x)
        # One patch per pass, one image of the batch: same result as all patches of both images at once.
        net.tile_batch = 1
        torch.testing.assert_close(net(x[1:]), ref[1:], atol=1e-6, rtol=0)
        out = net(small)
        padded = torch.nn.functional.pad(small, (0, 45, 0, 47), mode="replicate")
        torch.testing.assert_close(out, net(padded)[:, :, :17, :19], atol=1e-6, rtol=0)
    assert ref.shape == x.shape and out.shape == small.shape and net.size_multiple == 1


def test_drop_path_only_in_training() -> None:
    torch.manual_seed(0)
    net = IDT(img_size=64, embed_dim=4, mlp_ratio=1.0, drop_path_rate=0.5)
    x = torch.rand(1, 3, 64, 64)
    net.eval()
    with torch.no_grad():
        a, b = net(x), net(x)
        net.train()
        c = net(x)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_bad_options_name_the_key() -> None:
    cases = [
        ({"img_size": 96}, "network_g.img_size"),
        ({"win_size": 6}, "network_g.win_size"),
        ({"num_heads": [1, 2, 4, 8, 16, 16, 8, 4]}, "network_g.num_heads"),
        ({"num_heads": [3, 2, 4, 8, 16, 16, 8, 4, 2]}, "network_g.num_heads"),
        ({"tile_overlap": 128}, "network_g.tile_overlap"),
    ]
    for extra, key in cases:
        with pytest.raises(OptionError) as info:
            build_network({"type": "IDT", "embed_dim": 8, "img_size": 64, **extra})
        assert info.value.key == key, extra


def test_official_dataparallel_state_dict_loads_strictly(tmp_path) -> None:
    # train_derain.py saves DataParallel(net).state_dict(): 'module.'-prefixed keys, no container.
    from mcir.core.checkpoint_io import load_network_weights

    torch.manual_seed(0)
    src = IDT(img_size=64, embed_dim=4)
    path = tmp_path / "net_latest.pth"
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)
    dst = IDT(img_size=64, embed_dim=4)
    load_network_weights(dst, str(path), "params", strict=True)
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
