"""LPIPS/NIQE through the engine: test.py tables and files, GT-less scoring, best checkpoint with lower-is-better.

LPIPS runs on an explicitly requested random backbone (``backbone_weights: random``): ImageNet weights cannot
be downloaded here, and these tests check the plumbing, not published values.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mcir.engine.evaluator import Evaluator
from mcir.engine.validation import Validation
from mcir.metrics.niqe import calculate_niqe
from mcir.options import load_options
from mcir.test import main as run_test_cli
from mcir.utils.img_util import imread

REPO = Path(__file__).resolve().parents[2]
BICUBIC = REPO / "options" / "test" / "SR" / "test_Bicubic_x4.yml"
DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
PERCEPTUAL = ("val.metrics={psnr: {type: calculate_psnr, crop_border: 4, test_y_channel: true}, "
              "ssim: {type: calculate_ssim, crop_border: 4, test_y_channel: true}, "
              "lpips: {type: calculate_lpips, crop_border: 4, backbone_weights: random}, "
              "niqe: {type: calculate_niqe, crop_border: 4}}")
pytestmark = pytest.mark.filterwarnings("ignore:LPIPS. backbone_weights='random'")


def test_test_py_writes_lpips_and_niqe_columns(tmp_path):
    sets = [f"path.results_root={tmp_path}", f"datasets.test_1.dataroot_gt={REPO / 'datasets/Set5/HR'}",
            f"datasets.test_1.dataroot_lq={REPO / 'datasets/Set5/LR_bicubic/X4'}", "num_gpu=0",
            "val.save_img=true", PERCEPTUAL]
    assert run_test_cli(["-opt", str(BICUBIC)] + [a for s in sets for a in ("--set", s)]) == 0
    res = json.loads((tmp_path / "metrics.json").read_text())["Set5"]
    assert list(res["average"]) == ["psnr", "ssim", "lpips", "niqe"]
    assert round(res["average"]["psnr"], 4) == 28.4305  # unchanged by the new columns
    assert 0 < res["average"]["lpips"] < 1
    # NIQE scores the restored image itself (no GT): the saved 8-bit output gives the same value.
    out = imread(tmp_path / "visualization" / "Set5" / "baby.png")
    assert res["images"]["baby"]["niqe"] == calculate_niqe(out, 4)
    rows = list(csv.reader((tmp_path / "metrics.csv").open()))
    assert rows[0] == ["dataset", "image", "psnr", "ssim", "lpips", "niqe"] and len(rows) == 7
    table = (tmp_path / "metrics.md").read_text()
    avg = res["average"]
    cell = f"{avg['psnr']:.2f}/{avg['ssim']:.4f}/{avg['lpips']:.4f}/{avg['niqe']:.2f}"
    assert f"| Bicubic_x4 | {cell} |" in table and "Lower is better for lpips, niqe" in table


def test_without_gt_only_no_reference_metrics_are_averaged():
    img = imread(REPO / "datasets" / "Set5" / "HR" / "butterfly.png")
    x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    loader = [{"lq": x, "lq_path": ["butterfly.png"]}]
    metrics = {"psnr": {"type": "calculate_psnr", "crop_border": 0}, "niqe": {"type": "calculate_niqe"}}
    res = Evaluator(metrics, overlap=False).evaluate(lambda t: t, loader)
    assert res["average"] == {"niqe": calculate_niqe(img)}
    assert res["images"] == {"butterfly": {"niqe": calculate_niqe(img)}}


def test_best_checkpoint_keeps_the_lowest_lpips():
    sets = ["val.metrics={lpips: {type: calculate_lpips, backbone_weights: random}, "
            "psnr: {type: calculate_psnr, crop_border: 4}}"]
    metrics = load_options(str(DEMO), sets)["val"]["metrics"]
    assert [metrics["lpips"]["better"], metrics["psnr"]["better"]] == ["lower", "higher"]
    saved = []
    validation = Validation(Evaluator(metrics), {})
    checkpointer = SimpleNamespace(save_best=lambda name, rec, w: saved.append(dict(rec)) or Path("best.pth"))
    logger = SimpleNamespace(info=lambda *a: None)
    for it, value in ((1, 0.30), (2, 0.20), (3, 0.25), (4, 0.21)):
        validation.keep_best("Set5", {"lpips": value, "psnr": 30.0 - it}, it, lambda: {}, checkpointer, logger)
    assert validation.best["Set5"] == {"metric": "lpips", "better": "lower", "value": 0.20, "iter": 2}
    assert [r["iter"] for r in saved] == [1, 2]
