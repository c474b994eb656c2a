"""Training throughput with AMP off vs bf16 (and fp16 on request), and the time to auto-resume vs a fresh start.

1. Throughput: EDSR-light x4 (64 features, 16 blocks), batch 16, LR patch 48, Adam, L1, on the CPU;
   ``TrainStep`` (RestorationModel) with ``amp: off`` and ``amp: bf16`` side by side on the same in-memory
   T91 batches, timed interleaved; medians give s/step and images/s.
2. Start-up: ``mcir/train.py`` with the same network and batch on the bundled T91 images (GT crops of 64,
   the demo's, since the smallest T91 images are 78x78), from process start to the log line of the first training
   iteration: a fresh run (iteration 1) vs ``--auto_resume`` from a saved state (iteration 2; the state is
   digest-checked, loaded and applied first). Launches alternate; medians. The in-process time to load and
   check that state is reported too.

Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_times, t91_pairs  # noqa: E402
from mcir.archs.edsr_arch import EDSR  # noqa: E402
from mcir.core.optim_step import OptimStep  # noqa: E402
from mcir.losses.pixel_loss import L1Loss  # noqa: E402
from mcir.engine.train_step import TrainStep  # noqa: E402
from mcir.models.restoration_model import RestorationModel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
_ITER_RE = re.compile(r"\biter (\d+)\]")


def _model(amp: str) -> TrainStep:
    torch.manual_seed(0)
    net = EDSR(num_feat=64, num_block=16, upscale=4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
    return TrainStep(RestorationModel(net, L1Loss()), OptimStep(opt, net.parameters(), amp=amp), torch.device("cpu"))


def throughput(modes: List[str], batch: int, patch: int, steps: int, repeats: int) -> Dict[str, float]:
    """Median seconds per training step for each AMP mode, interleaved.

    Args:
        modes: AMP modes to compare.
        batch: Batch size.
        patch: LR patch size (GT is 4x).
        steps: Steps per timed call.
        repeats: Timed calls per mode.

    Returns:
        ``{mode: seconds per step}``.
    """
    pairs = t91_pairs(batch, gt_size=patch * 4, scale=4)
    data = {"lq": torch.stack([p["lq"] for p in pairs]), "gt": torch.stack([p["gt"] for p in pairs])}
    models = {m: _model(m) for m in modes}
    counters = {m: 0 for m in modes}

    def run(mode: str) -> None:
        for _ in range(steps):
            counters[mode] += 1
            models[mode](data, counters[mode])

    for m in modes:
        run(m)  # warm-up: oneDNN primitives, allocator
    med = median_times({m: (lambda m=m: run(m)) for m in modes}, repeats)
    return {m: t / steps for m, t in med.items()}


STARTUP_GT_SIZE = 64  # the smallest T91 images are 78x78


def _options(root: Path, total_iter: int, batch: int) -> Dict:
    return {
        "name": "amp_bench_resume",
        "model_type": "SRModel",
        "scale": 4,
        "num_gpu": 0,
        "manual_seed": 0,
        "datasets": {"train": {
            "name": "T91", "type": "PairedImageDataset", "dataroot_gt": str(REPO / "datasets" / "T91" / "HR"),
            "lq_from_gt": "bicubic", "gt_size": STARTUP_GT_SIZE, "batch_size_per_gpu": batch, "num_worker_per_gpu": 0,
        }},
        "network_g": {"type": "EDSR", "num_feat": 64, "num_block": 16, "upscale": 4},
        "path": {"experiments_root": str(root)},
        "train": {"ema_decay": 0.999, "optim_g": {"type": "Adam", "lr": 1e-4}, "total_iter": total_iter,
                  "pixel_opt": {"type": "L1Loss"}},
        "val": {"val_freq": 0},
        "logger": {"print_freq": 1, "save_checkpoint_freq": 1, "use_tb_logger": False, "pbar": False},
    }


def _write(folder: Path, opt: Dict) -> Path:
    """Write ``opt`` to a new YAML file in ``folder``."""
    path = folder / f"opt_{time.monotonic_ns()}.yml"
    path.write_text(yaml.safe_dump(opt), encoding="utf-8")
    return path


def _time_to_iteration(opt: Dict, folder: Path, auto_resume: bool, target: int) -> float:
    """Seconds from launching train.py to the log line of iteration ``target`` (the process is then killed)."""
    cmd = [sys.executable, str(REPO / "mcir" / "train.py"), "-opt", str(_write(folder, opt))] + (
        ["--auto_resume"] if auto_resume else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert proc.stdout is not None
    elapsed = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        m = _ITER_RE.search(line)
        if m and int(m.group(1)) >= target:
            elapsed = time.perf_counter() - t0
            break
    proc.kill()
    proc.wait()
    if elapsed is None:
        raise RuntimeError("train.py ended before its first iteration:\n" + "".join(lines[-10:]))
    return elapsed


def resume_startup(batch: int, repeats: int) -> Dict[str, float]:
    """Median time to the first iteration: fresh start vs auto-resume (alternating launches).

    Returns:
        ``fresh_s``, ``resume_s``, ``state_mb`` and ``load_state_s`` (in-process load + checks of the state).
    """
    from mcir.core.checkpoint_io import load_training_state

    tmp = Path(tempfile.mkdtemp(prefix="mcir_amp_bench_"))
    try:
        seed_run = tmp / "seed"
        seed = subprocess.run([sys.executable, str(REPO / "mcir" / "train.py"), "-opt",
                               str(_write(tmp, _options(seed_run, 1, batch)))], cwd=REPO, capture_output=True, text=True)
        if seed.returncode != 0:
            raise RuntimeError(f"the run that saves the state to resume from failed: {seed.stderr[-2000:]}")
        state = seed_run / "training_states" / "1.state"
        fresh: List[float] = []
        resumed: List[float] = []
        for i in range(repeats):
            fresh.append(_time_to_iteration(_options(tmp / f"fresh{i}", 1, batch), tmp, False, 1))
            copy = tmp / f"resume{i}"
            shutil.copytree(seed_run, copy)
            resumed.append(_time_to_iteration(_options(copy, 2, batch), tmp, True, 2))
        loads = []
        for _ in range(max(3, repeats)):
            t0 = time.perf_counter()
            load_training_state(str(state))
            loads.append(time.perf_counter() - t0)
        return {
            "fresh_s": statistics.median(fresh),
            "resume_s": statistics.median(resumed),
            "state_mb": state.stat().st_size / 2**20,
            "load_state_s": statistics.median(loads),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Run both parts and print the JSON result as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per AMP mode (median reported)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48, help="LR patch size")
    parser.add_argument("--fp16", action="store_true",
                        help="also time amp: fp16 (GradScaler); very slow on CPUs (fp16 conv gradients)")
    parser.add_argument("--resume_repeats", type=int, default=3, help="launches per side for the start-up part")
    args = parser.parse_args()
    modes = ["off", "bf16"] + (["fp16"] if args.fp16 else [])
    s_per_step = throughput(modes, args.batch, args.patch, args.steps, args.repeats)
    result: Dict[str, object] = {}
    for m, s in s_per_step.items():
        result[f"{m}_s_per_step"] = s
        result[f"{m}_images_per_s"] = args.batch / s
    for m in modes[1:]:
        result[f"{m}_speedup"] = s_per_step["off"] / s_per_step[m]
    if args.resume_repeats > 0:
        print(f"throughput: {result}", file=sys.stderr, flush=True)
        startup = resume_startup(args.batch, args.resume_repeats)
        result.update({f"startup_{k}": v for k, v in startup.items()})
        result["startup_resume_minus_fresh_s"] = startup["resume_s"] - startup["fresh_s"]
    result.update({"batch": args.batch, "lr_patch": args.patch, "threads": torch.get_num_threads(),
                   "steps": args.steps, "repeats": args.repeats, "resume_repeats": args.resume_repeats})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
