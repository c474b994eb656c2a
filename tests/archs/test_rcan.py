"""Tests of RCAN: recorded BasicSR outputs, official parameter counts and names, any size, option errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mcir.archs import build_network
from mcir.archs.rcan_arch import RCAN
from mcir.errors import OptionError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPTIONS = Path(__file__).resolve().parents[2] / "options"
NAME = "train_RCAN_SRx4_DIV2K"
_spec = importlib.util.spec_from_file_location("make_hat_rcan", FIXTURES / "make_hat_rcan.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)
TINY = dict(num_feat=16, num_group=2, num_block=2, squeeze_factor=4)


def _num_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_matches_basicsr_output_with_strict_loading() -> None:
    data = np.load(FIXTURES / "rcan_tiny.npz")
    assert json.loads(str(data["config"])) == make.RCAN_CONFIG
    net = RCAN(**make.RCAN_CONFIG).eval()
    own = net.state_dict()
    assert sorted(own) == data["keys"].tolist()
    assert {k: list(v.shape) for k, v in own.items()} == json.loads(str(data["shapes"]))
    net.load_state_dict(make.seeded_weights(own, int(data["seeds"][0])), strict=True)
    x = torch.from_numpy(data["input"])
    with torch.no_grad():
        out = net(x)
    assert out.shape == data["output"].shape == (1, 3, 21, 27)  # odd sizes, x3
    assert (out - torch.from_numpy(data["output"])).abs().max().item() <= 1e-5


# Counts of BasicSR basicsr/archs/rcan_arch.py (commit 8d56e3a) with the network_g of its
# options/train/RCAN/train_RCAN_x2.yml and options/test/RCAN/test_RCAN.yml (x4): 10 groups of 20 RCABs,
# the published RCAN (the paper rounds to 15.6M).
@pytest.mark.parametrize("upscale, expected", [(2, 15_444_643), (3, 15_629_283), (4, 15_592_355)])
def test_official_parameter_counts(upscale: int, expected: int) -> None:
    with torch.device("meta"):
        net = RCAN(num_block=20, upscale=upscale)
    assert _num_params(net) == expected


def test_state_dict_names_follow_basicsr() -> None:
    sd = RCAN(upscale=4, **TINY).state_dict()
    assert {k for k in sd if not k.startswith("body.")} == {
        f"{m}.{p}" for m in ("conv_first", "conv_after_body", "upsample.0", "upsample.2", "conv_last")
        for p in ("weight", "bias")}
    assert sd["body.1.residual_group.1.rcab.3.attention.1.weight"].shape == (4, 16, 1, 1)  # 16 // squeeze 4
    assert sd["body.1.residual_group.1.rcab.3.attention.3.weight"].shape == (16, 4, 1, 1)
    assert sd["body.1.conv.weight"].shape == (16, 16, 3, 3)
    assert "mean" not in sd


def test_zero_weights_give_the_mean_and_grey_inputs_work() -> None:
    net = RCAN(upscale=2, **TINY)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    out = net(torch.rand(1, 3, 5, 6))
    torch.testing.assert_close(out, torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1).expand_as(out))
    grey = RCAN(num_in_ch=1, num_out_ch=1, rgb_mean=[0.5], upscale=3, **TINY)
    assert grey(torch.rand(2, 1, 5, 7)).shape == (2, 1, 15, 21)


@pytest.mark.parametrize("change, key", [
    ({"rgb_mean": [0.4, 0.4]}, "network_g.rgb_mean"),
    ({"squeeze_factor": 32}, "network_g.squeeze_factor"),
    ({"upscale": 5}, "network_g.upscale"),
])
def test_bad_options_name_the_key(change: dict, key: str) -> None:
    with pytest.raises(OptionError) as info:
        build_network({"type": "RCAN", **TINY, **change}, file="x.yml")
    assert info.value.key == key and info.value.file == "x.yml"


@pytest.mark.parametrize("path", [
    "train/SR/train_RCAN_SRx4_DIV2K.yml", "train/SR/train_RCAN_SRx4_DIV2K_SPN.yml", "test/SR/test_RCAN_SRx4.yml",
])
def test_option_files_build_the_released_network(path: str) -> None:
    from mcir.options import load_options

    opt = load_options(str(OPTIONS / path), is_train=path.startswith("train"))
    with torch.device("meta"):
        net = build_network(opt["network_g"])
    assert _num_params(net) == 15_592_355
