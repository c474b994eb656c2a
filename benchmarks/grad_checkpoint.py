"""Peak memory and step time of HAT training with and without ``train.grad_checkpoint``, each in fresh processes.

Setting: a small HAT x4 (embed 60, 2 groups x 6 HABs, 6 heads, window 16, mlp 2: the released HAT's layout at a
third of its width and depth), LR patch 64x64 (the official training patch), batch 2, L1 loss, Adam. Both variants start from the same seeded weights and batch. One child process per variant and
repeat: ``python benchmarks/grad_checkpoint.py --child plain|ckpt``. The children run alternately
(plain, ckpt, plain, ...), so load changes on a shared machine hit both alike.

Each child builds everything, then resets ``VmHWM`` to the current RSS (``/proc/self/clear_refs``). It runs
``--steps`` training steps (forward, loss, backward, Adam) and reports the peak RSS above that baseline.
That is the memory a step adds: activations, gradients, Adam state and allocator slack. The steps after the
first are timed; the first one is left out because it loads kernels and allocates the Adam state.
The parent prints medians over the repeats, then a JSON line last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
HAT_SMALL = dict(upscale=4, img_size=64, window_size=16, embed_dim=60, depths=[6, 6], num_heads=[6, 6],
                 mlp_ratio=2, upsampler="pixelshuffle", drop_path_rate=0.0)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def child(args: argparse.Namespace) -> Dict[str, float]:
    """Run one variant in this process and measure it.

    Returns:
        ``{"extra_mib", "step_s"}``: peak RSS above the built state, and the median time of the timed steps.
    """
    import torch

    from mcir.archs.grad_checkpoint import enable_grad_checkpoint
    from mcir.archs.hat_arch import HAT

    torch.manual_seed(0)
    net = HAT(**HAT_SMALL).train()
    if args.child == "ckpt":
        enable_grad_checkpoint(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(1)
    lq = torch.rand(args.batch, 3, args.patch, args.patch, generator=gen)
    gt = torch.rand(args.batch, 3, 4 * args.patch, 4 * args.patch, generator=gen)
    clear = Path("/proc/self/clear_refs")
    if clear.exists():
        clear.write_text("5")  # reset VmHWM to the current RSS: the peak below is what the steps add
    before = _status_kib("VmRSS")
    times: List[float] = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(net(lq), gt).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"extra_mib": (_status_kib("VmHWM") - before) / 1024, "step_s": statistics.median(times[1:])}


def main() -> None:
    """Run the variants alternately in fresh processes and print the comparison, JSON last."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="child processes per variant (default 3)")
    p.add_argument("--steps", type=int, default=2, help="training steps per child; the first is not timed")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--patch", type=int, default=64, help="LR patch side (default 64)")
    p.add_argument("--child", choices=["plain", "ckpt"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.steps < 2:
        p.error("--steps must be >= 2 (the first step is not timed)")
    if args.child:
        print(json.dumps(child(args)))
        return
    runs: Dict[str, List[Dict[str, float]]] = {"plain": [], "ckpt": []}
    for _ in range(args.repeats):
        for variant in runs:
            cmd = [sys.executable, __file__, "--child", variant, "--steps", str(args.steps),
                   "--batch", str(args.batch), "--patch", str(args.patch)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
            print(variant, runs[variant][-1], flush=True)
    med = {v: {k: statistics.median(r[k] for r in rs) for k in ("extra_mib", "step_s")} for v, rs in runs.items()}
    import torch

    result = {
        "plain_extra_mib": round(med["plain"]["extra_mib"], 1), "ckpt_extra_mib": round(med["ckpt"]["extra_mib"], 1),
        "memory_ckpt_over_plain": round(med["ckpt"]["extra_mib"] / med["plain"]["extra_mib"], 3),
        "plain_step_s": round(med["plain"]["step_s"], 3), "ckpt_step_s": round(med["ckpt"]["step_s"], 3),
        "time_ckpt_over_plain": round(med["ckpt"]["step_s"] / med["plain"]["step_s"], 3),
        "repeats": args.repeats, "steps": args.steps, "batch": args.batch, "patch": args.patch,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
