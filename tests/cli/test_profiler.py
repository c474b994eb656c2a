"""Profiler: FLOP counter wired to the analytic count, task default sizes, memory probe, +SPN step cost."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mcir.archs.edsr_arch import EDSR
from mcir.cli.measure import PeakMemory, count_flops
from mcir.cli.profiler import io_sizes, profile_model, profile_network, run_part
from mcir.errors import OptionError

REPO = Path(__file__).resolve().parents[2]
SPN_DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml"
TINY_SPN = ["network_g.num_feat=8", "network_g.num_block=1", "datasets.train.gt_size=16",
            "datasets.train.batch_size_per_gpu=2", "train.neg_opt.vgg_weights=random"]


def _edsr(up: int = 4) -> nn.Module:
    return EDSR(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=up)


def test_conv_flops_match_the_analytic_count():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=True)
    x = torch.rand(2, 3, 10, 12)
    # 2 FLOPs per multiply-add: N * C_out * H * W * (C_in * k * k)
    assert count_flops(lambda: conv(x)) == 2 * 2 * 8 * 10 * 12 * (3 * 3 * 3)


def test_network_profile_scales_with_pixels_and_reports_macs():
    small = profile_network(_edsr(), 3, (16, 24), torch.device("cpu"), repeats=1, warmup=0)
    large = profile_network(_edsr(), 3, (32, 48), torch.device("cpu"), repeats=1, warmup=0)
    assert small["input"] == [3, 4, 6] and small["output"] == [16, 24]
    assert large["flops"] == 4 * small["flops"] > 0 and small["macs"] * 2 == small["flops"]
    assert small["params"] == sum(p.numel() for p in _edsr().parameters())
    assert small["latency_ms"] > 0 and small["peak_mib"] is not None


def test_default_sizes_by_task():
    assert io_sizes(_edsr(4), None) == ((180, 320), (720, 1280))
    assert io_sizes(_edsr(1), None) == ((256, 256), (256, 256))
    with pytest.raises(OptionError, match="--size"):
        io_sizes(_edsr(4), (30, 40))


def test_peak_memory_sees_an_allocation_and_not_earlier_peaks():
    earlier = torch.ones(256, 2**20 // 4)  # a 256 MiB peak before the measurement, freed again
    del earlier
    with PeakMemory(torch.device("cpu")) as mem:
        block = torch.ones(64, 2**20 // 4)  # 64 MiB, touched
        del block
    assert 60 < mem.mib < 200


def test_spn_step_costs_more_than_the_plain_step():
    spec = {"opt": str(SPN_DEMO), "set": TINY_SPN, "size": [16, 16], "repeats": 1, "warmup": 0}
    res = profile_model(spec, run_part)
    train = res["train"]
    assert res["model_type"] == "MCIRModel" and res["output"] == [16, 16]
    assert (train["batch"], train["gt_size"]) == (2, 16)
    assert train["spn"]["flops"] > train["plain"]["flops"] > 0
    assert any("weights are not loaded" in n for n in train["notes"])
    assert profile_model({**spec, "train_step": False}, run_part)["train"] is None
