"""SIGKILL a CPU training run at random iterations, auto-resume it, and check its weights equal an uninterrupted run.

The final weights must be bit-identical to those of an uninterrupted run with the same seed:

    python scripts/kill_resume_check.py --kills 3 --total_iter 60 --save_freq 5
    python scripts/kill_resume_check.py --model mcir --kills 2 --total_iter 20 --save_freq 3

Both runs train a small EDSR x4 on the bundled T91 images (LR made on the fly, ``num_worker_per_gpu: 0``,
``deterministic: true``, no validation); ``--model mcir`` trains a tinier one with the SPN term and two
negatives (steps [2, 3], random VGG). The interrupted run is launched with ``--auto_resume`` until it
finishes; each launch but the last is killed once its log reports an iteration at or past the next random
target. A resumed launch redoes the iterations since the last checkpoint, so exactness covers that too.
Prints one JSON line (``identical``, what was compared, the kills, timings) and exits 0 only when every kill
landed and the weights (``params`` and ``params_ema``) and the final training state's networks (``net_g``,
``ema`` and, for MCIR, the ``negatives`` with their update counters) are equal bit for bit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

REPO = Path(__file__).resolve().parents[1]
_ITER_RE = re.compile(r"\biter (\d+)\]")
_RESUMED_RE = re.compile(r"resumed from \S+ at iteration (\d+)")
MODELS = ("plain", "mcir")


def options(total_iter: int, save_freq: int, seed: int, model: str = "plain") -> Dict[str, Any]:
    """The option tree of both runs (name and experiments_root are set per run on the command line).

    Args:
        total_iter: Iterations of a whole run.
        save_freq: Checkpoint interval.
        seed: ``manual_seed``.
        model: ``plain`` (SRModel) or ``mcir`` (MCIRModel: SPN term, negatives with steps [2, 3], random VGG).

    Returns:
        Options for ``mcir/train.py``.
    """
    opt = {
        "name": "kill_resume",
        "model_type": "SRModel",
        "scale": 4,
        "num_gpu": 0,
        "manual_seed": seed,
        "deterministic": True,
        "datasets": {
            "train": {
                "name": "T91",
                "type": "PairedImageDataset",
                "dataroot_gt": str(REPO / "datasets" / "T91" / "HR"),
                "lq_from_gt": "bicubic",
                "gt_size": 48,
                "use_hflip": True,
                "use_rot": True,
                "batch_size_per_gpu": 4,
                "num_worker_per_gpu": 0,
                "dataset_enlarge_ratio": 2,
            }
        },
        "network_g": {"type": "EDSR", "num_feat": 16, "num_block": 2, "upscale": 4},
        "train": {
            "ema_decay": 0.9,
            "optim_g": {"type": "Adam", "lr": 1e-3, "betas": [0.9, 0.99]},
            "scheduler": {"type": "CosineAnnealingRestartLR", "periods": [total_iter], "eta_min": 1e-5},
            "total_iter": total_iter,
            "warmup_iter": 3,
            "pixel_opt": {"type": "L1Loss"},
        },
        "val": {"val_freq": 0},
        "logger": {
            "print_freq": 1,
            "save_checkpoint_freq": save_freq,
            "use_tb_logger": False,
            "keep_last": 2,
            "pbar": False,
        },
    }
    if model == "mcir":
        opt["model_type"] = "MCIRModel"
        opt["datasets"]["train"].update(gt_size=32, batch_size_per_gpu=2)
        opt["network_g"].update(num_feat=8, num_block=1)
        opt["train"]["negatives"] = {"steps": [2, 3], "decay": 0.1, "init": "blend"}
        opt["train"]["neg_opt"] = {"type": "SPNLoss", "loss_weight": 0.05, "vgg_weights": "random"}
    elif model != "plain":
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    return opt


def launch(opt_file: Path, root: Path, auto_resume: bool, threads: int = 1) -> subprocess.Popen:
    """Start ``mcir/train.py`` on ``opt_file`` with its run folder at ``root``; output merged, line-buffered.

    ``threads`` sets OMP_NUM_THREADS: one thread keeps a tiny network fast on a busy machine (spinning
    OpenMP threads slow it down many times there); both runs use the same value, which exactness needs.
    """
    cmd = [sys.executable, str(REPO / "mcir" / "train.py"), "-opt", str(opt_file),
           "--set", f"path.experiments_root={root}"]
    if auto_resume:
        cmd.append("--auto_resume")
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)


def run_until(proc: subprocess.Popen, kill_at: Optional[int], timeout: float) -> Tuple[int, int, Optional[int], str]:
    """Follow a launch's log; SIGKILL it once it reports iteration ``kill_at`` or later.

    Args:
        proc: The launch.
        kill_at: Iteration that triggers the kill (None: let it finish).
        timeout: Seconds before the launch is killed as hung (reported as an error).

    Returns:
        ``(return code, last iteration seen, iteration it resumed from or None, log tail)``.
    """
    deadline = time.monotonic() + timeout
    last, resumed, tail = 0, None, []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        if (m := _RESUMED_RE.search(line)) is not None:
            resumed = int(m.group(1))
        if (m := _ITER_RE.search(line)) is not None:
            last = int(m.group(1))
            if kill_at is not None and last >= kill_at:
                proc.send_signal(signal.SIGKILL)
                break
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGKILL)
            tail.append(f"(hung: killed after {timeout:.0f} s)")
            break
    proc.stdout.close()
    return proc.wait(), last, resumed, "\n".join(tail)


def final_weights_equal(a: Path, b: Path) -> Tuple[bool, List[str]]:
    """Compare two weights files tensor by tensor.

    Returns:
        ``(all equal, names that differ)``.
    """
    import torch

    wa = torch.load(a, map_location="cpu", weights_only=True)
    wb = torch.load(b, map_location="cpu", weights_only=True)
    return _tensor_dicts_equal(wa, wb, list(wa))


def final_states_equal(a: Path, b: Path) -> Tuple[bool, List[str], List[str]]:
    """Compare the networks of two training states (``net_g``, ``ema``, ``negatives``: whichever are saved).

    Returns:
        ``(all equal, names that differ, parts compared)``.
    """
    import torch

    ma = torch.load(a, map_location="cpu", weights_only=True)["model"]
    mb = torch.load(b, map_location="cpu", weights_only=True)["model"]
    parts = [k for k in ("net_g", "ema", "negatives") if k in ma or k in mb]
    same, diff = _tensor_dicts_equal(ma, mb, parts)
    return same, diff, parts


def _tensor_dicts_equal(a: Dict[str, Any], b: Dict[str, Any], parts: List[str]) -> Tuple[bool, List[str]]:
    """Whether ``a[p]`` and ``b[p]`` hold the same tensors, bit for bit, for every part ``p``."""
    import torch

    diff = [p for p in parts if p not in a or p not in b or set(a[p]) != set(b[p])]
    diff += [f"{p}.{n}" for p in parts if p not in diff for n, t in a[p].items() if not torch.equal(t, b[p][n])]
    return set(a) == set(b) and not diff, diff


def check(workdir: Path, kills: int, total_iter: int, save_freq: int, seed: int, kill_seed: int,
          timeout: float = 600.0, threads: int = 1, model: str = "plain") -> Dict[str, Any]:
    """Run the reference and the killed-and-resumed training in ``workdir`` and compare their final weights.

    Args:
        workdir: Empty (or new) folder for both run folders.
        kills: How many launches to kill.
        total_iter: Iterations of a whole run.
        save_freq: Checkpoint interval.
        seed: Training seed.
        kill_seed: Seed of the random kill targets.
        timeout: Per-launch limit in seconds.
        threads: CPU threads per launch.
        model: ``plain`` or ``mcir`` (see :func:`options`).

    Returns:
        The report (``identical``, ``kills``, ``ok`` and timings).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    opt_file = workdir / "kill_resume.yml"
    opt_file.write_text(yaml.safe_dump(options(total_iter, save_freq, seed, model), sort_keys=False), encoding="utf-8")
    rng = random.Random(kill_seed)
    # Stay clear of the end so a kill lands before the run finishes even when this process lags behind.
    targets = sorted(rng.sample(range(2, max(3, total_iter - 2 * save_freq)), kills))
    t0 = time.perf_counter()
    rc, _, _, tail = run_until(launch(opt_file, workdir / "reference", False, threads), None, timeout)
    if rc != 0:
        return {"ok": False, "error": f"reference run failed (exit {rc})", "log": tail}
    t_ref = time.perf_counter() - t0
    report: List[Dict[str, Any]] = []
    for target in targets:
        rc, last, resumed, tail = run_until(launch(opt_file, workdir / "killed", True, threads), target, timeout)
        report.append({"target": target, "killed_at": last, "resumed_from": resumed, "exit": rc})
        if rc != -signal.SIGKILL:
            return {"ok": False, "error": f"launch aimed at iteration {target} ended with {rc}", "kills": report,
                    "log": tail}
    rc, last, resumed, tail = run_until(launch(opt_file, workdir / "killed", True, threads), None, timeout)
    if rc != 0:
        return {"ok": False, "error": f"final resumed launch failed (exit {rc})", "kills": report, "log": tail}
    name = "net_g_latest.pth"
    same, diff = final_weights_equal(workdir / "reference" / "models" / name, workdir / "killed" / "models" / name)
    state = Path("training_states") / f"{total_iter}.state"
    same_state, diff_state, parts = final_states_equal(workdir / "reference" / state, workdir / "killed" / state)
    return {
        "ok": same and same_state,
        "identical": same and same_state,
        "compared": ["weights"] + parts,
        "differs": (diff + diff_state)[:5],
        "kills": report,
        "final_resumed_from": resumed,
        "model": model,
        "total_iter": total_iter,
        "save_freq": save_freq,
        "reference_s": round(t_ref, 2),
        "total_s": round(time.perf_counter() - t0, 2),
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; prints the JSON report last and returns 0 when the check passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3, help="launches to kill (default 3)")
    parser.add_argument("--total_iter", type=int, default=60, help="iterations of a whole run (default 60)")
    parser.add_argument("--save_freq", type=int, default=5, help="checkpoint interval (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--kill_seed", type=int, default=None, help="seed of the kill targets (default: random)")
    parser.add_argument("--workdir", default=None, help="folder for the runs (default: a temporary one, removed)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per launch before it counts as hung")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per training process (default 1)")
    parser.add_argument("--model", choices=MODELS, default="plain",
                        help="plain (SRModel) or mcir (MCIRModel with the SPN term and two negatives)")
    args = parser.parse_args(argv)
    if args.kills < 1 or args.total_iter - 2 * args.save_freq - 2 < args.kills:
        parser.error("need total_iter - 2 * save_freq - 2 >= kills >= 1 (room for distinct kill targets)")
    kill_seed = args.kill_seed if args.kill_seed is not None else random.SystemRandom().randrange(1 << 30)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mcir_kill_"))
    try:
        result = check(workdir, args.kills, args.total_iter, args.save_freq, args.seed, kill_seed,
                       args.timeout, args.threads, args.model)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    result["kill_seed"] = kill_seed
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
