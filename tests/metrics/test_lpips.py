"""LPIPS: input conventions, crop, local backbone weights, the offline error, one network per metric set.

The ImageNet backbones cannot be downloaded here, so these tests ask for a random backbone explicitly
(``backbone_weights: random``, which warns) or write a small torchvision-format file themselves: they check
the plumbing and conventions, not published LPIPS values.
"""

from __future__ import annotations

from pathlib import Path

import lpips
import numpy as np
import pytest
import torch
import torchvision

from mcir.errors import CheckpointError, OptionError
from mcir.metrics import calculate_lpips, lpips_metric
from mcir.metrics.lpips_metric import build_lpips, lpips_input
from mcir.metrics.metric_set import MetricSet
from mcir.utils.img_util import imread

SET5 = Path(__file__).resolve().parents[2] / "datasets" / "Set5" / "HR"
RANDOM = {"type": "calculate_lpips", "backbone_weights": "random"}
pytestmark = pytest.mark.filterwarnings("ignore:LPIPS. backbone_weights='random'")


def _noisy(img: np.ndarray, amp: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-amp, amp + 1, img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def test_input_is_rgb_in_minus_one_one_like_the_lpips_package():
    bgr = imread(SET5 / "bird.png")
    ours = lpips_input(bgr)
    assert torch.allclose(ours, lpips.im2tensor(bgr[..., ::-1].copy()).float(), atol=1e-6)
    ends = lpips_input(np.array([[[0, 128, 255]]], np.uint8))
    assert ends.flatten().tolist() == pytest.approx([1.0, 128 / 127.5 - 1, -1.0], abs=1e-6)
    assert lpips_input(bgr, crop_border=4).shape == (1, 3, bgr.shape[0] - 8, bgr.shape[1] - 8)


def test_distance_grows_with_noise_and_crop_border_is_honoured():
    gt = imread(SET5 / "baby.png")[:128, :128]
    scores = MetricSet({"lpips": RANDOM, "lpips_c8": {**RANDOM, "crop_border": 8}})
    low, high = (scores.compute([_noisy(gt, a)], [gt])["lpips"][0] for a in (4, 40))
    assert 0 < low < high
    framed = gt.copy()
    framed[:8] = 0  # differs only inside the cropped border
    res = scores.compute([framed, gt], [gt, gt])
    assert res["lpips_c8"] == [0.0, 0.0] and res["lpips"][0] > 0
    assert scores.better("lpips") == "lower"


def test_network_is_built_once_per_metric_set(monkeypatch):
    calls = []
    real = lpips_metric.build_lpips
    monkeypatch.setattr(lpips_metric, "build_lpips", lambda *a: calls.append(a) or real(*a))
    gt = imread(SET5 / "bird.png")[:64, :64]
    scores = MetricSet({"lpips": RANDOM, "psnr": {"type": "calculate_psnr", "crop_border": 0}})
    for amp in (5, 10, 20):
        scores.compute([_noisy(gt, amp)] * 2, [gt] * 2)
    assert calls == [("alex", "random", "0.1")]
    # The registered function, called on its own, builds its own network: the same number for the same backbone.
    torch.manual_seed(0)
    one = calculate_lpips(_noisy(gt, 9), gt, **{k: v for k, v in RANDOM.items() if k not in ("type", "better")})
    torch.manual_seed(0)
    assert MetricSet({"lpips": RANDOM}).compute([_noisy(gt, 9)], [gt])["lpips"][0] == one


def test_local_backbone_file_is_loaded(tmp_path):
    torch.manual_seed(1)
    features = torchvision.models.alexnet().features
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    model = build_lpips("alex", str(path))
    assert torch.equal(model.net.state_dict()["slice3.6.weight"], features[6].weight)
    assert not any(p.requires_grad for p in model.parameters())
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="features.0.weight"):
        build_lpips("alex", str(tmp_path / "bad.pth"))


def test_offline_without_weights_is_a_one_line_option_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(OptionError) as err:
        MetricSet({"lpips": {"type": "calculate_lpips"}})
    msg = str(err.value)
    assert msg.startswith("val.metrics.lpips.backbone_weights: ") and "alexnet-owt-7be5be79.pth" in msg
    assert "\n" not in msg
    with pytest.raises(OptionError, match="vgg16-397923af.pth"):
        MetricSet({"lpips": {"type": "calculate_lpips", "net": "vgg"}})
    with pytest.raises(OptionError, match="val.metrics.lp.backbone_weights: file not found"):
        MetricSet({"lp": {"type": "calculate_lpips", "backbone_weights": "/no/such.pth"}})
