"""The SLURM example (scripts/slurm_train.sh) builds a well-formed torchrun command (run with stub srun/scontrol)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from torch.distributed.run import get_args_parser

from mcir.train import build_parser

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_train.sh"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the script with ``srun`` recording its arguments and ``scontrol`` listing two nodes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    (bin_dir / "scontrol").write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "gpu-a01\\ngpu-a02\\n"\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SRUN_ARGS": str(tmp_path / "srun.txt"),
           "SLURM_JOB_NODELIST": "gpu-a[01-02]", "SLURM_NNODES": "2", "SLURM_JOB_ID": "4242",
           "SLURM_GPUS_ON_NODE": "4"}
    env.pop("MASTER_PORT", None)
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True)


def test_slurm_script_runs_one_torchrun_per_node_with_a_valid_command_line(tmp_path):
    done = _run(tmp_path, "options/train/SR/x.yml", "--set", "train.total_iter=10")
    assert done.returncode == 0, done.stderr
    srun = (tmp_path / "srun.txt").read_text().splitlines()
    assert srun[:2] == ["--ntasks-per-node=1", "torchrun"]
    launch = get_args_parser().parse_args(srun[2:])
    assert (launch.nnodes, launch.nproc_per_node) == ("2", "4")
    assert (launch.rdzv_backend, launch.rdzv_endpoint, launch.rdzv_id) == ("c10d", "gpu-a01:29500", "4242")
    assert launch.training_script == "mcir/train.py"
    train_args = build_parser().parse_args(launch.training_script_args)
    assert (train_args.opt, train_args.launcher, train_args.auto_resume) == ("options/train/SR/x.yml", "pytorch", True)
    assert train_args.set == ["train.total_iter=10"]


def test_slurm_script_without_an_option_file_prints_its_usage(tmp_path):
    done = _run(tmp_path)
    assert done.returncode != 0 and "usage: sbatch" in done.stderr
    assert not (tmp_path / "srun.txt").exists()
