"""Tests of PSNRLoss against a direct −PSNR computation, its Y-channel mode, reductions and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcir.errors import OptionError
from mcir.losses import build_loss
from mcir.losses.psnr_loss import PSNRLoss


def _pair(seed: int = 0) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    target = torch.rand(3, 3, 8, 6, generator=gen)
    noise = torch.randn(3, 3, 8, 6, generator=gen) * torch.tensor([0.01, 0.05, 0.2]).view(3, 1, 1, 1)
    return target + noise, target


def _neg_psnr_per_image(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    mse = ((pred.astype(np.float64) - target.astype(np.float64)) ** 2).reshape(len(pred), -1).mean(1)
    return 10.0 * np.log10(mse + 1e-8)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_negative_psnr_per_image(reduction: str) -> None:
    pred, target = _pair()
    per_image = _neg_psnr_per_image(pred.numpy(), target.numpy())
    expected = {"mean": per_image.mean(), "sum": per_image.sum(), "none": per_image}[reduction]
    loss = build_loss({"type": "PSNRLoss", "loss_weight": 0.5, "reduction": reduction}, key="train.pixel_opt")
    got = loss(pred, target)
    assert got.shape == (() if reduction != "none" else (3,))
    np.testing.assert_allclose(got.numpy(), 0.5 * expected, rtol=1e-5)
    # three noise levels: 40, 26 and 14 dB roughly, so the per-image values really differ
    assert per_image.max() - per_image.min() > 20


def test_toy_compares_bt601_luma() -> None:
    pred, target = _pair(1)
    coef = np.array([65.481, 128.553, 24.966]).reshape(1, 3, 1, 1)
    y_pred = ((pred.numpy() * coef).sum(1, keepdims=True) + 16.0) / 255.0
    y_target = ((target.numpy() * coef).sum(1, keepdims=True) + 16.0) / 255.0
    got = PSNRLoss(toY=True)(pred, target)
    np.testing.assert_allclose(float(got), _neg_psnr_per_image(y_pred, y_target).mean(), rtol=1e-5)
    assert abs(float(got) - float(PSNRLoss()(pred, target))) > 0.1


def test_identical_images_give_the_floor_and_gradients_flow() -> None:
    x = torch.rand(2, 3, 4, 4)
    assert float(PSNRLoss()(x, x)) == pytest.approx(-80.0, abs=1e-3)  # 10·log10(1e-8)
    pred = (x + 0.1).requires_grad_()
    PSNRLoss()(pred, x).backward()
    assert torch.isfinite(pred.grad).all() and (pred.grad > 0).all()  # lowering pred lowers the loss


def test_errors() -> None:
    with pytest.raises(OptionError):
        PSNRLoss()(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(OptionError) as info:
        PSNRLoss(toY=True)(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4))
    assert info.value.key == "toY"
    with pytest.raises(OptionError) as info:
        build_loss({"type": "PSNRLoss", "reduction": "avg"}, key="train.pixel_opt")
    assert info.value.key == "train.pixel_opt.reduction"
