"""CCRLoss against an independent formula: curricular easy/hard weights, the input negative, frozen networks."""

from __future__ import annotations

import math

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.options import build_checked
from mcir.registry import LOSS_REGISTRY
from mcir.errors import OptionError
from mcir.losses import build_loss
from mcir.losses.ccr_loss import CCRLoss, batch_psnr

# Offline machine: every VGG here is random-initialised on purpose (vgg_weights='random').
pytestmark = pytest.mark.filterwarnings("ignore:.*features are random:UserWarning")

LAYERS = {"relu1_1": 1 / 32, "relu2_1": 1 / 16}  # two of CR's layers: a small VGG, same formula


def _imgs(seed: int = 0, size: int = 24):
    gen = torch.Generator().manual_seed(seed)
    gt = torch.rand(2, 3, size, size, generator=gen)
    out = (gt + 0.05 * torch.randn(2, 3, size, size, generator=gen)).clamp(0, 1)
    lq = (gt + 0.3 * torch.randn(2, 3, size, size, generator=gen)).clamp(0, 1)
    return out, gt, lq, gen


def _psnr(x: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean over images of 10·log10(1 / MSE) on [0, 1]-clamped images, written out in float64."""
    vals = []
    for a, b in zip(x.double().clamp(0, 1), gt.double().clamp(0, 1)):
        vals.append(10 * math.log10(1 / float(((a - b) ** 2).mean())))
    return sum(vals) / len(vals)


def _reference(loss, out, gt, lq, negs, thresholds, lam=0.25, loss_weight=0.2, input_weight=None):
    """C2PNet's C2R + curriculum_weight, written out: easy (anchor PSNR > threshold) 1+λ, else 1-λ, input K."""
    anchor = _psnr(out, gt)
    raw = [(1 + lam) if anchor > t else (1 - lam) for t in thresholds]
    raw.append(len(negs) if input_weight is None else input_weight)
    w = [r / sum(raw) for r in raw]
    total = 0.0
    for layer, lw in LAYERS.items():
        fa = loss.vgg(out)[layer]

        def d(x):
            return (fa - loss.vgg(x)[layer]).abs().mean()

        total = total + lw * d(gt) / (sum(wi * d(c) for wi, c in zip(w, negs + [lq])) + 1e-7)
    return loss_weight * total, w


def test_batch_psnr_is_the_mean_per_image_psnr():
    out, gt, _, _ = _imgs()
    assert batch_psnr(out, gt).item() == pytest.approx(_psnr(out, gt), abs=1e-4)
    assert batch_psnr(gt, gt).item() == pytest.approx(100.0)


def test_fixed_thresholds_group_each_side_of_the_anchor_psnr():
    torch.manual_seed(0)
    out, gt, lq, gen = _imgs()
    anchor = batch_psnr(out, gt).item()
    # Thresholds below, just below, equal to (a tie is "hard", as the official strict '>'), just above, above.
    thresholds = [anchor - 5, anchor - 1e-3, anchor, anchor + 1e-3, anchor + 5]
    names = [f"m{i}" for i in range(5)]
    loss = CCRLoss({n: {"psnr": t} for n, t in zip(names, thresholds)}, vgg_weights="random", layer_weights=LAYERS)
    negs = {n: (gt + (0.02 + 0.04 * i) * torch.randn(gt.shape, generator=gen)).clamp(0, 1)
            for i, n in enumerate(names)}
    got = loss(out, gt, lq, negs=negs)
    ref, w = _reference(loss, out, gt, lq, list(negs.values()), thresholds)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-8)
    easy, hard, inp = 1.25 / 9.75, 0.75 / 9.75, 5 / 9.75  # 2·1.25 + 3·0.75 + K=5
    torch.testing.assert_close(loss.weights(out, gt, list(negs.values())),
                               torch.tensor([easy, easy, hard, hard, hard, inp]), rtol=1e-6, atol=1e-7)
    assert w == pytest.approx([easy, easy, hard, hard, hard, inp])


def test_measured_psnr_groups_negatives_by_their_own_distance_to_the_gt():
    torch.manual_seed(0)
    out, gt, lq, gen = _imgs()  # the output has noise σ 0.05
    negs = {"better": (gt + 0.01 * torch.randn(gt.shape, generator=gen)).clamp(0, 1),
            "worse": (gt + 0.2 * torch.randn(gt.shape, generator=gen)).clamp(0, 1),
            "worst": lq * 0.5}
    loss = CCRLoss({n: None for n in negs}, loss_weight=1.0, curriculum_lambda=0.4, input_weight=2.0,
                   vgg_weights="random", layer_weights=LAYERS)
    thresholds = [_psnr(n, gt) for n in negs.values()]
    assert thresholds[0] > _psnr(out, gt) > thresholds[1] > thresholds[2]
    ref, w = _reference(loss, out, gt, lq, list(negs.values()), thresholds, lam=0.4, loss_weight=1.0,
                        input_weight=2.0)
    torch.testing.assert_close(loss(out, gt, lq, negs=negs), ref, rtol=1e-5, atol=1e-8)
    assert w == pytest.approx([0.6 / 5.4, 1.4 / 5.4, 1.4 / 5.4, 2 / 5.4])  # hard, easy, easy, input


def test_gradients_reach_the_output_only():
    torch.manual_seed(0)
    out, gt, lq, _ = _imgs()
    loss = CCRLoss({"folder": {"psnr": 20.0}, "bicubic": {"type": "Bicubic", "upscale": 1}},
                   vgg_weights="random", layer_weights=LAYERS)
    neg = (gt * 0.9).requires_grad_(True)
    out, gt, lq = (t.clone().requires_grad_(True) for t in (out, gt, lq))
    value = loss(out, gt, lq, negs={"folder": neg})
    value.backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    assert gt.grad is None and lq.grad is None and neg.grad is None
    assert all(p.grad is None for p in loss.parameters())


def test_frozen_network_negative_is_built_from_options_and_stays_frozen(tmp_path):
    torch.manual_seed(0)
    weak = EDSR(num_feat=8, num_block=1, upscale=2)
    torch.save({"params": weak.state_dict()}, tmp_path / "weak.pth")
    spec = {"type": "EDSR", "num_feat": 8, "num_block": 1, "upscale": 2, "weights": str(tmp_path / "weak.pth")}
    loss = build_loss({"type": "CCRLoss", "vgg_weights": "random", "layer_weights": LAYERS,
                       "negatives": {"weak": spec, "bicubic": {"type": "Bicubic", "upscale": 2, "psnr": 25}}},
                      key="train.contrast_opt")
    net = loss.networks["weak"]
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), weak.state_dict().values()))
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not net.training and not loss.networks["bicubic"].training
    out, gt, _, _ = _imgs(size=16)
    lq = torch.rand(2, 3, 8, 8)
    negs = loss.negatives(out, lq, None)
    torch.testing.assert_close(negs[0], weak.eval()(lq))
    # SR: the input negative is the bicubic-upsampled LQ; the value matches the written-out formula.
    up = torch.nn.functional.interpolate(lq, size=(16, 16), mode="bicubic", align_corners=False)
    ref, _ = _reference(loss, out, gt, up, negs, [_psnr(negs[0], gt), 25.0])
    torch.testing.assert_close(loss(out, gt, lq), ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "negatives, extra, key",
    [
        ({}, {}, "negatives"),
        ({"n": {"type": "NoSuchNet"}}, {}, "negatives.n.type"),
        ({"n": {"type": "EDSR", "num_feat": 8, "num_block": 1}}, {}, "negatives.n.weights"),
        ({"n": {"type": "EDSR", "num_feat": 8, "num_block": 1, "weights": "/no/such.pth"}}, {}, "negatives.n.weights"),
        ({"n": {"weights": "/x.pth"}}, {}, "negatives.n"),
        ({"n": {"psnr": "high"}}, {}, "negatives.n.psnr"),
        ({"n": 17}, {}, "negatives.n"),
        ({"n": None}, {"curriculum_lambda": 1.0}, "curriculum_lambda"),
        ({"n": None}, {"reduction": "none"}, "reduction"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_key(negatives, extra, key):
    with pytest.raises(OptionError) as info:
        build_checked(LOSS_REGISTRY, {"type": "CCRLoss", "vgg_weights": "random", "layer_weights": LAYERS,
                                      "negatives": negatives, **extra}, key="train.contrast_opt")
    assert f"train.contrast_opt.{key}" in str(info.value) and "\n" not in str(info.value)


def test_a_folder_negative_missing_from_the_batch_names_the_dataset_key():
    loss = CCRLoss({"DCP": {"psnr": 17}}, vgg_weights="random", layer_weights=LAYERS)
    out, gt, lq, _ = _imgs()
    with pytest.raises(OptionError, match=r"negatives\.DCP.*dataroot_neg\.DCP"):
        loss(out, gt, lq)
    with pytest.raises(OptionError, match="AOD"):
        loss(out, gt, lq, negs={"DCP": gt, "AOD": gt})
