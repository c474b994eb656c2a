"""Tests of the evaluator: overlapped decoding/scoring gives the plain loop's values; errors and hooks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcir.archs.simple_arch import Bicubic
from mcir.data import build_loader
from mcir.engine.evaluator import Evaluator
from mcir.core.inference import restore
from mcir.errors import DataError
from mcir.metrics.psnr_ssim import calculate_psnr, calculate_ssim
from mcir.utils.img_util import imread, tensor2img

REPO = Path(__file__).resolve().parents[2]
METRICS = {
    "psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": True},
    "ssim": {"type": "calculate_ssim", "crop_border": 4, "test_y_channel": True},
}


def _loader():
    cfg = {"type": "PairedImageDataset", "dataroot_gt": str(REPO / "datasets/Set5/HR"),
           "dataroot_lq": str(REPO / "datasets/Set5/LR_bicubic/X4"), "filename_tmpl": "{}x4"}
    return build_loader(cfg, "datasets.test_1", "test", 4)[1]


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    return restore(Bicubic(upscale=4), x)


def test_overlapped_and_plain_loops_agree_with_a_by_hand_loop(tmp_path):
    seen = []
    overlapped = Evaluator(METRICS, overlap=True).evaluate(
        _bicubic, _loader(), save_dir=str(tmp_path / "a"), on_output=lambda i, s, o: seen.append((i, s, o.shape))
    )
    plain = Evaluator(METRICS, overlap=False).evaluate(_bicubic, _loader(), save_dir=str(tmp_path / "b"))
    assert overlapped == plain
    assert [s[:2] for s in seen] == list(enumerate(["baby", "bird", "butterfly", "head", "woman"]))
    for stem, vals in plain["images"].items():
        lq = imread(REPO / "datasets/Set5/LR_bicubic/X4" / f"{stem}x4.png")
        x = torch.from_numpy(lq[:, :, ::-1].astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
        out = tensor2img(_bicubic(x)[0])
        gt = imread(REPO / "datasets/Set5/HR" / f"{stem}.png")[: out.shape[0], : out.shape[1]]
        assert vals["psnr"] == calculate_psnr(out, gt, crop_border=4, test_y_channel=True)
        assert vals["ssim"] == calculate_ssim(out, gt, crop_border=4, test_y_channel=True)
        np.testing.assert_array_equal(imread(tmp_path / "a" / f"{stem}.png"), out)
        np.testing.assert_array_equal(imread(tmp_path / "b" / f"{stem}.png"), out)
    assert plain["average"]["psnr"] == pytest.approx(np.mean([v["psnr"] for v in plain["images"].values()]))


def test_several_scoring_workers_keep_values_and_order():
    plain = Evaluator(METRICS, overlap=False).evaluate(_bicubic, _loader())
    many = Evaluator(METRICS, overlap=True, score_workers=3).evaluate(_bicubic, _loader())
    assert many == plain
    assert list(many["images"]) == ["baby", "bird", "butterfly", "head", "woman"]


def _scoring_threads() -> int:
    import threading

    return sum(t.name.startswith("mcir-score") for t in threading.enumerate())


def test_scoring_moves_to_the_pool_only_when_it_is_slower_than_a_cpu_forward():
    import time

    seen = {"fast": [], "slow": []}

    def fast(x: torch.Tensor) -> torch.Tensor:
        seen["fast"].append(_scoring_threads())
        return _bicubic(x)

    def slow(x: torch.Tensor) -> torch.Tensor:
        # A CPU network much slower than scoring: the pool would only compete with it for the cores.
        seen["slow"].append(_scoring_threads())
        time.sleep(0.5)
        return _bicubic(x)

    fast_res = Evaluator(METRICS, score_workers=2).evaluate(fast, _loader())
    slow_res = Evaluator(METRICS, score_workers=2).evaluate(slow, _loader())
    assert fast_res == slow_res
    assert max(seen["fast"][2:]) >= 1  # scoring (tens of ms) is slower than a bicubic forward (a few ms)
    assert seen["slow"] == [0] * 5


@pytest.mark.parametrize("bad", [0, -2, True])
def test_bad_score_workers_is_refused(bad):
    with pytest.raises(ValueError, match="score_workers"):
        Evaluator(METRICS, score_workers=bad)


class _BreaksAfterTwo:
    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == 2:
                raise DataError("third pair is unreadable")
            yield batch


@pytest.mark.parametrize("overlap", [True, False])
def test_loader_errors_reach_the_caller(overlap):
    with pytest.raises(DataError, match="third pair"):
        Evaluator(METRICS, overlap=overlap).evaluate(_bicubic, _BreaksAfterTwo(_loader()))


def test_network_errors_stop_the_prefetch_thread():
    import threading

    def boom(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("forward failed")

    with pytest.raises(RuntimeError, match="forward failed"):
        Evaluator(METRICS).evaluate(boom, _loader())
    assert not [t for t in threading.enumerate() if t.name.startswith(("mcir-prefetch", "mcir-score"))]
