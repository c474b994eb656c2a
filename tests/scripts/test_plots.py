"""Figure scripts on real short training runs (tiny EDSR, plain and MCIRModel with a random VGG) and Set5 images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mcir.archs.simple_arch import Bicubic
from mcir.core.inference import restore
from mcir.cli.run_history import read_run
from mcir.errors import DataError
from mcir.train import main as train_main
from mcir.utils.img_util import img2tensor, imread, imwrite, tensor2img

REPO = Path(__file__).resolve().parents[2]
PLAIN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
SPN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, short_run_args):
    """A plain run (text log only, 6 iterations) and an MCIRModel run (text log + TensorBoard, 4 iterations)."""
    root = tmp_path_factory.mktemp("runs")
    common = ["path.pretrain_network_g=null", "datasets.train.batch_size_per_gpu=2", "val.val_freq=3",
              "val.num_tb_img=0"]
    assert train_main(short_run_args(PLAIN, root, "plain", *common)) == 0
    assert train_main(short_run_args(SPN, root, "spn", *common, "train.neg_opt.vgg_weights=random",
                                     "train.negatives.steps=[1, 2]", "logger.use_tb_logger=true",
                                     "train.total_iter=4", "train.scheduler.periods=[4]", "val.val_freq=2",
                                     "logger.print_freq=1")) == 0
    return root / "plain", root / "spn"


def _is_png(path: Path) -> bool:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return path.stat().st_size > 1000 and img is not None and min(img.shape[:2]) > 100


def test_history_reads_the_text_log_and_the_events_alike(runs):
    plain, spn = runs
    h = read_run(plain)
    assert [it for it, _ in h.series("l_pix")] == [2, 4, 6]
    assert [it for it, _ in h.val["Set5"]["psnr"]] == [3, 6]
    s = read_run(spn)
    assert {"l_rec", "l_neg", "neg_ratio", "lambda", "lr"} <= set(s.train)
    assert [it for it, _ in s.series("neg_ratio")] == [1, 2, 3, 4]
    for it, ratio in s.series("neg_ratio"):  # print_freq 1: each logged value is one step's, to 5 digits
        lam, neg, rec = (dict(s.series(k))[it] for k in ("lambda", "l_neg", "l_rec"))
        assert ratio == pytest.approx(lam * neg / rec, rel=2e-4)
    (log,) = (spn / "logs").glob("*.log")
    log.rename(log.with_suffix(".old"))  # no text log left: the TensorBoard events are read instead
    try:
        tb = read_run(spn)
    finally:
        log.with_suffix(".old").rename(log)
    for key in ("l_rec", "neg_ratio"):
        assert [i for i, _ in tb.series(key)] == [i for i, _ in s.series(key)]
        assert np.allclose([v for _, v in tb.series(key)], [v for _, v in s.series(key)], rtol=1e-4)
    assert np.allclose([v for _, v in tb.val["Set5"]["psnr"]], [v for _, v in s.val["Set5"]["psnr"]], atol=1e-4)


def test_history_survives_garbage_and_resumes(tmp_path):
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    (logs / "train_x_20260101_000000.log").write_text(
        "2026-01-01 00:00:00 INFO: [epoch 0 iter 2] lr: 1.000e-03, l_pix: 5.0000e-02, time/iter: 0.1s, eta: 0:00:01\n"
        "random text \xff\n"
        "2026-01-01 00:00:01 INFO: [epoch 0 iter 4] lr: 1.000e-03, l_pix: 4.0000e-02, time/it"  # crash mid-line
    )
    (logs / "train_x_20260101_000100.log").write_text(
        "2026-01-01 00:01:00 INFO: [epoch 0 iter 4] lr: 1.000e-03, l_pix: 3.0000e-02, time/iter: 0.1s, eta: 0:00:01\n"
        "2026-01-01 00:01:00 INFO: validation my set @ iter 4: psnr: 20.5000, ssim: 0.5000\n"
    )
    h = read_run(tmp_path / "run")
    assert h.series("l_pix") == [(2, 0.05), (4, 0.03)]
    assert h.series("time/iter") == [(2, 0.1), (4, 0.1)]
    assert h.val == {"my set": {"psnr": [(4, 20.5)], "ssim": [(4, 0.5)]}}
    with pytest.raises(DataError):
        read_run(tmp_path / "nothing")


def test_plot_curves_of_two_runs(runs, tmp_path, capsys, load_script):
    out = tmp_path / "curves.png"
    plot_curves = load_script("plot_curves")
    assert plot_curves.main([str(r) for r in runs] + ["--out", str(out), "--labels", "EDSR,EDSR+SPN"]) == 0
    assert _is_png(out)
    assert plot_curves.main([str(runs[0]), "--out", str(tmp_path / "x.png"), "--metric", "lpips",
                             "--losses", "nope"]) == 1
    assert "nothing to plot" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


def test_plot_neg_ratio(runs, tmp_path, capsys, load_script):
    out = tmp_path / "ratio.png"
    assert load_script("plot_neg_ratio").main([str(runs[1]), "--out", str(out)]) == 0
    assert _is_png(out)
    assert load_script("plot_neg_ratio").main([str(runs[0]), "--out", str(tmp_path / "y.png")]) == 1
    assert "MCIRModel" in capsys.readouterr().err


def test_visual_compare_on_set5(tmp_path, load_script):
    lq_path = REPO / "datasets/Set5/LR_bicubic/X4/birdx4.png"
    gt_path = REPO / "datasets/Set5/HR/bird.png"
    lq = imread(lq_path)
    base = tensor2img(restore(Bicubic(upscale=4), img2tensor(lq)[None])[0])
    lanczos = cv2.resize(lq, (lq.shape[1] * 4, lq.shape[0] * 4), interpolation=cv2.INTER_LANCZOS4)
    imwrite(base, tmp_path / "base.png")
    imwrite(lanczos, tmp_path / "spn.png")
    vc = load_script("visual_compare")
    out = tmp_path / "fig.png"
    args = ["--lq", str(lq_path), "--baseline", str(tmp_path / "base.png"), "--spn", str(tmp_path / "spn.png"),
            "--gt", str(gt_path), "--out", str(out)]
    assert vc.main(args) == 0 and _is_png(out)
    div = vc.divergence(base, lanczos)
    x, y, w, h = vc.busiest_box(div, 40)
    assert div[y : y + h, x : x + w].mean() >= div.mean()
    assert vc.main(args[:-1] + [str(tmp_path / "boxed.png"), "--box", "10", "20", "64", "48"]) == 0
    assert _is_png(tmp_path / "boxed.png")
    assert vc.main(args[:-1] + [str(tmp_path / "bad.png"), "--box", "0", "0", "9999", "10"]) == 1
    assert not (tmp_path / "bad.png").exists()
