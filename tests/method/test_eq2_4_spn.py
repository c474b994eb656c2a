"""Tests for the SPN (model-contrastive) loss against a direct, per-negative computation of Eq. 4."""

from __future__ import annotations

from typing import Dict, Sequence

import pytest
import torch

from mcir.errors import OptionError
from mcir.method.eq2_4_spn import SPNLoss
from mcir.registry import LOSS_REGISTRY

# This machine is offline, so every loss uses vgg_weights='random' (seeded random VGG).
pytestmark = pytest.mark.filterwarnings("ignore:.*features are random:UserWarning")

B, C, H, W, N = 2, 3, 32, 32, 3


def make_loss(seed: int = 0, **kwargs) -> SPNLoss:
    """SPNLoss with a seeded random VGG."""
    torch.manual_seed(seed)
    return SPNLoss(vgg_weights="random", **kwargs)


def reference_distance(loss: SPNLoss, out: torch.Tensor, negs: Sequence[torch.Tensor], weights: Dict[str, float],
                       crit=lambda d: d.abs(), reduce=torch.mean) -> torch.Tensor:
    """Eq. 4 written out: one VGG call per negative, mean over negatives of weighted per-layer means."""
    f_out = loss.vgg(out)
    total = 0.0
    for neg in negs:
        f_neg = loss.vgg(neg.detach())
        total = total + sum(w * reduce(crit(f_out[k] - f_neg[k])) for k, w in weights.items())
    return total / len(negs)


@pytest.fixture()
def data():
    gen = torch.Generator().manual_seed(42)
    out = torch.rand(B, C, H, W, generator=gen)
    negs = torch.rand(N, B, C, H, W, generator=gen)
    return out, negs


def test_registered() -> None:
    assert LOSS_REGISTRY.get("SPNLoss") is SPNLoss


def test_batched_equals_reference(data) -> None:
    out, negs = data
    loss = make_loss()
    weights = {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5}
    out_a = out.clone().requires_grad_(True)
    got = loss.distance(out_a, negs)
    got.backward()
    out_b = out.clone().requires_grad_(True)
    ref = reference_distance(loss, out_b, list(negs), weights)
    ref.backward()
    assert got.item() > 0
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out_a.grad, out_b.grad, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize(
    "criterion, crit",
    [("l2", lambda d: d * d), ("mse", lambda d: d * d), ("charbonnier", lambda d: torch.sqrt(d * d + 1e-12))],
)
def test_other_criteria_equal_reference(data, criterion, crit) -> None:
    out, negs = data
    loss = make_loss(criterion=criterion, layer_weights={"relu1_2": 1.0, "relu2_1": 0.5})
    ref = reference_distance(loss, out, list(negs), {"relu1_2": 1.0, "relu2_1": 0.5}, crit=crit)
    torch.testing.assert_close(loss.distance(out, negs), ref, rtol=1e-6, atol=1e-6)


def test_sum_reduction(data) -> None:
    out, negs = data
    loss = make_loss(layer_weights={"relu2_2": 1.0}, reduction="sum")
    ref = reference_distance(loss, out, list(negs), {"relu2_2": 1.0}, reduce=torch.sum)
    torch.testing.assert_close(loss.distance(out, negs), ref, rtol=1e-5, atol=0.0)


def test_grad_to_output_not_negatives(data) -> None:
    out, negs = data
    loss = make_loss()
    out = out.requires_grad_(True)
    negs_t = negs.clone().requires_grad_(True)
    negs_l = [n.clone().requires_grad_(True) for n in negs]
    (loss(out, negs_t) + loss(out, negs_l)).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert negs_t.grad is None
    assert all(n.grad is None for n in negs_l)
    assert all(p.grad is None for p in loss.parameters())


def test_weight_and_sign(data) -> None:
    out, negs = data
    loss = make_loss(loss_weight=1e-4)
    dist = loss.distance(out, negs)
    term = loss(out, negs)
    assert term.item() < 0
    torch.testing.assert_close(term, -1e-4 * dist)
    loss.loss_weight = 0.5
    torch.testing.assert_close(loss(out, negs), -0.5 * dist)


def test_distance_to_itself_is_zero(data) -> None:
    out, _ = data
    loss = make_loss()
    assert loss.distance(out, out.unsqueeze(0).repeat(2, 1, 1, 1, 1)).item() == 0.0


def test_range_norm(data) -> None:
    out, negs = data
    plain = make_loss(seed=5)
    ranged = make_loss(seed=5, range_norm=True)
    torch.testing.assert_close(ranged.distance(out * 2 - 1, negs * 2 - 1), plain.distance(out, negs),
                               rtol=1e-5, atol=1e-7)


def test_zero_layer_weight_ignored(data) -> None:
    out, negs = data
    with_zero = make_loss(seed=7, layer_weights={"relu1_2": 0.2, "relu2_2": 0.0, "relu3_3": 0.5})
    without = make_loss(seed=7, layer_weights={"relu1_2": 0.2, "relu3_3": 0.5})
    full = make_loss(seed=7, layer_weights={"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5})
    assert "relu2_2" not in with_zero.vgg.layer_name_list
    torch.testing.assert_close(with_zero.distance(out, negs), without.distance(out, negs))
    assert full.distance(out, negs) > without.distance(out, negs)


def test_vgg19_layers(data) -> None:
    out, negs = data
    weights = {"relu3_4": 0.5, "relu5_4": 1.0}
    loss = make_loss(vgg_type="vgg19", layer_weights=weights)
    ref = reference_distance(loss, out, list(negs), weights)
    torch.testing.assert_close(loss.distance(out, negs), ref, rtol=1e-6, atol=1e-6)


def test_single_negative_and_list_input(data) -> None:
    out, negs = data
    loss = make_loss()
    one = loss.distance(out, negs[:1])
    torch.testing.assert_close(loss.distance(out, negs[0]), one)
    torch.testing.assert_close(loss.distance(out, [negs[0]]), one)
    torch.testing.assert_close(one, reference_distance(loss, out, [negs[0]], loss.layer_weights),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(loss.distance(out, list(negs)), loss.distance(out, negs))


def test_bad_options_and_shapes(data) -> None:
    out, negs = data
    with pytest.raises(OptionError) as info:
        make_loss(criterion="huber")
    assert info.value.key == "criterion"
    with pytest.raises(OptionError) as info:
        make_loss(reduction="none")
    assert info.value.key == "reduction"
    with pytest.raises(OptionError, match="relu9_9") as info:
        make_loss(layer_weights={"relu9_9": 1.0})
    assert info.value.key == "layer_weights"
    with pytest.raises(OptionError):
        make_loss(layer_weights={"relu1_2": 0.0})
    loss = make_loss()
    with pytest.raises(ValueError, match="negatives"):
        loss.distance(out, negs[:, :, :, :16])
    with pytest.raises(ValueError):
        loss.distance(out, [])


def test_bf16_negatives_give_the_fp32_distance_within_bf16_precision() -> None:
    gen = torch.Generator().manual_seed(7)
    out = torch.rand(B, C, H, W, generator=gen)
    negs = (out + 0.2 * torch.randn(N, B, C, H, W, generator=gen)).clamp(0, 1)
    loss = make_loss()
    out_a = out.clone().requires_grad_(True)
    full = loss.distance(out_a, negs)
    full.backward()
    out_b = out.clone().requires_grad_(True)
    half = loss.distance(out_b, negs.bfloat16())
    half.backward()
    assert half.dtype == torch.float32 and out_b.grad.dtype == torch.float32
    torch.testing.assert_close(half, full, rtol=1e-2, atol=0)
    assert half.item() != full.item()  # the negatives' VGG really ran in bf16
    agree = (out_a.grad.sign() == out_b.grad.sign()).float().mean()
    assert agree > 0.95
