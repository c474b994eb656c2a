"""test.py evaluation throughput on Set14 x4 vs a straightforward per-image NumPy/cv2 evaluation.

Both evaluate the same network on the 14 Set14 images with PSNR and SSIM on the Y channel, crop 4, and must
give identical metric values. Two networks, side by side in one run:

* ``bicubic``: the table's Bicubic row (MATLAB-style imresize, a few ms per image). Nearly all the time is
  the evaluator's own work (decoding, colour conversion, PSNR/SSIM), which is what test.py can speed up.
* ``edsr_light``: EDSR-light x4 (random weights, seed 0). On a CPU the network dominates.

Set14 comes from ``../shared/data/sr/Set14`` (``--set14`` to point elsewhere; ``--limit N`` takes the first
N pairs for a quick check). A third variant per network, ``forward``, runs only the network over the
preloaded inputs: the floor that no reordering of reading, scoring and writing can beat
(``naive_s / forward_s`` bounds the speed-up without changing the network's arithmetic). Prints one JSON
line per network, last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_times  # noqa: E402
from mcir.archs.edsr_arch import EDSR  # noqa: E402
from mcir.archs.simple_arch import Bicubic  # noqa: E402
from mcir.core.checkpoint_io import atomic_save  # noqa: E402
from benchmarks.reference_metrics import plain_psnr_ssim_y  # noqa: E402
from mcir.options import load_options  # noqa: E402
from mcir.test import evaluate_all  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _lr_tensor(root: Path, stem: str) -> torch.Tensor:
    lr = cv2.imread(str(root / "LR_bicubic" / "X4" / f"{stem}x4.png"), cv2.IMREAD_COLOR)
    return torch.from_numpy(lr[..., ::-1].astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()


def _subset(root: Path, dst: Path, n: int) -> Path:
    """A Set14-layout folder of links to the first ``n`` pairs."""
    for sub in ("HR", "LR_bicubic/X4"):
        (dst / sub).mkdir(parents=True)
    for hr in sorted((root / "HR").glob("*.png"))[:n]:
        (dst / "HR" / hr.name).symlink_to(hr)
        lr = root / "LR_bicubic" / "X4" / f"{hr.stem}x4.png"
        (dst / "LR_bicubic" / "X4" / lr.name).symlink_to(lr)
    return dst


def naive(net: torch.nn.Module, root: Path, device: torch.device = torch.device("cpu")) -> Dict[str, Dict[str, float]]:
    """Read each pair with cv2, run the network, quantise, then score PSNR and SSIM one image at a time.

    The metrics are BasicSR's ``calculate_psnr`` / ``calculate_ssim`` written out step by step
    (:mod:`benchmarks.reference_metrics`, not mcir's faster metric code), so the comparison also checks mcir's values.
    """
    scores = {}
    for hr_path in sorted((root / "HR").glob("*.png")):
        hr = cv2.imread(str(hr_path), cv2.IMREAD_COLOR)
        x = _lr_tensor(root, hr_path.stem).to(device)
        with torch.no_grad():
            y = net(x)
        out = (y[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()[..., ::-1] * 255.0).round().astype(np.uint8)
        gt = hr[: out.shape[0], : out.shape[1]]
        psnr, ssim = plain_psnr_ssim_y(out, gt, 4)
        scores[hr_path.stem] = {"psnr": psnr, "ssim": ssim}
    return scores


NETWORKS = {
    "bicubic": ("{type: Bicubic, upscale: 4}", lambda: Bicubic(upscale=4)),
    "edsr_light": ("{type: EDSR, num_feat: 64, num_block: 16, upscale: 4}",
                   lambda: EDSR(num_feat=64, num_block=16, upscale=4)),
}


def bench(name: str, root: Path, tmp: Path, repeats: int, device: torch.device = torch.device("cpu")
          ) -> Dict[str, object]:
    """Time the naive loop, test.py's evaluator and the bare forward for one network; check equal values."""
    network_opt, make = NETWORKS[name]
    torch.manual_seed(0)
    net = make().eval().to(device)
    inputs = [_lr_tensor(root, p.stem).to(device) for p in sorted((root / "HR").glob("*.png"))]
    overrides = [
        "name=bench",
        f"num_gpu={1 if device.type == 'cuda' else 0}",
        f"network_g={network_opt}",
        f"path.results_root={tmp / name / 'res'}",
        "datasets.test_1.name=Set14",
        f"datasets.test_1.dataroot_gt={root / 'HR'}",
        f"datasets.test_1.dataroot_lq={root / 'LR_bicubic' / 'X4'}",
    ]
    if any(True for _ in net.parameters()):
        atomic_save({"params": net.state_dict()}, str(tmp / f"{name}.pth"))
        overrides.append(f"path.pretrain_network_g={tmp / f'{name}.pth'}")
    opt = load_options(str(REPO / "options/test/SR/test_Bicubic_x4.yml"), overrides, is_train=False)
    results = {}

    def run_mcir() -> None:
        results["mcir"] = evaluate_all(opt)["bench"]["Set14"]["images"]

    def run_naive() -> None:
        results["naive"] = naive(net, root, device)

    def run_forward() -> None:
        with torch.no_grad():
            for x in inputs:
                net(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    cpu: Dict[str, list] = {}

    def cpu_timed(variant: str, fn):
        def run() -> None:
            c0 = time.process_time()
            fn()
            cpu.setdefault(variant, []).append(time.process_time() - c0)

        return run

    run_forward()  # warm-up: oneDNN builds its kernels once per input shape; no variant should pay for it
    variants = {"naive": run_naive, "mcir": run_mcir, "forward": run_forward}
    med = median_times({k: cpu_timed(k, fn) for k, fn in variants.items()}, repeats)
    diff = max(
        abs(results["mcir"][k][m] - results["naive"][k][m]) for k in results["naive"] for m in ("psnr", "ssim")
    )
    return {
        "network": name,
        "naive_s": med["naive"],
        "mcir_s": med["mcir"],
        "forward_s": med["forward"],
        "mcir_speedup": med["naive"] / med["mcir"],
        "speedup_bound": med["naive"] / med["forward"],
        # CPU time of all threads: the same work shows the same CPU time, whatever the wall clock did.
        "naive_cpu_s": statistics.median(cpu["naive"]),
        "mcir_cpu_s": statistics.median(cpu["mcir"]),
        "forward_cpu_s": statistics.median(cpu["forward"]),
        "max_metric_abs_diff": diff,
        "images": len(results["naive"]),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "device": str(device),
    }


def main() -> None:
    """Run both evaluations side by side for each network and print one JSON line per network, last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set14", default=str(REPO.parent / "shared" / "data" / "sr" / "Set14"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N image pairs")
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=["bicubic", "edsr_light"])
    parser.add_argument("--device", default="cpu", help="where the networks run (cpu, cuda)")
    args = parser.parse_args()
    root = Path(args.set14)
    if not (root / "HR").is_dir():
        sys.exit(f"error: {root}/HR not found (pass --set14)")
    tmp = Path(tempfile.mkdtemp())
    if args.limit:
        root = _subset(root, tmp / "subset", args.limit)
    rows = [bench(name, root, tmp, args.repeats, torch.device(args.device)) for name in args.networks]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
