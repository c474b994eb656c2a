"""End-to-end tests of test.py: golden Bicubic values through the whole pipeline and the result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcir.test import main as run_test_cli

REPO = Path(__file__).resolve().parents[1]
BICUBIC = REPO / "options" / "test" / "SR" / "test_Bicubic_x4.yml"


def _args(tmp_path: Path, *extra: str) -> list:
    sets = [
        f"path.results_root={tmp_path / 'res'}",
        f"datasets.test_1.dataroot_gt={REPO / 'datasets/Set5/HR'}",
        f"datasets.test_1.dataroot_lq={REPO / 'datasets/Set5/LR_bicubic/X4'}",
        "num_gpu=0",
        *extra,
    ]
    args = ["-opt", str(BICUBIC)]
    for s in sets:
        args += ["--set", s]
    return args


def test_bicubic_row_golden_values_and_outputs(tmp_path):
    assert run_test_cli(_args(tmp_path, "val.save_img=true")) == 0
    res = json.loads((tmp_path / "res" / "metrics.json").read_text())
    avg = res["Set5"]["average"]
    assert round(avg["psnr"], 4) == 28.4305
    assert round(avg["ssim"], 4) == 0.8113
    assert sorted(res["Set5"]["images"]) == ["baby", "bird", "butterfly", "head", "woman"]
    csv_lines = (tmp_path / "res" / "metrics.csv").read_text().splitlines()
    assert csv_lines[0] == "dataset,image,psnr,ssim" and len(csv_lines) == 7
    assert "| Bicubic_x4 | 28.43 | 0.8113 |" in (tmp_path / "res" / "metrics.md").read_text()
    assert len(list((tmp_path / "res" / "visualization" / "Set5").glob("*.png"))) == 5


def test_matlab_rounded_y_convention(tmp_path):
    assert run_test_cli(_args(tmp_path, "val.metrics.psnr.round_y=true")) == 0
    res = json.loads((tmp_path / "res" / "metrics.json").read_text())
    assert round(res["Set5"]["average"]["psnr"], 4) == 28.4176


def test_several_test_sets_from_shared_data(tmp_path, shared_data):
    sr = shared_data / "sr" / "Set14"
    extra = [
        "datasets.test_2.name=Set14",
        f"datasets.test_2.dataroot_gt={sr / 'HR'}",
        f"datasets.test_2.dataroot_lq={sr / 'LR_bicubic/X4'}",
        "datasets.test_2.filename_tmpl='{}x4'",
    ]
    assert run_test_cli(_args(tmp_path, *extra)) == 0
    res = json.loads((tmp_path / "res" / "metrics.json").read_text())
    assert list(res) == ["Set5", "Set14"] and len(res["Set14"]["images"]) == 14
    # Bicubic x4 on Set14 is about 26 dB in the literature (BasicSR convention)
    assert 25.5 < res["Set14"]["average"]["psnr"] < 26.5
    assert "Avg. psnr" in (tmp_path / "res" / "metrics.md").read_text()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("datasets.test_1.dataroot_lq=/no/such/dir", "/no/such/dir"),
        ("path.pretrain_network_g=/no/such/weights.pth", "/no/such/weights.pth"),
        ("val.metrics.psnr.crop_bordr=4", "val.metrics.psnr.crop_bordr"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, override, expected):
    assert run_test_cli(_args(tmp_path, override)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "res").exists()


def test_tiled_and_ensembled_evaluation(tmp_path):
    """A tile covering the image changes nothing; small tiles and x8 ensemble stay close to the whole-image result."""
    assert run_test_cli(_args(tmp_path, "val.tile=256")) == 0
    whole_tile = json.loads((tmp_path / "res" / "metrics.json").read_text())["Set5"]["average"]["psnr"]
    assert round(whole_tile, 4) == 28.4305
    assert run_test_cli(_args(tmp_path, "val.tile=32", "val.tile_overlap=16", "val.self_ensemble=true")) == 0
    tiled = json.loads((tmp_path / "res" / "metrics.json").read_text())["Set5"]["average"]["psnr"]
    assert tiled != whole_tile and abs(tiled - whole_tile) < 0.05
