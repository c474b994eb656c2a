"""Tests of mcir.engine.distributed and mcir.core.dist: launcher variables, option checks, single-process identities, sharded validation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from mcir.data import build_loader
from mcir.data.dataloader import EnlargedSampler
from mcir.core import dist as cdist
from mcir.engine import distributed as mdist
from mcir.engine.evaluator import Evaluator
from mcir.core.rng import get_rng_state
from mcir.engine.trainer import Schedule, Trainer
from mcir.errors import CheckpointError, OptionError
from mcir.test import build_parser as eval_parser
from mcir.train import build_parser as train_parser

REPO = Path(__file__).resolve().parents[2]
SET5 = REPO / "datasets" / "Set5"


def test_torchrun_variables_use_the_agents_store():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node1", "MASTER_PORT": "1234"}
    assert mdist.rank_variables("pytorch", env) == {"rank": 3, "world_size": 8, "local_rank": 1,
                                                   "init_method": "env://"}


def test_slurm_variables_and_port_precedence():
    env = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "MASTER_ADDR": "gpu-07"}
    got = mdist.rank_variables("slurm", env, port=4321)
    assert got == {"rank": 5, "world_size": 8, "local_rank": 1, "init_method": "tcp://gpu-07:4321"}
    assert mdist.rank_variables("slurm", env)["init_method"] == "tcp://gpu-07:29500"
    assert mdist.rank_variables("slurm", {**env, "MASTER_PORT": "1111"}, 4321)["init_method"] == "tcp://gpu-07:1111"


@pytest.mark.parametrize(
    "launcher, env, message",
    [
        ("pytorch", {"WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "needs the environment variable RANK; start it with "),
        ("pytorch", {"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}, "RANK=2 is not below WORLD_SIZE=2"),
        ("slurm", {"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0"}, "needs MASTER_ADDR"),
        ("mpi", {}, "unknown launcher 'mpi'"),
    ],
)
def test_bad_launch_environments_are_option_errors(launcher, env, message):
    with pytest.raises(OptionError) as err:
        mdist.rank_variables(launcher, env)
    assert message in str(err.value) and err.value.key == "--launcher"


def test_dist_params_are_checked_by_the_option_schema(repo_root):
    from mcir.options import load_options

    demo = str(repo_root / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml")
    assert load_options(demo)["dist_params"] == {"backend": None, "port": None}
    assert load_options(demo, ["dist_params={backend: gloo, port: 29501}"])["dist_params"] == {
        "backend": "gloo", "port": 29501}
    for bad, key in [("{backend: mpi}", "dist_params.backend"), ("{port: x}", "dist_params.port"),
                     ("{port: 70000}", "dist_params.port"), ("{prot: 1}", "dist_params.prot"),
                     ("nccl", "dist_params")]:
        with pytest.raises(OptionError) as err:
            load_options(demo, [f"dist_params={bad}"])
        assert err.value.key == key and err.value.file == demo


def test_launcher_none_refuses_a_multi_process_start():
    assert mdist.init_dist("none", 0, environ={}) == mdist.DistContext()
    with pytest.raises(OptionError, match="add '--launcher pytorch'"):
        mdist.init_dist("none", 0, environ={"WORLD_SIZE": "2"})


def test_train_and_test_accept_launchers():
    for parser in (train_parser, eval_parser):
        assert parser().parse_args(["-opt", "x.yml", "--launcher", "pytorch"]).launcher == "pytorch"
        assert parser().parse_args(["-opt", "x.yml", "--launcher", "slurm"]).launcher == "slurm"
        with pytest.raises(SystemExit):
            parser().parse_args(["-opt", "x.yml", "--launcher", "mpi"])


def test_collectives_are_identities_in_one_process():
    t = torch.tensor([1.0, 2.0])
    assert cdist.all_reduce_sum(t) is t and cdist.mean_across_ranks(t) is t
    assert cdist.gather_to_main("a") == ["a"]
    assert cdist.get_rank() == 0 and cdist.get_world_size() == 1 and cdist.is_main_process()
    with pytest.raises(CheckpointError):
        cdist.run_on_main(lambda: (_ for _ in ()).throw(CheckpointError("bad")))


class _NoModel:
    def load_state_dict(self, state):
        pass


def _trainer(batch: int, replicas: int, rank: int = 0) -> Trainer:
    data = list(range(64))
    sampler = EnlargedSampler(data, num_replicas=replicas, rank=rank)
    loader = DataLoader(data, batch_size=batch, sampler=sampler, drop_last=True)
    return Trainer(_NoModel(), loader, Schedule(total_iter=10), None, None, None)


def test_resume_with_another_world_size_continues_at_the_first_unseen_batch():
    # saved by 2 ranks x batch 4 after 3 batches: 24 samples of epoch 2 consumed
    state = {"model": {}, "iteration": 7, "epoch": 2, "batch_in_epoch": 3, "samples_per_step": 8,
             "rng": get_rng_state()}
    trainer = _trainer(batch=4, replicas=1)
    trainer.load_training_state(state)
    assert (trainer.state.iteration, trainer.state.epoch, trainer.state.batch_in_epoch) == (7, 2, 6)
    trainer = _trainer(batch=2, replicas=4, rank=3)
    trainer.load_training_state({**state, "samples_per_step": 4})  # 12 seen; 8 per step now: batch 1
    assert trainer.state.batch_in_epoch == 1
    trainer.load_training_state({k: v for k, v in state.items() if k != "samples_per_step"})  # older states
    assert trainer.state.batch_in_epoch == 3


# ---- sharded validation (2 processes) ---------------------------------------------------------
METRICS = {"psnr": {"type": "calculate_psnr", "crop_border": 4, "test_y_channel": True},
           "ssim": {"type": "calculate_ssim", "crop_border": 4, "test_y_channel": True}}
VAL = {"type": "PairedImageDataset", "dataroot_gt": str(SET5 / "HR"), "dataroot_lq": str(SET5 / "LR_bicubic" / "X4"),
       "filename_tmpl": "{}x4", "io_backend": {"type": "disk"}}


def _upscale(lq: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(lq, scale_factor=4, mode="bicubic", align_corners=False)


def _evaluate(out: Path, rank: int = 0, world: int = 1) -> dict:
    loader = build_loader(VAL, "datasets.val", "val", 4, num_replicas=world, rank=rank)[1]
    return Evaluator(METRICS, num_save_img=3).evaluate(_upscale, loader, save_dir=str(out), suffix="v")


def _sharded_rank(rank: int, out: str) -> None:
    # Joined as srun would start the ranks (--launcher slurm); the training tests use torchrun's variables.
    env = os.environ
    slurm = {"SLURM_PROCID": env["RANK"], "SLURM_NTASKS": env["WORLD_SIZE"], "SLURM_LOCALID": env["LOCAL_RANK"],
             "MASTER_ADDR": env["MASTER_ADDR"], "MASTER_PORT": env["MASTER_PORT"]}
    ctx = mdist.init_dist("slurm", 0, environ=slurm)
    assert (ctx.rank, ctx.world_size, ctx.backend) == (rank, 2, "gloo")
    result = _evaluate(Path(out) / "images", rank, ctx.world_size)
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    mdist.shutdown(ctx)


def test_sharded_validation_equals_one_process(spawn_ranks, tmp_path):
    single = _evaluate(tmp_path / "single")
    spawn_ranks(_sharded_rank, 2, str(tmp_path / "dist"))
    ranks = [json.loads((tmp_path / "dist" / f"rank{r}.json").read_text()) for r in (0, 1)]
    # rank 0 scored baby, butterfly, woman and rank 1 bird, head; rank 0 reports all five in the set's order,
    # and both the whole set's averages, computed as one process does (bit-identical)
    assert list(ranks[1]["images"]) == ["bird", "head"]
    assert list(ranks[0]["images"].items()) == list(single["images"].items())
    for r in ranks:
        assert r["average"] == single["average"]
    # the first 3 images of the set, written by rank 0 (bird came from rank 1), byte-identical
    written = sorted(p.name for p in (tmp_path / "dist" / "images").iterdir())
    assert written == ["baby_v.png", "bird_v.png", "butterfly_v.png"]
    for name in written:
        assert (tmp_path / "dist" / "images" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()
