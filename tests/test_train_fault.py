"""End-to-end fault tolerance and AMP options of train.py / test.py (SIGTERM, damaged states, best, trust)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.engine.train_step import TrainStep
from mcir.test import main as run_test_cli
from mcir.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "options" / "train" / "SR" / "demo_EDSR_tiny_x4_T91.yml"
DEMO_TEST = REPO / "options" / "test" / "SR" / "test_demo_EDSR_tiny_x4.yml"


def _args(short_run_args, root: Path, name: str, *extra: str) -> list:
    return short_run_args(DEMO, root, name, "datasets.train.batch_size_per_gpu=4", "val.val_freq=3", *extra)


def _weights(root: Path, name: str = "net_g_latest.pth") -> dict:
    return torch.load(root / "models" / name, weights_only=True)


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert set(wa) == set(wb) == {"params", "params_ema"}
    for key in wa:
        for n, t in wa[key].items():
            assert torch.equal(t, wb[key][n]), f"{key}.{n} differs"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, short_run_args):
    """An uninterrupted 6-iteration run of the demo recipe (states at 3 and 6, validation at 3 and 6)."""
    root = tmp_path_factory.mktemp("full")
    assert train_main(_args(short_run_args, root, "full")) == 0
    return root / "full"


def test_sigterm_saves_the_iteration_exits_143_and_resumes_exactly(full_run, tmp_path, short_run_args, capsys,
                                                                  monkeypatch):
    original = TrainStep.__call__

    def preempted_at_4(self, batch, iteration):
        if iteration == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-iteration, as a scheduler's would
        return original(self, batch, iteration)

    monkeypatch.setattr(TrainStep, "__call__", preempted_at_4)
    handler = signal.getsignal(signal.SIGTERM)
    assert train_main(_args(short_run_args, tmp_path, "pre")) == 143
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: received SIGTERM: stopped after iteration 4 of 6") and "--auto_resume" in err
    states = tmp_path / "pre" / "training_states"
    assert sorted(p.name for p in states.glob("*.state")) == ["3.state", "4.state"]
    assert not list(states.glob(".*.tmp"))
    assert signal.getsignal(signal.SIGTERM) == handler  # the previous handler is put back
    monkeypatch.setattr(TrainStep, "__call__", original)
    assert train_main(_args(short_run_args, tmp_path, "pre") + ["--auto_resume"]) == 0
    _assert_same_weights(full_run, tmp_path / "pre")


def test_auto_resume_sets_a_damaged_latest_state_aside(full_run, tmp_path, short_run_args, capsys):
    root = tmp_path / "dmg"
    shutil.copytree(full_run, root)
    latest = root / "training_states" / "6.state"
    latest.write_bytes(latest.read_bytes()[:-64])  # a truncated copy, e.g. from a full disk during a backup
    assert train_main(_args(short_run_args, tmp_path, "dmg") + ["--auto_resume"]) == 0
    err = capsys.readouterr().err
    assert "6.state: sha256 mismatch" in err and "trying the previous training state" in err
    assert "resumed from" in err and "3.state at iteration 3" in err
    assert (root / "training_states" / "6.state.corrupt").is_file()
    _assert_same_weights(full_run, root)


def test_best_weights_per_validation_set(full_run):
    table = json.loads((full_run / "models" / "best.json").read_text())
    record = table["Set5"]
    assert record["metric"] == "psnr" and record["better"] == "higher" and record["iter"] in (3, 6)
    best = _weights(full_run, record["file"])
    assert set(best) == {"params", "params_ema"}
    assert torch.equal(best["params"]["conv_first.weight"],
                       _weights(full_run, f"net_g_{record['iter']}.pth")["params"]["conv_first.weight"])


def test_bf16_with_accumulation_and_channels_last_resumes_exactly(tmp_path, short_run_args):
    extra = ("train.amp=bf16", "train.accumulate_steps=2", "train.channels_last=true",
             "datasets.train.batch_size_per_gpu=2")
    assert train_main(_args(short_run_args, tmp_path, "amp_full", *extra)) == 0
    assert train_main(_args(short_run_args, tmp_path, "amp_split", *extra, "train.total_iter=3")) == 0
    assert train_main(_args(short_run_args, tmp_path, "amp_split", *extra) + ["--auto_resume"]) == 0
    _assert_same_weights(tmp_path / "amp_full", tmp_path / "amp_split")
    state = torch.load(tmp_path / "amp_full" / "training_states" / "6.state", weights_only=True)
    assert state["batch_in_epoch"] == 12  # 6 iterations x 2 micro-batches
    assert state["model"]["optim_step"] == {"skipped_steps": 0}


@pytest.mark.parametrize(
    "override, expected",
    [("train.amp=fp8", "train.amp: expected one of 'off', 'bf16', 'fp16', False, got 'fp8'"),
     ("train.accumulate_steps=0", "train.accumulate_steps: expected an integer > 0, got 0")],
)
def test_bad_amp_options_fail_cleanly(tmp_path, short_run_args, capsys, override, expected):
    assert train_main(_args(short_run_args, tmp_path, "bad", override)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "bad").exists()


def test_yaml_off_means_amp_off():
    from mcir.build import build_training
    from mcir.options import load_options

    opt = load_options(str(DEMO), ["train.amp=off", "num_gpu=0"], is_train=True)
    assert opt["train"]["amp"] is False  # what YAML makes of a bare `off`
    step = build_training(opt, torch.device("cpu"))
    assert step.optim.amp == "off" and step.optim.scaler is None


def test_unsafe_weights_need_the_trust_option(tmp_path, capsys):
    net = EDSR(num_feat=32, num_block=4, upscale=4)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"params_ema": net.state_dict(), "args": argparse.Namespace(lr=1)}, unsafe)
    args = ["-opt", str(DEMO_TEST), "--set", f"path.pretrain_network_g={unsafe}", "--set", "num_gpu=0",
            "--set", f"path.results_root={tmp_path / 'res'}", "--set", "val.save_img=false",
            "--set", f"datasets.test_1.dataroot_gt={REPO / 'datasets/Set5/HR'}",
            "--set", f"datasets.test_1.dataroot_lq={REPO / 'datasets/Set5/LR_bicubic/X4'}"]
    assert run_test_cli(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0] and "argparse.Namespace" in err[0] and "--trust_checkpoint" in err[0]
    assert run_test_cli(args + ["--trust_checkpoint"]) == 0
    assert (tmp_path / "res" / "metrics.json").is_file()


def test_fp16_on_cpu_builds_a_scaler_and_warns_about_speed():
    from mcir.build import build_training
    from mcir.options import load_options

    opt = load_options(str(DEMO), ["train.amp=fp16", "num_gpu=0"], is_train=True)
    with pytest.warns(UserWarning, match="use amp: bf16 on the CPU"):
        step = build_training(opt, torch.device("cpu"))
    assert step.optim.amp == "fp16" and step.optim.scaler is not None
