"""Tests for metric presets: sections, merging with explicit metrics, options, and documented numbers on real pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mcir.errors import OptionError
from mcir.metrics.presets import PRESET_NAMES, preset_metrics, resolve_metrics
from mcir.options import load_options
from mcir.test import main as run_test_cli

REPO = Path(__file__).resolve().parents[2]
BICUBIC = REPO / "options" / "test" / "SR" / "test_Bicubic_x4.yml"


def test_presets_define_psnr_and_ssim_conventions():
    assert set(PRESET_NAMES) == {"sr", "sr_matlab", "derain", "deblur_gopro", "dehaze_sots", "denoise"}
    sr = preset_metrics("sr", scale=3)
    assert list(sr) == ["psnr", "ssim"] and sr["ssim"]["type"] == "calculate_ssim"
    assert sr["psnr"] == {
        "type": "calculate_psnr",
        "crop_border": 3,
        "test_y_channel": True,
        "round_y": False,
        "better": "higher",
    }
    assert preset_metrics("derain", scale=4)["psnr"]["crop_border"] == 0
    assert preset_metrics("derain")["ssim"]["round_y"] is True
    for name in ("deblur_gopro", "dehaze_sots", "denoise"):
        assert preset_metrics(name)["psnr"]["test_y_channel"] is False
    with pytest.raises(OptionError, match="unknown metric preset 'srr'"):
        preset_metrics("srr")


def test_explicit_metrics_replace_or_extend_the_preset():
    explicit = {
        "psnr": {"type": "calculate_psnr", "crop_border": 0},
        "psnr_rgb": {"type": "calculate_psnr", "crop_border": 4},
    }
    merged = resolve_metrics("sr", explicit, scale=4)
    assert list(merged) == ["psnr", "ssim", "psnr_rgb"]
    assert merged["psnr"] == {"type": "calculate_psnr", "crop_border": 0, "better": "higher"}  # its own direction
    assert merged["ssim"]["crop_border"] == 4
    assert resolve_metrics(None, explicit) == {k: {**v, "better": "higher"} for k, v in explicit.items()}


def _options_file(tmp_path: Path, val: dict) -> str:
    opt = yaml.safe_load(BICUBIC.read_text())
    opt["val"] = val
    path = tmp_path / "opt.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return str(path)


def test_val_preset_option_fills_metrics_at_load_time(tmp_path):
    opt = load_options(_options_file(tmp_path, {"preset": "sr_matlab"}), is_train=False)
    assert opt["val"]["metrics"]["ssim"] == {
        "type": "calculate_ssim",
        "crop_border": 4,
        "test_y_channel": True,
        "round_y": True,
        "better": "higher",
    }
    with pytest.raises(OptionError, match=r"val\.preset: expected one of .*'derain'.*got 'deraining'; did you mean 'derain'") as err:
        load_options(_options_file(tmp_path, {"preset": "deraining"}), is_train=False)
    assert err.value.file.endswith("opt.yml")


def _run(tmp_path: Path, opt: str, *args: str) -> dict:
    out = tmp_path / "res"
    assert run_test_cli(["-opt", opt, "--set", "num_gpu=0", "--set", f"path.results_root={out}", *args]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("preset, psnr, ssim", [("sr", 28.4305, 0.8113), ("sr_matlab", 28.4176, 0.8102)])
def test_sr_presets_on_bundled_set5_bicubic_x4(tmp_path, preset, psnr, ssim):
    sets = [
        f"datasets.test_1.dataroot_gt={REPO / 'datasets/Set5/HR'}",
        f"datasets.test_1.dataroot_lq={REPO / 'datasets/Set5/LR_bicubic/X4'}",
    ]
    args = [a for s in sets for a in ("--set", s)]
    # --preset replaces the file's metrics (here: the same psnr/ssim names with crop 4, float Y)
    avg = _run(tmp_path, str(BICUBIC), "--preset", preset, *args)["Set5"]["average"]
    assert avg["psnr"] == pytest.approx(psnr, abs=1e-4) and avg["ssim"] == pytest.approx(ssim, abs=1e-4)


def _identity_options(tmp_path: Path, sets: dict) -> str:
    opt = {
        "name": "input",
        "model_type": "RestorationModel",
        "scale": 1,
        "network_g": {"type": "Identity"},
        "datasets": {
            f"test_{i}": {"name": name, "dataroot_lq": str(lq), "dataroot_gt": str(gt)}
            for i, (name, (lq, gt)) in enumerate(sets.items(), 1)
        },
    }
    path = tmp_path / "identity.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return str(path)


def test_derain_preset_numbers_of_the_rainy_inputs(tmp_path, shared_data):
    rain = shared_data / "derain"
    opt = _identity_options(tmp_path, {n: (rain / n / "rain", rain / n / "norain") for n in ("Rain100L", "Rain100H")})
    res = _run(tmp_path, opt, "--preset", "derain")
    expected = {"Rain100L": (28.9538, 0.8599), "Rain100H": (13.3503, 0.3842)}  # documented in presets.py
    for name, (psnr, ssim) in expected.items():
        assert res[name]["average"]["psnr"] == pytest.approx(psnr, abs=1e-4)
        assert res[name]["average"]["ssim"] == pytest.approx(ssim, abs=1e-4)
    assert len(res["Rain100L"]["images"]) == 7


def test_dehaze_preset_numbers_of_the_hazy_inputs(tmp_path, shared_data):
    sots = shared_data / "dehaze" / "SOTS-indoor"
    opt = _identity_options(tmp_path, {"SOTS-indoor": (sots / "hazy", sots / "GT")})
    avg = _run(tmp_path, opt, "--preset", "dehaze_sots")["SOTS-indoor"]["average"]
    assert avg["psnr"] == pytest.approx(13.1703, abs=1e-4) and avg["ssim"] == pytest.approx(0.7261, abs=1e-4)
