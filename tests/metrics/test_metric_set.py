"""Tests of MetricSet: grouped PSNR/SSIM equal the registered functions; other metrics and bad options."""

from pathlib import Path

import numpy as np
import pytest

from mcir.errors import OptionError
from mcir.metrics.metric_set import MetricSet
from mcir.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from mcir.registry import METRIC_REGISTRY
from mcir.utils.img_util import imread

SET5 = Path(__file__).resolve().parents[2] / "datasets" / "Set5" / "HR"


def _pairs():
    """Two real images with noisy counterparts (cropped to one size so they batch)."""
    rng = np.random.default_rng(0)
    gts = [imread(SET5 / f"{stem}.png")[:96, :120] for stem in ("baby", "bird")]
    outs = [np.clip(g.astype(np.int16) + rng.integers(-12, 13, g.shape), 0, 255).astype(np.uint8) for g in gts]
    return outs, gts


def test_grouped_psnr_ssim_equal_the_registered_functions_bit_for_bit():
    outs, gts = _pairs()
    metrics = {
        "psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": True, "better": "higher"},
        "ssim": {"type": "calculate_ssim", "crop_border": 4, "test_y_channel": True},
        "psnr_rgb": {"type": "calculate_psnr", "crop_border": 0},
        "ssim_matlab_y": {"type": "calculate_ssim", "crop_border": 4, "test_y_channel": True, "round_y": True},
    }
    scores = MetricSet(metrics).compute(outs, gts)
    assert list(scores) == list(metrics)
    for i, (a, b) in enumerate(zip(outs, gts)):
        assert scores["psnr"][i] == calculate_psnr(a, b, 4, test_y_channel=True)
        assert scores["ssim"][i] == calculate_ssim(a, b, 4, test_y_channel=True)
        assert scores["psnr_rgb"][i] == calculate_psnr(a, b, 0)
        assert scores["ssim_matlab_y"][i] == calculate_ssim(a, b, 4, test_y_channel=True, round_y=True)
    assert scores["psnr"][0] != scores["psnr"][1]


def test_other_registered_metrics_are_called_per_image(monkeypatch):
    outs, gts = _pairs()
    name = "mean_abs_error_for_metric_set_test"
    # Registered for this test only (monkeypatch removes it again).
    monkeypatch.setitem(METRIC_REGISTRY._obj_map, name, lambda a, b, **kw: float(np.abs(a.astype(float) - b).mean()))
    scores = MetricSet({"mae": {"type": name}}).compute(outs, gts)
    assert scores["mae"] == [float(np.abs(a.astype(float) - b).mean()) for a, b in zip(outs, gts)]


@pytest.mark.parametrize("bad", [-1, True, "4"])
def test_bad_crop_border_is_still_an_option_error(bad):
    outs, gts = _pairs()
    with pytest.raises(OptionError, match="crop_border"):
        MetricSet({"psnr": {"type": "calculate_psnr", "crop_border": bad}}).compute(outs, gts)
