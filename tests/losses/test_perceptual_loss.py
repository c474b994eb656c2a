"""Tests of PerceptualLoss (feature + Gram-matrix terms) with a seeded random VGG."""

from __future__ import annotations

import pytest
import torch

from mcir.errors import OptionError
from mcir.losses import build_loss
from mcir.losses.perceptual_loss import PerceptualLoss, gram_matrix
from mcir.losses.vgg_features import VGGFeatureExtractor

pytestmark = pytest.mark.filterwarnings("ignore:.*features are random:UserWarning")

LAYERS = {"conv1_2": 0.5, "relu2_1": 1.0}


def make_loss(seed: int = 0, **kwargs) -> PerceptualLoss:
    torch.manual_seed(seed)
    kwargs.setdefault("layer_weights", LAYERS)
    return PerceptualLoss(vgg_type="vgg16", vgg_weights="random", **kwargs)


@pytest.fixture()
def pair():
    gen = torch.Generator().manual_seed(7)
    return torch.rand(2, 3, 24, 24, generator=gen), torch.rand(2, 3, 24, 24, generator=gen)


def test_gram_matrix_values() -> None:
    feat = torch.zeros(1, 2, 2, 2)
    feat[0, 0] = 1.0
    feat[0, 1, 0, 0] = 2.0
    # F = [[1,1,1,1],[2,0,0,0]]: F F^T = [[4, 2], [2, 4]], divided by C*H*W = 8
    torch.testing.assert_close(gram_matrix(feat), torch.tensor([[[0.5, 0.25], [0.25, 0.5]]]))


def test_uses_the_spn_vgg_extractor_and_matches_written_out_terms(pair) -> None:
    x, gt = pair
    loss = make_loss(perceptual_weight=2.0, style_weight=3.0)
    assert isinstance(loss.vgg, VGGFeatureExtractor) and loss.vgg.vgg_type == "vgg16"
    percep, style = loss.components(x, gt)
    fx, fg = loss.vgg(x), loss.vgg(gt)
    exp_p = 2.0 * sum(w * (fx[k] - fg[k]).abs().mean() for k, w in LAYERS.items())
    exp_s = 3.0 * sum(w * (gram_matrix(fx[k]) - gram_matrix(fg[k])).abs().mean() for k, w in LAYERS.items())
    torch.testing.assert_close(percep, exp_p)
    torch.testing.assert_close(style, exp_s)
    torch.testing.assert_close(loss(x, gt), exp_p + exp_s)
    assert percep.item() > 0 and style.item() > 0


@pytest.mark.parametrize("criterion", ["l2", "fro"])
def test_other_criteria(pair, criterion: str) -> None:
    x, gt = pair
    loss = make_loss(criterion=criterion, layer_weights={"relu1_2": 1.0})
    fx, fg = loss.vgg(x)["relu1_2"], loss.vgg(gt)["relu1_2"]
    expected = ((fx - fg) ** 2).mean() if criterion == "l2" else torch.norm(fx - fg, p="fro")
    torch.testing.assert_close(loss(x, gt), expected)


def test_sum_reduction(pair) -> None:
    x, gt = pair
    loss = make_loss(reduction="sum", layer_weights={"relu1_2": 1.0})
    fx, fg = loss.vgg(x)["relu1_2"], loss.vgg(gt)["relu1_2"]
    torch.testing.assert_close(loss(x, gt), (fx - fg).abs().sum())


def test_disabled_terms_and_identical_images(pair) -> None:
    x, gt = pair
    loss = make_loss(style_weight=0.0)
    percep, style = loss.components(x, gt)
    assert style is None and percep is not None
    only_style = make_loss(perceptual_weight=0.0, style_weight=1.0)
    assert only_style.components(x, gt)[0] is None
    assert loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-7)


def test_gradients_reach_prediction_only(pair) -> None:
    x, gt = pair
    x = x.clone().requires_grad_()
    gt = gt.clone().requires_grad_()
    loss = make_loss(style_weight=1.0)
    loss(x, gt).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert gt.grad is None
    assert all(p.grad is None and not p.requires_grad for p in loss.vgg.parameters())


def test_build_from_options_and_errors_name_the_key() -> None:
    torch.manual_seed(0)
    loss = build_loss(
        {"type": "PerceptualLoss", "layer_weights": {"relu1_1": 1.0}, "vgg_type": "vgg16", "vgg_weights": "random",
         "style_weight": 0.5, "criterion": "l2"},
        key="train.pixel_opt",
    )
    assert isinstance(loss, PerceptualLoss) and loss.style_weight == 0.5
    for extra, key in [
        ({"layer_weights": {"relu9_9": 1.0}}, "train.pixel_opt.layer_weights"),
        ({"layer_weights": {"relu1_1": 0.0}}, "train.pixel_opt.layer_weights"),
        ({"criterion": "l3"}, "train.pixel_opt.criterion"),
        ({"perceptual_weight": 0.0}, "train.pixel_opt.perceptual_weight"),
        ({"style_weight": -1.0}, "train.pixel_opt.style_weight"),
    ]:
        cfg = {"type": "PerceptualLoss", "layer_weights": {"relu1_1": 1.0}, "vgg_type": "vgg16",
               "vgg_weights": "random", **extra}
        with pytest.raises(OptionError) as info:
            build_loss(cfg, key="train.pixel_opt")
        assert info.value.key == key, extra
