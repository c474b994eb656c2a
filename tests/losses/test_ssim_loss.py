"""Tests of the differentiable SSIM and SSIMLoss against skimage and mcir's metric on real images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from mcir.errors import OptionError
from mcir.losses import build_loss
from mcir.losses.ssim_loss import SSIMLoss, gaussian_kernel_1d, ssim_map
from mcir.metrics.psnr_ssim import calculate_ssim

REPO = Path(__file__).resolve().parents[2]
SET5 = REPO / "datasets" / "Set5"
SOTS = REPO / ".." / "shared" / "data" / "dehaze" / "SOTS-indoor"


def _rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return img[:, :, ::-1].copy()


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].to(torch.float64) / 255.0


def _set5_pair(stem: str) -> tuple:
    """HR image and its official x2 LR upsampled back with OpenCV bicubic (a real degraded pair)."""
    hr = _rgb(SET5 / "HR" / f"{stem}.png")
    lr = _rgb(SET5 / "LR_bicubic" / "X2" / f"{stem}x2.png")
    hr = hr[: lr.shape[0] * 2, : lr.shape[1] * 2]
    up = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
    return up, hr


def test_gaussian_kernel_matches_opencv() -> None:
    g = gaussian_kernel_1d(11, 1.5, dtype=torch.float64)
    np.testing.assert_allclose(g.numpy(), cv2.getGaussianKernel(11, 1.5).ravel(), rtol=0, atol=1e-15)


@pytest.mark.parametrize("stem", ["butterfly", "woman"])
def test_valid_ssim_matches_skimage_and_mcir_metric_on_set5(stem: str) -> None:
    up, hr = _set5_pair(stem)
    ours = 1.0 - SSIMLoss(padding="valid")(_tensor(up), _tensor(hr)).item()
    sk = structural_similarity(up, hr, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5,
                               use_sample_covariance=False)
    metric = calculate_ssim(up[:, :, ::-1], hr[:, :, ::-1], crop_border=0)  # metric takes BGR
    assert 0.5 < ours < 0.99  # a real, clearly imperfect pair
    assert ours == pytest.approx(sk, abs=1e-6)
    assert ours == pytest.approx(metric, abs=1e-6)


def test_valid_ssim_matches_metric_on_sots_pair() -> None:
    hazy_dir = SOTS / "hazy"
    if not hazy_dir.is_dir():
        pytest.skip(f"benchmark data not found: {hazy_dir}")
    name = sorted(p.name for p in hazy_dir.glob("*.png"))[0]
    hazy, gt = _rgb(hazy_dir / name), _rgb(SOTS / "GT" / name)
    ours = 1.0 - SSIMLoss()(_tensor(hazy).float(), _tensor(gt).float()).item()  # float32, as in training
    assert ours == pytest.approx(calculate_ssim(hazy[:, :, ::-1], gt[:, :, ::-1], crop_border=0), abs=1e-4)


def test_zero_padding_keeps_size_and_equals_valid_inside() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 30, 26, generator=gen), torch.rand(2, 3, 30, 26, generator=gen)
    same = ssim_map(x, y, padding="zeros")
    valid = ssim_map(x, y, padding="valid")
    assert same.shape == x.shape and valid.shape == (2, 3, 20, 16)
    torch.testing.assert_close(same[..., 5:-5, 5:-5], valid, atol=1e-6, rtol=0)


def test_zero_padding_equals_direct_2d_gaussian_filtering() -> None:
    # IDT's SSIM module: one 11x11 conv with zero padding 5 per moment.
    gen = torch.Generator().manual_seed(1)
    x, y = torch.rand(1, 3, 24, 20, generator=gen), torch.rand(1, 3, 24, 20, generator=gen)
    g = gaussian_kernel_1d(11, 1.5)
    win = torch.outer(g, g).expand(3, 1, 11, 11)

    def filt(a: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(a, win, padding=5, groups=3)

    mu1, mu2 = filt(x), filt(y)
    s11, s22, s12 = filt(x * x) - mu1**2, filt(y * y) - mu2**2, filt(x * y) - mu1 * mu2
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    loss = SSIMLoss(padding="zeros", form="negative")(x, y)
    assert loss.item() == pytest.approx(-expected.mean().item(), abs=1e-6)


def test_forms_differ_by_a_constant_and_share_gradients() -> None:
    gen = torch.Generator().manual_seed(2)
    target = torch.rand(2, 3, 16, 16, generator=gen)
    pred1 = torch.rand(2, 3, 16, 16, generator=gen).requires_grad_()
    pred2 = pred1.detach().clone().requires_grad_()
    a = SSIMLoss(loss_weight=0.5, form="one_minus")(pred1, target)
    b = SSIMLoss(loss_weight=0.5, form="negative")(pred2, target)
    assert a.item() == pytest.approx(b.item() + 0.5, abs=1e-6)
    a.backward()
    b.backward()
    torch.testing.assert_close(pred1.grad, pred2.grad)
    assert pred1.grad.abs().sum() > 0


def test_identical_images_and_reductions() -> None:
    x = torch.rand(2, 3, 20, 20)
    assert SSIMLoss()(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    none = SSIMLoss(reduction="none", loss_weight=2.0)(x, y)
    assert none.shape == (2, 3, 10, 10)
    assert SSIMLoss(reduction="sum", loss_weight=2.0)(x, y).item() == pytest.approx(none.sum().item(), rel=1e-6)
    assert SSIMLoss(loss_weight=2.0)(x, y).item() == pytest.approx(none.mean().item(), rel=1e-6)


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, 1, 6, 7, dtype=torch.float64, generator=gen).requires_grad_()
    y = torch.rand(1, 1, 6, 7, dtype=torch.float64, generator=gen)
    for padding in ("valid", "zeros"):
        loss = SSIMLoss(padding=padding, window_size=5, sigma=1.0)
        assert torch.autograd.gradcheck(lambda a: loss(a, y), (x,))


def test_build_from_options_and_errors_name_the_key() -> None:
    loss = build_loss({"type": "SSIMLoss", "padding": "zeros", "form": "negative"}, key="train.pixel_opt")
    assert isinstance(loss, SSIMLoss) and loss.padding == "zeros"
    for extra, key in [
        ({"window_size": 10}, "train.pixel_opt.window_size"),
        ({"padding": "reflect"}, "train.pixel_opt.padding"),
        ({"form": "minus"}, "train.pixel_opt.form"),
        ({"reduction": "avg"}, "train.pixel_opt.reduction"),
        ({"sigma": 0}, "train.pixel_opt.sigma"),
    ]:
        with pytest.raises(OptionError) as info:
            build_loss({"type": "SSIMLoss", **extra}, key="train.pixel_opt")
        assert info.value.key == key, extra
    with pytest.raises(OptionError):
        SSIMLoss()(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))  # smaller than the valid window
    with pytest.raises(OptionError):
        SSIMLoss()(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
