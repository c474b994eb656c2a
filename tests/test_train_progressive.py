"""Progressive training through train.py: phase switches in the log, exact resume inside phase 2, clean
option errors, and two gloo processes switching together like one process at the same total batch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import cv2
import pytest
import torch

from mcir.options import load_options
from mcir.train import main as train_main
from mcir.train import train

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
# x4: GT patches 16 / 24 / 32 (LQ 4 / 6 / 8); iterations 1-2, 3-4, 5-6.
PROGRESSIVE = "datasets.train.progressive={iters: [2, 2, 2], gt_sizes: [16, 24, 32], batch_sizes: [4, 2, 3]}"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


@pytest.fixture
def tiny_val(tmp_path) -> List[str]:
    """Overrides validating on one 32x32 image (the last iteration always validates)."""
    hr, lr = tmp_path / "val_hr", tmp_path / "val_lr"
    hr.mkdir()
    lr.mkdir()
    img = cv2.imread(str(REPO / "datasets" / "Set5" / "HR" / "baby.png"))[:32, :32]
    cv2.imwrite(str(hr / "0.png"), img)
    cv2.imwrite(str(lr / "0x4.png"), cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA))
    return [f"datasets.val.dataroot_gt={hr}", f"datasets.val.dataroot_lq={lr}"]


def _args(short_run_args, root: Path, name: str, *extra: str) -> List[str]:
    return short_run_args(DEMO, root, name, PROGRESSIVE, "val.val_freq=0", "logger.print_freq=1", *extra)


def _weights(root: Path, it: int) -> dict:
    return torch.load(root / "models" / f"net_g_{it}.pth", weights_only=True)


def _log(root: Path) -> str:
    return "".join(p.read_text() for p in sorted((root / "logs").glob("train_*.log")))


def test_resume_inside_phase_two_is_bit_identical(short_run_args, tmp_path, tiny_val):
    assert train_main(_args(short_run_args, tmp_path, "full", *tiny_val)) == 0
    # the state the uninterrupted run saved after iteration 3 (the first of phase 2), resumed in a new run
    state = tmp_path / "full" / "training_states" / "3.state"
    assert train_main(_args(short_run_args, tmp_path, "split", *tiny_val, f"path.resume_state={state}")) == 0
    full, split = _weights(tmp_path / "full", 6), _weights(tmp_path / "split", 6)
    for key in ("params", "params_ema"):
        for name, tensor in full[key].items():
            assert torch.equal(tensor, split[key][name]), f"{key}.{name} differs after resume"
    log = _log(tmp_path / "full")
    for n, (first, size, batch) in enumerate([(1, 16, 4), (3, 24, 2), (5, 32, 3)], start=1):
        assert f"phase {n}/3 from iteration {first}: gt_size {size}, batch {batch} per process" in log
    # the resumed run continued with phase 2's sizes
    assert "resumed from" in _log(tmp_path / "split") and "phase 2/3 from iteration 3" in _log(tmp_path / "split")


def test_bad_section_fails_with_one_line_and_leaves_nothing(short_run_args, tmp_path, capsys):
    args = _args(short_run_args, tmp_path, "bad", "datasets.train.progressive.gt_sizes=[16, 22, 32]")
    assert train_main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "datasets.train.progressive.gt_sizes" in err[0] and "22" in err[0]
    assert not (tmp_path / "bad").exists()


def _rank(rank: int, sets: List[str], port: int) -> None:
    os.environ["MASTER_PORT"] = str(port)
    train(load_options(str(DEMO), sets, is_train=True), launcher="pytorch")


def test_two_processes_switch_together_like_one_process(spawn_ranks, free_port, short_run_args, tmp_path, tiny_val):
    # 32x32 images and gt_sizes all 32, no flips: no randomness left, so 2 ranks x batch b = 1 process x 2b.
    folder = tmp_path / "patches"
    folder.mkdir()
    for i, src in enumerate(sorted((REPO / "datasets" / "T91" / "HR").glob("*.png"))[:8]):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.imread(str(src))[:32, :32])
    same = ["datasets.train.use_hflip=false", "datasets.train.use_rot=false", f"datasets.train.dataroot_gt={folder}",
            "datasets.train.dataset_enlarge_ratio=1", "train.total_iter=4", "train.scheduler.periods=[4]",
            "logger.save_checkpoint_freq=4", *tiny_val]
    one = _args(short_run_args, tmp_path, "one", *same, "datasets.train.batch_size_per_gpu=2",
                "datasets.train.progressive={iters: [2, 2], gt_sizes: [32, 32], batch_sizes: [4, 2]}")
    train(load_options(str(DEMO), one[3::2], is_train=True))
    two = _args(short_run_args, tmp_path, "two", *same, "datasets.train.batch_size_per_gpu=1",
                "datasets.train.progressive={iters: [2, 2], gt_sizes: [32, 32], batch_sizes: [2, 1]}")
    spawn_ranks(_rank, 2, two[3::2], free_port())
    w1, w2 = _weights(tmp_path / "one", 4), _weights(tmp_path / "two", 4)
    for name, tensor in w1["params"].items():
        torch.testing.assert_close(w2["params"][name], tensor, rtol=1e-4, atol=1e-6, msg=name)
    assert "phase 2/2 from iteration 3: gt_size 32, batch 1 per process" in _log(tmp_path / "two")
