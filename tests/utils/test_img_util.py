"""Tests for image I/O and numpy/tensor conversion."""

import numpy as np
import pytest
import skimage.data
import torch

from mcir.errors import DataError
from mcir.utils.img_util import (
    batch2uint8_imgs,
    bgr2y,
    imfrombytes,
    img2float,
    img2tensor,
    imread,
    imwrite,
    tensor2img,
    tensor2uint8,
)


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[100:164, 200:248, ::-1])


def test_imfrombytes_garbage_raises_dataerror_naming_path():
    with pytest.raises(DataError, match=r"bad\.png: cannot decode image"):
        imfrombytes(b"this is not an image" * 10, path="bad.png")
    with pytest.raises(DataError, match="cannot decode"):
        imfrombytes(b"", path="empty.png")


def test_png_roundtrip_uint8_keeps_pixels_and_bgr_order(tmp_path, bgr):
    imwrite(bgr, tmp_path / "a" / "b" / "x.png")  # auto_mkdir
    back = imread(tmp_path / "a" / "b" / "x.png")
    assert back.dtype == np.uint8 and back.shape == bgr.shape
    np.testing.assert_array_equal(back, bgr)
    # Written by cv2 in BGR means RGB on disk: the red channel (index 2) is astronaut's R.
    np.testing.assert_array_equal(back[:, :, 2], skimage.data.astronaut()[100:164, 200:248, 0])


def test_png_roundtrip_16bit(tmp_path, bgr):
    img16 = bgr.astype(np.uint16) * 257 + np.arange(bgr.shape[1], dtype=np.uint16)[None, :, None]
    imwrite(img16, tmp_path / "deep.png")
    back = imread(tmp_path / "deep.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img16)
    as_float = imread(tmp_path / "deep.png", float32=True)
    assert as_float.dtype == np.float32
    np.testing.assert_allclose(as_float, img16 / 65535.0, atol=1e-7)


def test_gray_is_hw1_and_alpha_is_dropped(tmp_path, bgr):
    gray = bgr[:, :, 1]
    imwrite(gray, tmp_path / "g.png")
    assert imread(tmp_path / "g.png").shape == gray.shape + (1,)
    bgra = np.dstack([bgr, np.full(gray.shape, 7, np.uint8)])
    imwrite(bgra, tmp_path / "alpha.png")
    back = imread(tmp_path / "alpha.png")
    assert back.shape == bgr.shape
    np.testing.assert_array_equal(back, bgr)


def test_imwrite_is_atomic_and_reports_bad_format(tmp_path, bgr):
    imwrite(bgr, tmp_path / "ok.png")
    with pytest.raises(DataError, match="nope.xyz"):
        imwrite(bgr, tmp_path / "nope.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.png"]  # no temp files left behind


def test_imread_missing_file_names_path(tmp_path):
    with pytest.raises(DataError, match="missing.png"):
        imread(tmp_path / "missing.png")


def test_img2tensor_rgb_order_scaling_and_lists(bgr):
    t = img2tensor(bgr)
    assert t.shape == (3, 64, 48) and t.dtype == torch.float32
    torch.testing.assert_close(t[0], torch.from_numpy(bgr[:, :, 2] / 255.0).float())  # R first
    ts = img2tensor([bgr, bgr[:, :, :1]], bgr2rgb=False, float32=False)
    assert isinstance(ts, list) and ts[0].dtype == torch.uint8 and ts[1].shape == (1, 64, 48)
    torch.testing.assert_close(ts[0][0], torch.from_numpy(bgr[:, :, 0].copy()))
    flipped = img2tensor(bgr[:, ::-1])  # negative strides are fine
    torch.testing.assert_close(flipped, t.flip(-1))


def test_tensor2img_clamps_rounds_and_swaps_channels():
    vals = torch.tensor([-0.2, 1.3, 100.4 / 255, 100.6 / 255, 2.5 / 255, 0.5])
    t = torch.zeros(1, 3, 1, 6)
    t[0, 0, 0] = vals  # R channel
    img = tensor2img(t)
    assert img.shape == (1, 6, 3) and img.dtype == np.uint8
    assert img[0, :, 2].tolist() == [0, 255, 100, 101, 2, 128]  # R lands in BGR index 2
    assert img[0, :, 0].tolist() == [0] * 6
    img16 = tensor2img(t, out_type=np.uint16)
    assert img16.dtype == np.uint16 and img16[0, 1, 2] == 65535
    shifted = tensor2img(torch.full((1, 2, 2), 0.0), min_max=(-1, 1))
    assert shifted.shape == (2, 2, 1) and (shifted == 128).all()  # 0 in [-1, 1] is mid-grey (127.5 -> 128)
    with pytest.raises(ValueError, match="batch"):
        tensor2img(torch.zeros(2, 3, 4, 4))


def test_tensor_roundtrip_is_lossless_for_uint8(bgr):
    np.testing.assert_array_equal(tensor2img(img2tensor(bgr)), bgr)
    outs = tensor2img([img2tensor(bgr), img2tensor(bgr[:, :, :1])])
    np.testing.assert_array_equal(outs[1], bgr[:, :, :1])


def test_tensor2uint8_quantises_like_tensor2img(bgr):
    x = torch.rand(2, 3, 8, 8) * 1.4 - 0.2
    q = tensor2uint8(x)
    assert torch.is_tensor(q) and q.dtype == x.dtype and q.min() >= 0 and q.max() <= 255
    assert torch.equal(q, q.round())
    expected = tensor2img(x[0], rgb2bgr=False).astype(np.float32)
    np.testing.assert_array_equal(q[0].permute(1, 2, 0).numpy(), expected)


@pytest.mark.parametrize("channels", [3, 1])
def test_batch2uint8_imgs_equals_tensor2img_per_image(channels):
    # Out-of-range values, exact half levels (round half to even) and their float32 neighbours.
    halves = (torch.arange(256, dtype=torch.float32) + 0.5) / 255.0
    values = torch.cat([halves, torch.nextafter(halves, torch.tensor(2.0)), torch.nextafter(halves, torch.tensor(-1.0)),
                        torch.tensor([-0.3, 0.0, 1.0, 1.7]), torch.rand(500) * 1.4 - 0.2])
    x = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(0))]
    x = x[: (x.numel() // (2 * channels * 12)) * 2 * channels * 12].reshape(2, channels, 12, -1)
    imgs = batch2uint8_imgs(x)
    assert len(imgs) == 2
    for img, t in zip(imgs, x):
        assert img.dtype == np.uint8 and img.flags["C_CONTIGUOUS"] and img.shape == (12, x.shape[-1], channels)
        np.testing.assert_array_equal(img, tensor2img(t))


def test_bgr2y_matches_bt601_studio_range():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = 255
    img[1, 1] = (0, 0, 255)  # pure red in BGR
    y = bgr2y(img)[:, :, 0] * 255
    assert y.shape == (2, 2)
    np.testing.assert_allclose(y[0, 0], 235.0, atol=1e-3)
    np.testing.assert_allclose(y[0, 1], 16.0, atol=1e-3)
    np.testing.assert_allclose(y[1, 1], 16.0 + 65.481, atol=1e-3)
    np.testing.assert_allclose(bgr2y(img2float(img)), bgr2y(img), atol=1e-6)
