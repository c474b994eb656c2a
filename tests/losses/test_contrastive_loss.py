"""Tests of the sample-contrastive peers (CR, PCL-style) against direct computations."""

from __future__ import annotations

import pytest
import torch

from mcir.options import build_checked
from mcir.registry import LOSS_REGISTRY
from mcir.errors import OptionError
from mcir.losses.contrastive_loss import ContrastLoss, PCLLoss, gaussian_blur

# Offline machine: every VGG here is random-initialised on purpose (vgg_weights='random').
pytestmark = pytest.mark.filterwarnings("ignore:.*features are random:UserWarning")

CR_WEIGHTS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16, "relu3_1": 1 / 8, "relu4_1": 1 / 4, "relu5_1": 1.0}


def _imgs(seed: int = 0, size: int = 32):
    gen = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, size, size, generator=gen)
    out = (gt + 0.1 * torch.randn(2, 3, size, size, generator=gen)).clamp(0, 1)
    lq = (gt + 0.3 * torch.randn(2, 3, size, size, generator=gen)).clamp(0, 1)
    return out, gt, lq


def _d(vgg, a, b, layer):
    return (vgg(a)[layer] - vgg(b)[layer]).abs().mean()


def test_cr_equals_the_aecrnet_formula_and_defaults():
    torch.manual_seed(0)
    loss = ContrastLoss(loss_weight=0.1, vgg_weights="random")
    assert loss.layer_weights == pytest.approx(CR_WEIGHTS)
    assert loss.vgg.use_input_norm is False  # AECR-Net feeds unnormalised images
    out, gt, lq = _imgs()
    got = loss(out, gt, lq)
    ref = 0.1 * sum(w * _d(loss.vgg, out, gt, k) / (_d(loss.vgg, out, lq, k) + 1e-7) for k, w in CR_WEIGHTS.items())
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-8)


def test_cr_gradients_reach_the_output_only_and_pull_towards_gt():
    torch.manual_seed(0)
    loss = ContrastLoss(vgg_weights="random", layer_weights={"relu1_1": 1.0, "relu2_1": 1.0})
    out, gt, lq = _imgs()
    out = out.requires_grad_(True)
    gt.requires_grad_(True)
    value = loss(out, gt, lq)
    value.backward()
    assert gt.grad is None and out.grad is not None and out.grad.abs().sum() > 0
    # A small step against the gradient lowers the loss (it is a real objective, not a constant).
    with torch.no_grad():
        stepped = loss(out - 1e-2 * out.grad / out.grad.abs().max(), gt, lq)
    assert stepped < value


def test_cr_upsamples_a_smaller_input_for_sr():
    torch.manual_seed(0)
    loss = ContrastLoss(vgg_weights="random", layer_weights={"relu1_1": 1.0})
    out, gt, _ = _imgs()
    small = torch.rand(2, 3, 8, 8)
    up = torch.nn.functional.interpolate(small, size=(32, 32), mode="bicubic", align_corners=False)
    torch.testing.assert_close(loss(out, gt, small), loss(out, gt, up))


def test_cr_sum_reduction_sums_feature_elements():
    torch.manual_seed(0)
    layers = {"relu1_1": 1.0}
    loss = ContrastLoss(loss_weight=1.0, vgg_weights="random", layer_weights=layers, reduction="sum")
    out, gt, lq = _imgs()
    f = {k: loss.vgg(x)["relu1_1"] for k, x in (("o", out), ("g", gt), ("l", lq))}
    ref = (f["o"] - f["g"]).abs().sum() / ((f["o"] - f["l"]).abs().sum() + 1e-7)
    torch.testing.assert_close(loss(out, gt, lq), ref, rtol=1e-5, atol=1e-8)


def test_pcl_samples_are_blurred_and_sharpened_gt_plus_input():
    torch.manual_seed(0)
    loss = PCLLoss(num_blur=3, num_sharpen=2, vgg_weights="random", layer_weights={"relu1_1": 1.0})
    out, gt, lq = _imgs(size=48)
    torch.manual_seed(5)
    s = loss.samples(out, gt, lq)
    assert len(s["negatives"]) == 4 and len(s["positives"]) == 3
    assert torch.equal(s["positives"][0], gt) and torch.equal(s["negatives"][-1], lq)

    def grad_energy(x):
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean()

    assert all(grad_energy(n) < grad_energy(gt) for n in s["negatives"][:3])
    assert all(grad_energy(p) > grad_energy(gt) for p in s["positives"][1:])
    torch.manual_seed(5)
    again = loss.samples(out, gt, lq)
    assert all(torch.equal(a, b) for a, b in zip(s["negatives"], again["negatives"]))


def test_pcl_value_is_the_ratio_over_its_samples():
    torch.manual_seed(0)
    layers = {"relu1_1": 0.5, "relu2_1": 1.0}
    loss = PCLLoss(loss_weight=0.2, num_blur=2, num_sharpen=1, vgg_weights="random", layer_weights=layers)
    out, gt, lq = _imgs()
    torch.manual_seed(3)
    got = loss(out, gt, lq)
    torch.manual_seed(3)
    s = loss.samples(out, gt, lq)
    ref = 0.2 * sum(
        w * torch.stack([_d(loss.vgg, out, p, k) for p in s["positives"]]).mean()
        / (torch.stack([_d(loss.vgg, out, n, k) for n in s["negatives"]]).mean() + 1e-7)
        for k, w in layers.items()
    )
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-8)


def test_gaussian_blur_keeps_size_and_mean():
    x = torch.rand(1, 3, 20, 20)
    y = gaussian_blur(x, 7, 1.5)
    assert y.shape == x.shape
    assert abs(y.mean().item() - x.mean().item()) < 0.02
    assert y.std() < x.std()


@pytest.mark.parametrize(
    "cfg, key",
    [
        ({"type": "PCLLoss", "kernel_range": [1, 5]}, "kernel_range"),
        ({"type": "PCLLoss", "sigma_range": [0, 1]}, "sigma_range"),
        ({"type": "PCLLoss", "num_blur": 0, "use_input_negative": False}, "num_blur"),
        ({"type": "ContrastLoss", "layer_weights": {"relu9_1": 1.0}}, "layer_weights"),
        ({"type": "ContrastLoss", "reduction": "none"}, "reduction"),
        # The old softmax "curricular" flag was not CCR and is gone: CCR is its own loss (CCRLoss).
        ({"type": "ContrastLoss", "curricular": True}, "curricular"),
        ({"type": "PCLLoss", "curricular_temperature": 1.0}, "curricular_temperature"),
    ],
)
def test_bad_options_name_the_key(cfg, key):
    with pytest.raises(OptionError) as info:
        build_checked(LOSS_REGISTRY, {**cfg, "vgg_weights": "random"}, key="train.contrast_opt")
    assert key in str(info.value)
