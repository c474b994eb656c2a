"""Tests for BasicSR-compatible PSNR/SSIM, Y conversion, and metric sections (schema + MetricSet)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mcir.data.imresize import imresize, imresize_torch, modcrop
from mcir.errors import DataError, OptionError, RegistryError
from mcir.metrics import calculate_psnr, calculate_psnr_ssim, calculate_ssim
from mcir.metrics.metric_set import MetricSet
from mcir.options.schema import metric_spec
from mcir.options.validate import validate_typed
from mcir.metrics.color import bgr2ycbcr, rgb2ycbcr, y_channel
from benchmarks.reference_metrics import plain_psnr_ssim_y, plain_ssim_channel, plain_y
from mcir.registry import METRIC_REGISTRY

cv2 = pytest.importorskip("cv2")

SET5 = Path(__file__).resolve().parents[2] / "datasets" / "Set5"  # bundled copy of the official Set5 files
STEMS = ("baby", "bird", "butterfly", "head", "woman")


def _set5_x4_pairs(stems=STEMS):
    """Yield (float bicubic x4 rounded once, MATLAB uint8 per-pass x4, modcropped HR, LR) per image."""
    if not (SET5 / "HR").is_dir():
        pytest.skip(f"benchmark images not found at {SET5}")
    for stem in stems:
        hr = modcrop(cv2.imread(str(SET5 / "HR" / f"{stem}.png")), 4)
        lr = cv2.imread(str(SET5 / "LR_bicubic" / "X4" / f"{stem}x4.png"))
        up = np.clip(imresize(lr.astype(np.float64), 4), 0, 255)
        yield np.floor(up + 0.5).astype(np.uint8), imresize(lr, 4), hr, lr


def _to_tensor(bgr: np.ndarray) -> torch.Tensor:
    """HWC BGR uint8 -> (1, C, H, W) RGB float64, as the framework's tensors."""
    return torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1))).double()[None]


def test_set5_x4_bicubic_golden_values():
    psnr, ssim, psnr_r, pp_psnr, pp_ssim, pp_psnr_r = [], [], [], [], [], []
    for sr, sr_matlab, hr, _ in _set5_x4_pairs():
        psnr.append(calculate_psnr(sr, hr, 4, test_y_channel=True))
        ssim.append(calculate_ssim(sr, hr, 4, test_y_channel=True))
        psnr_r.append(calculate_psnr(sr, hr, 4, test_y_channel=True, round_y=True))
        pp_psnr.append(calculate_psnr(sr_matlab, hr, 4, test_y_channel=True))
        pp_ssim.append(calculate_ssim(sr_matlab, hr, 4, test_y_channel=True))
        pp_psnr_r.append(calculate_psnr(sr_matlab, hr, 4, test_y_channel=True, round_y=True))
    # Reference values computed with BasicSR's code (float bicubic, rounded once to uint8).
    assert round(np.mean(psnr), 4) == 28.4305
    assert round(np.mean(ssim), 4) == 0.8113
    assert round(np.mean(psnr_r), 4) == 28.4176
    # MATLAB-style upscale of the uint8 LR (rounded after each pass) is slightly lower (measured).
    assert round(np.mean(pp_psnr), 4) == 28.4290
    assert round(np.mean(pp_ssim), 4) == 0.8111
    assert round(np.mean(pp_psnr_r), 4) == 28.4165


def test_set5_x4_bicubic_golden_values_torch_path():
    """The Bicubic arch's torch resize, quantised as the evaluator does, gives the same golden values."""
    psnrs, ssims = [], []
    for _, _, hr, lr in _set5_x4_pairs():
        up = imresize_torch(_to_tensor(lr), 4).clamp(0, 255)
        sr = torch.floor(up + 0.5)[0].permute(1, 2, 0).numpy().astype(np.uint8)[..., ::-1]  # RGB -> BGR
        psnrs.append(calculate_psnr(sr, hr, 4, test_y_channel=True))
        ssims.append(calculate_ssim(sr, hr, 4, test_y_channel=True))
    assert round(np.mean(psnrs), 4) == 28.4305
    assert round(np.mean(ssims), 4) == 0.8113


def test_psnr_matches_hand_formula():
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a.copy()
    b[:2, :, 0] += 6  # 8 of 48 values off by 6 -> MSE = 36 * 8 / 48 = 6
    expected = 10 * math.log10(255**2 / 6)
    assert calculate_psnr(a, b, 0) == pytest.approx(expected, abs=1e-12)


def test_psnr_and_ssim_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 36)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    ssim_ref = metrics.structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert calculate_ssim(a, b, 0) == pytest.approx(ssim_ref, abs=1e-10)
    assert calculate_psnr(a, b, 0) == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)


def test_identical_images():
    img = np.random.default_rng(1).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert calculate_psnr(img, img, 0) == float("inf")
    assert calculate_ssim(img, img, 0) == pytest.approx(1.0, abs=1e-12)


def test_ssim_drops_with_noise():
    rng = np.random.default_rng(2)
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), (5, 5), 2)
    small = np.clip(img + rng.normal(0, 3, img.shape), 0, 255)
    large = np.clip(img + rng.normal(0, 30, img.shape), 0, 255)
    assert 1.0 > calculate_ssim(small, img, 0) > calculate_ssim(large, img, 0)
    assert calculate_ssim(small, img, 0) == pytest.approx(calculate_ssim(img, small, 0), abs=1e-12)


def test_crop_border_removes_every_side():
    a = np.full((16, 16, 3), 50, np.uint8)
    b = a.copy()
    b[:2], b[-2:], b[:, :2], b[:, -2:] = 0, 0, 0, 0
    assert calculate_psnr(a, b, 2) == float("inf")
    assert math.isfinite(calculate_psnr(a, b, 1))
    b[2, 2] = 51
    assert math.isfinite(calculate_psnr(a, b, 2))
    with pytest.raises(OptionError):
        calculate_psnr(a, b, -1)
    with pytest.raises(DataError):
        calculate_psnr(a, b, 8)
    with pytest.raises(DataError):
        calculate_ssim(a, b, 3)  # 10x10 left, smaller than the 11x11 window


def test_hwc_chw_and_grey_layouts_agree():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)
    for fn in (calculate_psnr, calculate_ssim):
        for y in (False, True):
            hwc = fn(a, b, 2, test_y_channel=y)
            chw = fn(a.transpose(2, 0, 1), b.transpose(2, 0, 1), 2, input_order="CHW", test_y_channel=y)
            assert hwc == chw
        assert fn(a[..., 0], b[..., 0], 2) == fn(a[..., :1], b[..., :1], 2)
    with pytest.raises(OptionError):
        calculate_psnr(a, b, 0, input_order="WHC")
    with pytest.raises(DataError):
        calculate_psnr(a, b[:-1], 0)


def test_y_channel_values_and_bgr_order():
    bgr = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 0, 255]]], np.uint8)
    y = y_channel(bgr)[0, :, 0]
    assert y == pytest.approx([235.0, 16.0, 16 + 24.966, 16 + 65.481], abs=1e-4)
    assert y_channel(bgr, round_y=True)[0, :, 0].tolist() == [235.0, 16.0, 41.0, 81.0]
    # Exact tie: Y = 52.5 for RGB (2, 44, 141); MATLAB rounds half away from zero.
    assert y_channel(np.array([[[141, 44, 2]]], np.uint8), round_y=True).item() == 53.0
    assert rgb2ycbcr(np.array([[[255, 255, 255]]], np.uint8)).tolist() == [[[235, 128, 128]]]
    assert rgb2ycbcr(np.zeros((1, 1, 3), np.float32)) == pytest.approx(np.array([[[16, 128, 128]]]) / 255)
    assert np.array_equal(bgr2ycbcr(bgr), rgb2ycbcr(bgr[..., ::-1]))


def test_y_channel_matches_basicsr_formulation():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    # BasicSR: bgr2ycbcr(img / 255 as float32, y_only=True) * 255 (float), or on uint8 (rounded).
    basicsr_float = (bgr2ycbcr(img.astype(np.float32) / 255.0, y_only=True) * 255.0).astype(np.float64)
    assert np.array_equal(y_channel(img)[..., 0], basicsr_float)
    assert np.array_equal(y_channel(img, round_y=True)[..., 0], bgr2ycbcr(img, y_only=True).astype(np.float64))


def test_registered_metrics_are_checked_by_the_schema_and_computed_by_the_metric_set():
    assert "calculate_psnr" in METRIC_REGISTRY and "calculate_ssim" in METRIC_REGISTRY
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    cfgs = {"psnr": {"type": "calculate_psnr", "crop_border": 2, "test_y_channel": True, "better": "higher"},
            "ssim": {"type": "calculate_ssim", "crop_border": 0}}
    got = MetricSet(cfgs).compute([a], [b])
    assert got == {"psnr": [calculate_psnr(a, b, 2, test_y_channel=True)], "ssim": [calculate_ssim(a, b, 0)]}
    spec = metric_spec()
    with pytest.raises(RegistryError):
        validate_typed(spec, {"type": "calculate_psnrr", "crop_border": 0}, "val.metrics.psnr", None)
    with pytest.raises(OptionError, match="test_y_channel"):
        validate_typed(spec, {"type": "calculate_psnr", "crop_border": 0, "test_y_chanel": True}, "val.metrics.p", None)
    with pytest.raises(OptionError, match="crop_border"):
        validate_typed(spec, {"type": "calculate_psnr"}, "val.metrics.psnr", None)
    with pytest.raises(OptionError):
        validate_typed(spec, {"crop_border": 0}, "val.metrics.psnr", None)


@pytest.mark.parametrize("crop, y, round_y", [(4, True, False), (4, True, True), (0, False, False), (2, False, True)])
def test_psnr_ssim_together_is_bit_identical_to_separate_calls(crop, y, round_y):
    for sr, _, hr, _ in _set5_x4_pairs(STEMS[:2]):
        for a, b in ((sr, hr), (sr[..., :1], hr[..., :1])):
            psnr, ssim = calculate_psnr_ssim(a, b, crop, test_y_channel=y, round_y=round_y)
            assert psnr == calculate_psnr(a, b, crop, test_y_channel=y, round_y=round_y)
            assert ssim == calculate_ssim(a, b, crop, test_y_channel=y, round_y=round_y)
    assert calculate_psnr_ssim(sr, hr, 4, compute_ssim=False) == (calculate_psnr(sr, hr, 4), None)
    with pytest.raises(OptionError):
        calculate_psnr_ssim(sr, hr, -1)


def test_plain_y_is_basicsr_bgr2ycbcr():
    img = np.random.default_rng(7).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    expected = (bgr2ycbcr(img.astype(np.float32) / 255.0, y_only=True) * 255.0).astype(np.float64)
    np.testing.assert_array_equal(plain_y(img), expected)


def test_psnr_ssim_are_bit_identical_to_the_written_out_basicsr_formulas():
    for sr, _, hr, _ in _set5_x4_pairs(STEMS[:3]):
        a, b = sr[4:-4, 4:-4], hr[4:-4, 4:-4]
        psnr, ssim = plain_psnr_ssim_y(sr, hr, 4)
        assert calculate_psnr(sr, hr, 4, test_y_channel=True) == psnr
        assert calculate_ssim(sr, hr, 4, test_y_channel=True) == ssim
        per_channel = [plain_ssim_channel(a[..., c].astype(np.float64), b[..., c].astype(np.float64)) for c in range(3)]
        assert calculate_ssim(sr, hr, 4) == float(np.mean(per_channel))
