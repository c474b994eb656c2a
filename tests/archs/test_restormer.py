"""Tests of Restormer: outputs of the official code, official names and parameter count, any input size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mcir.archs import build_network
from mcir.archs.restormer_arch import Restormer
from mcir.errors import OptionError

FIXTURES = Path(__file__).parent / "fixtures"
# Generation: tests/archs/fixtures/RESTORMER.md (official swz30/Restormer at df766d5).
CONFIGS: Dict[str, Dict[str, Any]] = {
    "restormer_tiny": dict(inp_channels=3, out_channels=3, dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                           heads=[1, 1, 1, 1], ffn_expansion_factor=2.66, bias=False, LayerNorm_type="WithBias",
                           dual_pixel_task=False),
    "restormer_tiny_dualpixel": dict(inp_channels=6, out_channels=3, dim=8, num_blocks=[1, 2, 1, 1],
                                     num_refinement_blocks=1, heads=[1, 2, 2, 4], ffn_expansion_factor=2.66, bias=True,
                                     LayerNorm_type="BiasFree", dual_pixel_task=True),
}
TINY = CONFIGS["restormer_tiny"]
WEIGHT_SEED, WEIGHT_STD = 0, 0.1


def _fixture_weights(keys: np.ndarray, shapes: np.ndarray) -> Dict[str, torch.Tensor]:
    """The fixture's weights: in sorted key order, each tensor drawn as ``randn(shape, generator) * 0.1``
    from one ``torch.Generator`` seeded with 0 (every state-dict entry of Restormer is a float parameter)."""
    gen = torch.Generator().manual_seed(WEIGHT_SEED)
    named = dict(zip(keys.tolist(), (tuple(json.loads(s)) for s in shapes.tolist())))
    return {k: torch.randn(named[k], generator=gen) * WEIGHT_STD for k in sorted(named)}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_output_matches_the_official_code_with_the_same_weights(name: str) -> None:
    data = np.load(FIXTURES / f"{name}.npz")
    net = Restormer(**CONFIGS[name]).eval()
    # official names, shapes and registration order (the order parameters() and optimizer states use)
    assert list(net.state_dict()) == data["keys"].tolist()
    net.load_state_dict(_fixture_weights(data["keys"], data["shapes"]), strict=True)
    x = torch.from_numpy(data["input"])
    assert x.shape[-1] % 8 and x.shape[-2] % 8  # exercises the padding
    with torch.no_grad():
        out = net(x).numpy()
    assert out.shape == data["output"].shape
    assert np.abs(out - data["output"]).max() <= 1e-5
    assert np.abs(data["output"] - data["input"][:, :3]).max() > 0.1  # the network does something


def test_official_configuration_has_the_released_parameter_count() -> None:
    # 26,126,644: the official restormer_arch.py (df766d5) built with the network_g of Deraining_Restormer.yml
    # and Deblurring_Restormer.yml (= its defaults); the Restormer paper reports 26.13M.
    with torch.device("meta"):
        net = Restormer(dim=48, num_blocks=[4, 6, 6, 8], num_refinement_blocks=4, heads=[1, 2, 4, 8],
                        ffn_expansion_factor=2.66, bias=False, LayerNorm_type="WithBias")
        default = Restormer()
    assert sum(p.numel() for p in net.parameters()) == 26_126_644
    assert sum(p.numel() for p in default.parameters()) == 26_126_644


@pytest.mark.parametrize("size", [(13, 21), (5, 3), (16, 24)])
def test_any_size_is_reflect_padded_to_8_and_cropped_back(size) -> None:
    torch.manual_seed(0)
    net = Restormer(**TINY).eval()
    h, w = size
    x = torch.rand(1, 3, h, w)
    mode = "reflect" if (-h) % 8 < h and (-w) % 8 < w else "replicate"
    with torch.no_grad():
        out = net(x)
        padded = net(F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode=mode))
    assert out.shape == x.shape and net.size_multiple == 1 and net.upscale == 1
    assert torch.equal(out, padded[..., :h, :w])


def test_layer_norm_types_differ_and_bias_free_has_no_bias() -> None:
    names = Restormer(**dict(TINY, LayerNorm_type="BiasFree")).state_dict()
    assert "encoder_level1.0.norm1.body.weight" in names and "encoder_level1.0.norm1.body.bias" not in names
    assert "encoder_level1.0.norm1.body.bias" in Restormer(**TINY).state_dict()


@pytest.mark.parametrize(
    "override, key",
    [
        ({"heads": [1, 3, 1, 1]}, "network_g.heads"),
        ({"num_blocks": [1, 1, 1]}, "network_g.num_blocks"),
        ({"LayerNorm_type": "withbias"}, "network_g.LayerNorm_type"),
        ({"inp_channels": 6}, "network_g.out_channels"),
    ],
)
def test_bad_arguments_name_the_key(override: Dict[str, Any], key: str) -> None:
    with pytest.raises(OptionError) as info:
        build_network({"type": "Restormer", **dict(TINY, **override)})
    assert info.value.key == key
    assert "\n" not in str(info.value)
