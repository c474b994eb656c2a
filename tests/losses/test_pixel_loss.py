"""Tests of the pixel losses against direct formulas, reductions, weights and option errors."""

from __future__ import annotations

import pytest
import torch

from mcir.options import build_checked
from mcir.registry import LOSS_REGISTRY
from mcir.errors import OptionError
from mcir.losses import build_loss
from mcir.losses.pixel_loss import CharbonnierLoss, L1Loss, MSELoss

EPS = 1e-3  # large enough that Charbonnier differs visibly from L1


def _pair(seed: int = 0) -> tuple:
    gen = torch.Generator().manual_seed(seed)
    pred = torch.rand(2, 3, 5, 4, generator=gen)
    target = torch.rand(2, 3, 5, 4, generator=gen)
    return pred, target


FORMULAS = {
    "L1Loss": (lambda d: d.abs(), {}),
    "MSELoss": (lambda d: d**2, {}),
    "CharbonnierLoss": (lambda d: torch.sqrt(d**2 + EPS), {"eps": EPS}),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_formula(name: str, reduction: str) -> None:
    formula, extra = FORMULAS[name]
    pred, target = _pair()
    elem = formula(pred - target)
    expected = {"none": elem, "mean": elem.mean(), "sum": elem.sum()}[reduction]
    loss = LOSS_REGISTRY.get(name)(reduction=reduction, **extra)(pred, target)
    assert loss.shape == expected.shape
    torch.testing.assert_close(loss, expected)


def test_l1_and_mse_match_torch() -> None:
    pred, target = _pair(1)
    torch.testing.assert_close(L1Loss()(pred, target), torch.nn.functional.l1_loss(pred, target))
    torch.testing.assert_close(MSELoss()(pred, target), torch.nn.functional.mse_loss(pred, target))


def test_charbonnier_default_eps_is_close_to_l1() -> None:
    pred, target = _pair(2)
    torch.testing.assert_close(CharbonnierLoss()(pred, target), L1Loss()(pred, target), atol=1e-5, rtol=1e-5)
    assert CharbonnierLoss(eps=EPS)(pred, target) > L1Loss()(pred, target)


@pytest.mark.parametrize("cls", [L1Loss, MSELoss, CharbonnierLoss])
def test_loss_weight_scales(cls: type) -> None:
    pred, target = _pair(3)
    torch.testing.assert_close(cls(loss_weight=2.5)(pred, target), 2.5 * cls()(pred, target))


def test_weight_full_shape() -> None:
    pred, target = _pair(4)
    weight = torch.rand(pred.shape, generator=torch.Generator().manual_seed(5))
    elem = (pred - target).abs() * weight
    torch.testing.assert_close(L1Loss(reduction="none")(pred, target, weight), elem)
    torch.testing.assert_close(L1Loss(reduction="sum")(pred, target, weight), elem.sum())
    torch.testing.assert_close(L1Loss(reduction="mean")(pred, target, weight), elem.sum() / weight.sum())


def test_weight_single_channel_counts_each_channel() -> None:
    pred, target = _pair(6)
    weight = torch.zeros(2, 1, 5, 4)
    weight[:, :, :2] = 1.0  # only the top two rows count
    elem = (pred - target) ** 2
    expected = elem[:, :, :2].mean()
    torch.testing.assert_close(MSELoss()(pred, target, weight), expected)


def test_all_zero_weight_gives_zero_not_nan() -> None:
    pred, target = _pair(7)
    loss = L1Loss()(pred, target, torch.zeros_like(pred))
    assert torch.isfinite(loss) and loss.item() == 0.0


def test_gradient_flows() -> None:
    pred, target = _pair(8)
    pred.requires_grad_(True)
    CharbonnierLoss()(pred, target).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


@pytest.mark.parametrize("cls", [L1Loss, MSELoss, CharbonnierLoss])
def test_bad_reduction_names_reduction(cls: type) -> None:
    with pytest.raises(OptionError) as info:
        cls(reduction="avg")
    assert info.value.key == "reduction"
    assert "'avg'" in str(info.value)


def test_shape_mismatch_is_reported() -> None:
    with pytest.raises(OptionError, match="upscale"):
        L1Loss()(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 16, 16))


def test_build_loss_and_errors() -> None:
    loss = build_loss({"type": "CharbonnierLoss", "loss_weight": 0.5, "eps": 1e-6}, "train.pixel_opt")
    assert isinstance(loss, CharbonnierLoss) and loss.loss_weight == 0.5 and loss.eps == 1e-6
    with pytest.raises(OptionError) as info:
        build_checked(LOSS_REGISTRY, {"type": "L1Loss", "reduce": "sum"}, "train.pixel_opt")
    assert info.value.key == "train.pixel_opt.reduce"
    assert "did you mean 'reduction'" in str(info.value)
    with pytest.raises(OptionError) as info:
        build_checked(LOSS_REGISTRY, {"type": "L1Loss", "reduction": "avg"}, "train.pixel_opt", file="x.yml")
    assert info.value.key == "train.pixel_opt.reduction"
    assert info.value.file == "x.yml"
    with pytest.raises(OptionError) as info:
        build_checked(LOSS_REGISTRY, {"type": "L1Los"}, "train.pixel_opt")
    assert info.value.key == "train.pixel_opt.type"
    assert "did you mean L1Loss" in str(info.value)
