"""Peak memory of tiled vs whole-image inference on a 2048x2048 input, each in a fresh child process.

Setting: EDSR at scale x1 (64 features, the EDSR-light width; 4 residual blocks by default, since peak
memory depends on the width and the image size, not on the depth, and fewer blocks keep the run short),
input 2048x2048 RGB, tile 256 with overlap 32. x1 keeps the output at 2048x2048; EDSR-light x4 would make
an 8192x8192 output, and x2 already needs a 256-channel 2048x2048 map (4 GiB) plus its 64-channel 4096x4096
pixel-shuffled copy (another 4 GiB) at once: too much for a 24 GiB machine shared with other jobs.

Each variant runs in its own ``python benchmarks/tile_memory.py --child VARIANT`` process, so peaks do not
mix; the child reads ``VmHWM`` (peak RSS) from ``/proc/self/status`` and reports it with its RSS just
before inference (torch imported, network built, input allocated). Prints a JSON line last.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def child(args: argparse.Namespace) -> Dict[str, float]:
    """Run one variant and measure it (in this process).

    Returns:
        ``{"before_mib", "peak_mib", "extra_mib", "seconds", "cpu_s"}`` (``cpu_s``: CPU time of all threads,
        less sensitive than wall time to other jobs on a shared machine).
    """
    import torch

    from mcir.archs.edsr_arch import EDSR
    from mcir.core.inference import restore

    torch.manual_seed(0)
    net = EDSR(num_feat=args.feat, num_block=args.blocks, upscale=args.scale).eval()
    x = torch.rand(1, 3, args.size, args.size)
    restore(net, x[..., :64, :64])  # load kernels and start thread pools before measuring
    clear = Path("/proc/self/clear_refs")
    if clear.exists():
        clear.write_text("5")  # reset VmHWM to the current RSS, so import-time peaks do not count
    before = _status_kib("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    if args.child == "tiled":
        out = restore(net, x, tile=args.tile, overlap=args.overlap)
    else:
        out = restore(net, x)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.shape[-1] == args.size * args.scale
    peak = _status_kib("VmHWM")
    return {"before_mib": before / 1024, "peak_mib": peak / 1024, "extra_mib": (peak - before) / 1024,
            "seconds": seconds, "cpu_s": cpu}


def main() -> None:
    """Run both variants in fresh processes and print the comparison as JSON last."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=2048, help="input side (default 2048)")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--scale", type=int, default=1, help="EDSR upscale (default 1)")
    p.add_argument("--feat", type=int, default=64, help="EDSR features (default 64, EDSR-light)")
    p.add_argument("--blocks", type=int, default=4, help="EDSR residual blocks (default 4)")
    p.add_argument("--child", choices=["whole", "tiled"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    passthrough = [f"--{k}={getattr(args, k)}" for k in ("size", "tile", "overlap", "scale", "feat", "blocks")]
    res = {}
    for variant in ("tiled", "whole"):
        out = subprocess.run([sys.executable, __file__, "--child", variant, *passthrough], capture_output=True,
                             text=True, cwd=str(REPO))
        if out.returncode != 0:
            sys.exit(f"error: the {variant} child failed:\n{out.stderr.strip()}")
        res[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{variant}: {res[variant]}", flush=True)
    print(json.dumps({
        "setting": f"EDSR x{args.scale} {args.feat} feat {args.blocks} blocks, {args.size}x{args.size} input, "
                   f"tile {args.tile} overlap {args.overlap}",
        "whole_peak_mib": round(res["whole"]["peak_mib"], 1),
        "tiled_peak_mib": round(res["tiled"]["peak_mib"], 1),
        "whole_extra_mib": round(res["whole"]["extra_mib"], 1),
        "tiled_extra_mib": round(res["tiled"]["extra_mib"], 1),
        "extra_ratio_whole_over_tiled": round(res["whole"]["extra_mib"] / max(res["tiled"]["extra_mib"], 1e-3), 2),
        "whole_s": round(res["whole"]["seconds"], 2),
        "tiled_s": round(res["tiled"]["seconds"], 2),
        "whole_cpu_s": round(res["whole"]["cpu_s"], 2),
        "tiled_cpu_s": round(res["tiled"]["cpu_s"], 2),
    }))


if __name__ == "__main__":
    main()
