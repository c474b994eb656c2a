"""End-to-end runs of the denoising / JPEG / deblurring option files on real images (short, CPU)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from mcir.test import main as run_test_cli
from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / "options"
BUNDLED = REPO / "datasets"


@pytest.fixture
def small_set5(tmp_path) -> Path:
    """The three smallest bundled Set5 HR images, to keep validation short."""
    folder = tmp_path / "set5"
    folder.mkdir()
    for name in ("bird", "head", "woman"):
        shutil.copy(BUNDLED / "Set5" / "HR" / f"{name}.png", folder)
    return folder


def _args(opt: Path, sets: list) -> list:
    args = ["-opt", str(opt)]
    for s in sets:
        args += ["--set", s]
    return args


@pytest.mark.parametrize(
    "recipe",
    ["Denoise/demo_EDSR_tiny_DenoiseColor_s25_T91.yml", "JPEG/demo_EDSR_tiny_JPEGColor_q10_T91.yml",
     "Deblur/demo_EDSR_tiny_MotionBlur_T91.yml"],
)
def test_demo_recipes_train_and_validate(tmp_path, recipe, small_set5):
    sets = [
        "name=run",
        f"path.experiments_root={tmp_path / 'run'}",
        f"datasets.train.dataroot_gt={BUNDLED / 'T91/HR'}",
        f"datasets.val.dataroot_gt={small_set5}",
        "datasets.train.gt_size=24",
        "datasets.train.batch_size_per_gpu=2",
        "network_g.num_feat=4",
        "network_g.num_block=1",
        "train.total_iter=2",
        "train.warmup_iter=-1",
        "train.scheduler.periods=[2]",
        "val.val_freq=2",
        "logger.print_freq=1",
        "logger.save_checkpoint_freq=2",
        "logger.use_tb_logger=false",
        "num_gpu=0",
    ]
    assert train_main(_args(OPTIONS / "train" / recipe, sets)) == 0
    assert (tmp_path / "run" / "models" / "net_g_2.pth").is_file()
    log = "".join(p.read_text() for p in (tmp_path / "run" / "logs").glob("*.log"))
    assert "validation Set5_" in log and "psnr: " in log


def _identity_psnr(tmp_path: Path, opt: Path, sets: list, out: str) -> dict:
    sets = [f"path.results_root={tmp_path / out}", "num_gpu=0", *sets]
    assert run_test_cli(_args(opt, sets)) == 0
    return json.loads((tmp_path / out / "metrics.json").read_text())


def test_noisy_input_row_is_repeatable_and_near_the_sigma_formula(tmp_path, small_set5):
    # Set5 images with seeded sigma-25 noise, scored as it is: 20*log10(255/25) = 20.17 dB for unclipped noise;
    # clipping to [0, 1] before scoring removes some of it, so a little higher.
    opt = OPTIONS / "test" / "Denoise" / "test_demo_EDSR_tiny_DenoiseColor_s25.yml"
    sets = ["network_g={type: Identity}", "path.pretrain_network_g=~", "val.save_img=false",
            f"datasets.test_1.dataroot_gt={small_set5}"]
    first = _identity_psnr(tmp_path, opt, sets, "a")["Set5_s25"]
    second = _identity_psnr(tmp_path, opt, sets, "b")["Set5_s25"]
    assert first == second
    assert 20.2 < first["average"]["psnr"] < 21.5


def test_blurred_input_row_is_repeatable(tmp_path, small_set5):
    opt = OPTIONS / "test" / "Deblur" / "test_Identity_MotionBlur.yml"
    sets = [f"datasets.test_1.dataroot_gt={small_set5}"]
    first = _identity_psnr(tmp_path, opt, sets, "a")["Set5_motion"]
    assert first == _identity_psnr(tmp_path, opt, sets, "b")["Set5_motion"]
    assert 20 < first["average"]["psnr"] < 30 and len(first["images"]) == 3


def test_grey_denoising_input_rows_on_shared_set12(tmp_path, shared_data):
    opt = OPTIONS / "test" / "Denoise" / "test_Identity_DenoiseGray.yml"
    set12 = shared_data / "denoise" / "Set12" / "GT"
    sets = [f"datasets.test_{i}.dataroot_gt={set12}" for i in (1, 2, 3)]
    bsd = tmp_path / "bsd68"  # four BSD68 images keep the test short
    bsd.mkdir()
    for src in sorted((shared_data / "denoise" / "BSD68" / "GT").glob("*.png"))[:4]:
        shutil.copy(src, bsd)
    sets += [f"datasets.test_{i}.dataroot_gt={bsd}" for i in (4, 5, 6)]
    res = _identity_psnr(tmp_path, opt, sets, "gray")
    assert len(res["Set12_s25"]["images"]) == 12 and len(res["BSD68_s25"]["images"]) == 4
    psnrs = [res[f"Set12_s{s}"]["average"]["psnr"] for s in (15, 25, 50)]
    # noisy-input PSNR is about 20*log10(255/sigma) (24.61, 20.17, 14.15), a bit more after clipping
    for value, sigma in zip(psnrs, (15, 25, 50)):
        assert 0 < value - 20 * math.log10(255 / sigma) < 0.8
    assert round(psnrs[1], 2) == 20.34  # pinned: the seeded noise must not change between versions
