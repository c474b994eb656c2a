"""Tests for the MATLAB-compatible bicubic imresize (numpy and torch) and modcrop."""

from pathlib import Path

import numpy as np
import pytest
import torch

from mcir.data.imresize import (
    imresize,
    imresize_torch,
    modcrop,
    output_length,
    resize_matrix,
    resize_weights,
)
from mcir.errors import DataError, OptionError

cv2 = pytest.importorskip("cv2")

SET5 = Path(__file__).resolve().parents[2] / "datasets" / "Set5"  # bundled copy of the official Set5 files
STEMS = ("baby", "bird", "butterfly", "head", "woman")


def _set5() -> Path:
    if not (SET5 / "HR").is_dir():
        pytest.skip(f"benchmark images not found at {SET5}")
    return SET5


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_official_set5_lr_bit_exactly(scale):
    root = _set5()
    for stem in STEMS:
        hr = _read(root / "HR" / f"{stem}.png")
        lr = _read(root / "LR_bicubic" / f"X{scale}" / f"{stem}x{scale}.png")
        out = imresize(modcrop(hr, scale), 1 / scale)
        assert out.dtype == np.uint8
        assert out.shape == lr.shape, stem
        assert np.array_equal(out, lr), f"{stem} x{scale}: {(out != lr).sum()} pixels differ"


def test_uint8_rounds_after_each_pass():
    hr = modcrop(_read(_set5() / "HR" / "butterfly.png"), 3)
    for img, scale in ((hr, 1 / 3), (hr[:60, :50], 4)):
        mat_h = resize_matrix(img.shape[0], scale)
        mat_w = resize_matrix(img.shape[1], scale)
        rows = _round_half_up(np.einsum("oh,hwc->owc", mat_h, img.astype(np.float64)))
        expected = _round_half_up(np.einsum("pw,owc->opc", mat_w, rows)).astype(np.uint8)
        assert np.array_equal(imresize(img, scale), expected)
        once = _round_half_up(imresize(img.astype(np.float64), scale)).astype(np.uint8)
        assert not np.array_equal(once, expected), "per-pass and single rounding should differ here"


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 0.6, 1.5, 2, 3, 4])
def test_torch_matches_numpy_float_path(scale):
    rng = np.random.default_rng(0)
    img = rng.random((23, 31, 3))
    ref = imresize(img, scale)
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())
    out64 = imresize_torch(x, scale)
    assert out64.shape == (3, *ref.shape[:2])
    assert np.abs(out64.numpy().transpose(1, 2, 0) - ref).max() < 1e-12
    out32 = imresize_torch(x.float()[None], scale)
    assert out32.dtype == torch.float32 and out32.shape == (1, 3, *ref.shape[:2])
    assert np.abs(out32[0].numpy().transpose(1, 2, 0) - ref).max() < 1e-5


def test_torch_bicubic_upscale_of_real_lr_matches_numpy():
    lr = _read(_set5() / "LR_bicubic" / "X4" / "birdx4.png").astype(np.float64)
    ref = imresize(lr, 4)
    out = imresize_torch(torch.from_numpy(lr).permute(2, 0, 1)[None], 4)[0].permute(1, 2, 0).numpy()
    assert ref.shape == (288, 288, 3)
    assert np.abs(out - ref).max() < 1e-9


def test_x2_upscale_weights_are_the_keys_cubic_values():
    indices, weights = resize_weights(8, 2)
    assert indices.shape == weights.shape == (16, 4)
    odd = np.array([-3, 29, 111, -9]) / 128
    for i in range(2, 14):
        assert np.array_equal(weights[i], odd if i % 2 == 0 else odd[::-1]), i
    # 1-based output 3 sits at input 1.75: taps at inputs 0..3 (0-based -1..2, -1 mirrored to 0).
    assert indices[2].tolist() == [0, 0, 1, 2]


def test_mirrored_edges_and_row_sums():
    for in_len, scale in ((10, 1 / 4), (7, 1 / 3), (5, 3)):
        indices, weights = resize_weights(in_len, scale)
        assert indices.min() >= 0 and indices.max() < in_len
        assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-14)
        mat = resize_matrix(in_len, scale)
        assert mat.shape == (output_length(in_len, scale), in_len)
        assert np.allclose(mat.sum(axis=1), 1.0, atol=1e-14)


def test_scale_one_is_identity_and_constants_stay_constant():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (13, 9, 3), dtype=np.uint8)
    assert np.array_equal(imresize(img, 1), img)
    assert np.array_equal(imresize(img.astype(np.float32), 1), img.astype(np.float32))
    flat = np.full((24, 18, 3), 77, np.uint8)
    for scale in (1 / 3, 1 / 2, 3):
        assert np.array_equal(imresize(flat, scale), np.full_like(imresize(flat, scale), 77))
        assert np.allclose(imresize(flat.astype(np.float64), scale), 77.0, atol=1e-10)


def test_output_size_is_ceil_and_dtype_is_kept():
    assert imresize(np.zeros((10, 7), np.uint8), 1 / 2).shape == (5, 4)
    assert imresize(np.zeros((255, 256, 3), np.float32), 1 / 3).shape == (85, 86, 3)
    assert imresize(np.zeros((255, 256, 3), np.float32), 1 / 3).dtype == np.float32
    assert output_length(255, 1 / 3) == 85
    assert output_length(10, 0.25) == 3


def test_grey_equals_each_channel_and_antialiasing_only_matters_when_downscaling():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (20, 16, 3), dtype=np.uint8)
    colour = imresize(img, 1 / 2)
    for c in range(3):
        assert np.array_equal(imresize(img[..., c], 1 / 2), colour[..., c])
    assert not np.array_equal(imresize(img, 1 / 2, antialiasing=False), colour)
    assert np.array_equal(imresize(img, 2, antialiasing=False), imresize(img, 2))


def test_imresize_torch_is_differentiable():
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    imresize_torch(x, 1 / 2).sum().backward()
    # Rows of both resize matrices sum to 1, so the gradient of the sum has total 4 * 4.
    assert x.grad is not None and abs(x.grad.sum().item() - 16.0) < 1e-10


def test_modcrop():
    img = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    out = modcrop(img, 3)
    assert out.shape == (6, 9, 3)
    assert np.array_equal(out, img[:6, :9])
    assert modcrop(img[..., 0], 4).shape == (4, 8)
    with pytest.raises(OptionError):
        modcrop(img, 0)
    with pytest.raises(DataError):
        modcrop(img, 8)


def test_bad_inputs_raise_mcir_errors():
    with pytest.raises(OptionError):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(OptionError):
        imresize(np.zeros((4, 4)), float("nan"))
    with pytest.raises(DataError):
        imresize(np.zeros((1, 4, 4, 3)), 0.5)
    with pytest.raises(DataError):
        imresize(np.zeros((4, 4), dtype=bool), 0.5)
    with pytest.raises(DataError):
        imresize_torch(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 0.5)
    with pytest.raises(DataError):
        imresize_torch(torch.zeros(4, 4), 0.5)
