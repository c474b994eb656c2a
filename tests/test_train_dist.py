"""Distributed training through train.py with 2 gloo processes: equal to one process at the same total batch,
exact resume, identical negatives and EMA on every rank."""

from __future__ import annotations

import json
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
SPN = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91_SPN.yml"

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


@pytest.fixture
def patches(tmp_path) -> Path:
    """Eight 32x32 GT images: with gt_size 32 and no flips the training data has no randomness left."""
    folder = tmp_path / "patches"
    folder.mkdir()
    for i, src in enumerate(sorted((REPO / "datasets" / "T91" / "HR").glob("*.png"))[:8]):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.imread(str(src))[:32, :32])
    return folder


def _args(short_run_args, opt: Path, root: Path, name: str, *extra: str) -> List[str]:
    return short_run_args(opt, root, name, "train.total_iter=4", "train.scheduler.periods=[4]",
                          "logger.save_checkpoint_freq=3", "datasets.train.dataset_enlarge_ratio=1", *extra)


def _plain_rank(rank: int, root: str, args: dict, ports: List[int]) -> None:
    """Rank ``rank`` of three 2-process runs: no augmentation (for the 1-process comparison), then with
    augmentation uninterrupted and stopped at iteration 3 (mid-epoch) and resumed."""
    root = Path(root)
    opt = load_options(str(DEMO), args["same"], is_train=True)
    history = train(opt, launcher="pytorch")
    (root / f"history{rank}.json").write_text(json.dumps(history))
    # A new rendezvous port per run: rank 0's store of the last run may outlive another rank's exit.
    runs = [args["full"], args["split"] + ["--set", "train.total_iter=3"], args["split"] + ["--auto_resume"]]
    for port, run in zip(ports, runs):
        os.environ["MASTER_PORT"] = str(port)
        assert train_main(run + ["--launcher", "pytorch"]) == 0


def _weights(root: Path, it: int) -> dict:
    return torch.load(root / "models" / f"net_g_{it}.pth", weights_only=True)


def test_two_processes_train_like_one_with_the_same_total_batch(spawn_ranks, free_port, short_run_args, patches,
                                                               tmp_path):
    same = ["datasets.train.use_hflip=false", "datasets.train.use_rot=false", f"datasets.train.dataroot_gt={patches}",
            "val.val_freq=4", "val.save_img=true", "val.num_save_img=3"]
    one = _args(short_run_args, DEMO, tmp_path, "one", *same, "datasets.train.batch_size_per_gpu=4")
    one_history = train(load_options(str(DEMO), one[3::2], is_train=True))
    two = _args(short_run_args, DEMO, tmp_path, "two", *same, "datasets.train.batch_size_per_gpu=2")
    aug = ["datasets.train.batch_size_per_gpu=2", "datasets.train.gt_size=24"]
    args = {"same": two[3::2],  # the --set values
            "full": _args(short_run_args, DEMO, tmp_path, "full", *aug),
            "split": _args(short_run_args, DEMO, tmp_path, "split", *aug)}
    spawn_ranks(_plain_rank, 2, str(tmp_path), args, [free_port() for _ in range(3)])

    w1, w2 = _weights(tmp_path / "one", 4), _weights(tmp_path / "two", 4)
    for key in ("params", "params_ema"):
        for name, tensor in w1[key].items():
            torch.testing.assert_close(w2[key][name], tensor, rtol=1e-4, atol=1e-6, msg=f"{key}.{name}")
    assert not torch.equal(_weights(tmp_path / "one", 3)["params"]["conv_first.weight"],
                           w1["params"]["conv_first.weight"])
    # validation: the same averages on both ranks, as one process measures them
    hist = [json.loads((tmp_path / f"history{r}.json").read_text()) for r in (0, 1)]
    assert hist[0] == hist[1] and hist[0]["Set5"].keys() == {"psnr", "ssim"}
    for name, value in one_history["Set5"].items():
        assert hist[0]["Set5"][name] == pytest.approx(value, abs=1e-4)
    # only rank 0 wrote: one log and one options file, the 3 first Set5 images (bird was restored by rank 1)
    logs = sorted(p.name.split("_")[0] for p in (tmp_path / "two" / "logs").iterdir())
    assert logs == ["options", "train"]
    assert "batch 2 per process x 2 = 4" in next((tmp_path / "two" / "logs").glob("train_*.log")).read_text()
    images = sorted(p.name for p in (tmp_path / "two" / "visualization" / "Set5" / "4").iterdir())
    assert images == ["baby_4.png", "bird_4.png", "butterfly_4.png"]
    # stopped mid-epoch and resumed with each rank's own RNG state: bit-identical to the uninterrupted run
    full, split = _weights(tmp_path / "full", 4), _weights(tmp_path / "split", 4)
    for key in ("params", "params_ema"):
        for name, tensor in full[key].items():
            assert torch.equal(tensor, split[key][name]), f"{key}.{name} differs after resume"
    state = torch.load(tmp_path / "split" / "training_states" / "3.state", weights_only=True)
    assert (state["epoch"], state["batch_in_epoch"], state["samples_per_step"]) == (0, 3, 4)
    assert len(state["rng_per_rank"]) == 2
    assert not torch.equal(state["rng_per_rank"][0]["torch"], state["rng_per_rank"][1]["torch"])


def _spn_rank(rank: int, root: str, args: List[str]) -> None:
    """One rank of a 2-process MCIRModel run; saves what this rank holds at the end."""
    from mcir.engine import trainer as trainer_module

    plain_run = trainer_module.Trainer.run

    def run_and_record(self):
        history = plain_run(self)
        step = self.step
        m = step.model
        torch.save({"net_g": m.net_g.state_dict(), "ema": step.ema.state_dict(), "negatives": m.negatives.state_dict(),
                    "vgg": m.spn.state_dict()}, Path(root) / f"rank{rank}.pt")
        return history

    trainer_module.Trainer.run = run_and_record
    assert train_main(args + ["--launcher", "pytorch"]) == 0


def test_negatives_and_ema_stay_identical_on_every_rank(spawn_ranks, short_run_args, tmp_path):
    # start_iter 1: the negatives are re-seeded (fresh random weights blended in) at iteration 2, on every rank
    args = short_run_args(SPN, tmp_path, "spn", "path.pretrain_network_g=null", "datasets.train.batch_size_per_gpu=2",
                          "train.neg_opt.vgg_weights=random", "train.negatives.steps=[1, 2]", "val.val_freq=0",
                          "train.negatives.start_iter=1",
                          "train.total_iter=4", "train.scheduler.periods=[4]", "train.neg_ratio=0.05",
                          "find_unused_parameters=true")
    spawn_ranks(_spn_rank, 2, str(tmp_path), args)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for part in ("net_g", "ema", "negatives", "vgg"):
        assert r0[part].keys() == r1[part].keys()
        for name, tensor in r0[part].items():
            assert torch.equal(tensor, r1[part][name]), f"{part}.{name} differs between ranks"
    # the negatives really followed the target after start_iter (3 and 2 updates), from a random blend start
    assert r0["negatives"]["negatives.0.num_updates"] == 3 and r0["negatives"]["negatives.1.num_updates"] == 2
    neg = r0["negatives"]["negatives.0.module.conv_first.weight"]
    assert not torch.equal(neg, r0["net_g"]["conv_first.weight"])
