"""The Restormer option files: the official recipe's values and a valid progressive schedule (their _SPN twins
are checked with every other one in tests/options/test_inherit.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from mcir.archs import ARCH_REGISTRY
from mcir.data.progressive import ProgressiveSchedule
from mcir.options import load_options, thaw

TRAIN = Path(__file__).resolve().parents[1] / "options" / "train"
BASELINES = [TRAIN / "Derain" / "train_Restormer_Rain13K.yml", TRAIN / "Deblur" / "train_Restormer_GoPro.yml"]


def _load(path: Path) -> Dict[str, Any]:
    opt = thaw(load_options(str(path), is_train=True))
    opt.pop("opt_path")
    return opt


@pytest.mark.parametrize("path", BASELINES, ids=[p.stem for p in BASELINES])
def test_baseline_follows_the_official_restormer_recipe(path: Path) -> None:
    # swz30/Restormer Deraining/Options/Deraining_Restormer.yml = Motion_Deblurring/Options/Deblurring_Restormer.yml
    # (df766d5) but for the data paths and the validation PSNR's colour space.
    opt = _load(path)
    train = opt["train"]
    assert {k: train["optim_g"][k] for k in ("type", "lr", "weight_decay", "betas")} == {
        "type": "AdamW", "lr": 3e-4, "weight_decay": 1e-4, "betas": [0.9, 0.999]}
    assert train["scheduler"] == {"type": "CosineAnnealingRestartCyclicLR", "periods": [92000, 208000],
                                  "restart_weights": [1, 1], "eta_mins": [3e-4, 1e-6]}
    assert (train["total_iter"], train["warmup_iter"], train["ema_decay"], train["clip_grad_norm"]) == (
        300000, -1, 0, 0.01)
    assert train["pixel_opt"]["type"] == "L1Loss" and opt["manual_seed"] == 100
    assert opt["network_g"] == {"type": "Restormer", "inp_channels": 3, "out_channels": 3, "dim": 48,
                                "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4, "heads": [1, 2, 4, 8],
                                "ffn_expansion_factor": 2.66, "bias": False, "LayerNorm_type": "WithBias",
                                "dual_pixel_task": False}
    data = opt["datasets"]["train"]
    prog = data["progressive"]
    assert prog["iters"] == [92000, 64000, 48000, 36000, 36000, 24000] and sum(prog["iters"]) == 300000
    assert prog["gt_sizes"] == [128, 160, 192, 256, 320, 384] and data["gt_size"] == 384
    assert [b // 8 for b in prog["batch_sizes"]] == [8, 5, 4, 2, 1, 1]  # official per-GPU sizes x 8 GPUs
    assert data["use_hflip"] and data["use_rot"]
    multiple = ARCH_REGISTRY.get("Restormer").size_multiple
    sched = ProgressiveSchedule.from_options(prog, "datasets.train.progressive", multiple, scale=opt["scale"])
    assert [(p.first_iter, p.gt_size) for p in sched.phases][:2] == [(1, 128), (92001, 160)]
