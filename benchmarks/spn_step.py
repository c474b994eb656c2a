"""SPN training-step cost: mcir's MCIRModel TrainStep vs its compute floor, the published style and plain L1.

EDSR-light x4 (64 features, 16 blocks), batch 16, LR patch 48 (HR 192), N = 4 negatives, VGG16 up to
relu3_3, Adam, on the CPU. Times are medians of interleaved repeats in one run; peak RSS is measured in a
fresh child process per variant (2 steps each). The VGG is random-initialised (the speed is the same as
with ImageNet weights, which cannot be downloaded offline).

* ``baseline``: one L1 step (TrainStep of RestorationModel).
* ``spn``: one TrainStep of MCIRModel (negatives under inference mode, φ(out) once, all negatives' VGG in
  one batched no-grad call).
* ``floor``: baseline step + N negative forwards + one VGG forward over the (N+1)·B images + one VGG
  backward over B images, each timed alone.
* ``spn_bf16``: ``spn`` with ``train.negatives.precision: bf16`` (the negatives' forwards and their VGG
  features under bfloat16 autocast; φ(out) and its gradient stay fp32).
* ``published``: the published implementation's structure: VGG(out) recomputed, with gradients, once per
  negative (N graphs of the output kept alive until backward).

The last line printed is a JSON object with ``spn_over_floor``, ``published_style_over_spn``,
``spn_over_baseline``, ``published_style_rss_over_spn`` and ``spn_rss_over_baseline``, the same ratios for
``spn_bf16`` (``published_style_over_spn_bf16``, ...), plus raw numbers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_times, t91_pairs  # noqa: E402
from mcir.archs.edsr_arch import EDSR  # noqa: E402
from mcir.method.eq1_negatives import NegativeBank  # noqa: E402
from mcir.core.optim_step import OptimStep  # noqa: E402
from mcir.losses.pixel_loss import L1Loss  # noqa: E402
from mcir.method.eq2_4_spn import SPNLoss  # noqa: E402
from mcir.engine.train_step import TrainStep  # noqa: E402
from mcir.models.mcir_model import MCIRModel  # noqa: E402
from mcir.models.restoration_model import RestorationModel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_NEG = 4
KINDS = ("baseline", "spn", "spn_bf16", "published")
LAMBDA = 1e-4


def real_batch(batch: int) -> Dict[str, torch.Tensor]:
    """A batch of real T91 crops (HR 192, LR 48 by MATLAB bicubic)."""
    items = t91_pairs(batch, gt_size=192, scale=4)
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "gt")}


def build(kind: str) -> TrainStep:
    """A fresh training step of the given kind (same seed, same weights)."""
    torch.manual_seed(0)
    net = EDSR(num_feat=64, num_block=16, upscale=4)
    optim = OptimStep(torch.optim.Adam(net.parameters(), lr=1e-4), net.parameters())
    if kind == "baseline":
        return TrainStep(RestorationModel(net, L1Loss()), optim, torch.device("cpu"))
    precision = "bf16" if kind == "spn_bf16" else "fp32"
    bank = NegativeBank(net, steps=[100, 200, 500, 1000], decay=0.1, init="blend", precision=precision)
    loss = SPNLoss(loss_weight=LAMBDA, vgg_weights="random")
    cls = PublishedStyleModel if kind == "published" else MCIRModel
    return TrainStep(cls(net, negatives=bank, spn=loss, pixel_loss=L1Loss()), optim, torch.device("cpu"))


class PublishedStyleModel(MCIRModel):
    """The published code's loss structure: φ(out) recomputed (with gradients) for every negative."""

    def compute_losses(
        self, lq: torch.Tensor, gt: torch.Tensor, output: torch.Tensor, iteration: int, negs: Any = None
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """L_rec − λ·(1/N)·Σ_i PerceptualLoss(output, neg_i), with VGG(output) recomputed for every i."""
        l_rec = self.pixel_loss(output, gt)
        with torch.no_grad():
            negatives = [neg.module(lq) for neg in self.negatives.negatives]
        l_neg = 0.0
        for neg in negatives:
            f_out = self.spn.vgg(output)
            f_neg = self.spn.vgg(neg)
            l_neg = l_neg + sum(w * (f_out[k] - f_neg[k].detach()).abs().mean()
                                for k, w in self.spn.layer_weights.items())
        l_neg = l_neg / len(negatives)
        return l_rec - self.neg_lambda * l_neg, {"l_rec": l_rec.detach()}


def floor_parts(batch: Dict[str, torch.Tensor]) -> Dict[str, Callable[[], None]]:
    """Each piece of the SPN step's unavoidable work, as separately timed functions."""
    model = build("spn").model
    lq = batch["lq"]
    with torch.no_grad():
        out = model.net_g(lq)
    negs = model.negatives(lq)
    vgg = model.spn.vgg
    all_imgs = torch.cat([out, negs.flatten(0, 1)])

    def neg_forwards() -> None:
        model.negatives(lq)

    def vgg_forward() -> None:
        with torch.no_grad():
            vgg(all_imgs)

    def vgg_backward() -> None:
        x = out.clone().requires_grad_(True)
        feats = vgg(x)
        loss = sum(f.mean() for f in feats.values())
        t0 = time.perf_counter()
        loss.backward()
        vgg_backward.elapsed = time.perf_counter() - t0  # type: ignore[attr-defined]

    return {"neg_forwards": neg_forwards, "vgg_forward": vgg_forward, "vgg_backward": vgg_backward}


def child(kind: str, batch_size: int) -> None:
    """Run two steps of one variant and print its peak RSS in MiB.

    Reads ``VmHWM`` (this process image's high-water mark) rather than ``ru_maxrss``, which a child
    inherits from its parent's peak at fork time.
    """
    batch = real_batch(batch_size)
    model = build(kind)
    for it in (1, 2):
        model(batch, it)
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(kib / 1024)


def peak_rss(kind: str, batch_size: int) -> float:
    """Peak RSS (MiB) of a fresh process running ``kind``."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--batch", str(batch_size)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Time the variants side by side and print the JSON summary last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*random.*")
    if args.child:
        child(args.child, args.batch)
        return
    batch = real_batch(args.batch)
    models = {k: build(k) for k in KINDS}
    step = {k: 0 for k in models}

    def runner(kind: str) -> Callable[[], None]:
        def run() -> None:
            step[kind] += 1
            models[kind](batch, step[kind])
        return run

    parts = floor_parts(batch)
    for fn in [runner(k) for k in models] + list(parts.values()):
        fn()  # warm-up
    backward_times = []

    def vgg_backward_only() -> None:
        parts["vgg_backward"]()
        backward_times.append(parts["vgg_backward"].elapsed)  # type: ignore[attr-defined]

    timed = {k: runner(k) for k in models}
    timed.update(neg_forwards=parts["neg_forwards"], vgg_forward=parts["vgg_forward"], vgg_backward=vgg_backward_only)
    med = median_times(timed, args.repeats)
    med["vgg_backward"] = sorted(backward_times)[len(backward_times) // 2]
    floor = med["baseline"] + med["neg_forwards"] + med["vgg_forward"] + med["vgg_backward"]
    rss = {k: peak_rss(k, args.batch) for k in KINDS}
    result = {
        "spn_over_floor": med["spn"] / floor,
        "published_style_over_spn": med["published"] / med["spn"],
        "spn_over_baseline": med["spn"] / med["baseline"],
        "published_style_rss_over_spn": rss["published"] / rss["spn"],
        "spn_rss_over_baseline": rss["spn"] / rss["baseline"],
        "published_style_over_spn_bf16": med["published"] / med["spn_bf16"],
        "spn_bf16_over_spn": med["spn_bf16"] / med["spn"],
        "published_style_rss_over_spn_bf16": rss["published"] / rss["spn_bf16"],
        "seconds": {k: round(v, 3) for k, v in med.items()} | {"floor": round(floor, 3)},
        "peak_rss_mib": {k: round(v) for k, v in rss.items()},
        "batch": args.batch,
        "negatives": N_NEG,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
