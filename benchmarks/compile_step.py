"""torch.compile vs eager for one training step: EDSR-light x4, plain L1 and +SPN, on this machine.

EDSR-light x4 (64 features, 16 blocks), LR patch 48, Adam, real T91 crops, N = 4 negatives and VGG16 to
relu3_3 (random weights) for +SPN. Variants (``train.compile`` wires the ``*_all`` ones):

* ``plain_eager`` / ``plain_compiled``: the L1 step, the target's forward/backward compiled or not;
* ``spn_eager``: MCIRModel's step;
* ``spn_target``: only the target compiled;
* ``spn_all``: target, the negatives' forwards and the SPN VGG compiled.

Steady-state seconds per step are medians of interleaved repeats in this process, after an untimed warm-up
step that compiles. The first-call cost is measured in a fresh child process per compiled variant with an
empty inductor cache (``TORCHINDUCTOR_CACHE_DIR`` set to a new temporary folder): the first step's time
minus that child's second step. The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_times, t91_pairs  # noqa: E402
from mcir.archs.edsr_arch import EDSR  # noqa: E402
from mcir.core.compile import CompiledModule  # noqa: E402
from mcir.core.optim_step import OptimStep  # noqa: E402
from mcir.engine.train_step import TrainStep  # noqa: E402
from mcir.losses.pixel_loss import L1Loss  # noqa: E402
from mcir.method.eq1_negatives import NegativeBank  # noqa: E402
from mcir.method.eq2_4_spn import SPNLoss  # noqa: E402
from mcir.models.mcir_model import MCIRModel  # noqa: E402
from mcir.models.restoration_model import RestorationModel  # noqa: E402

KINDS = ("plain_eager", "plain_compiled", "spn_eager", "spn_target", "spn_all")


def real_batch(batch: int) -> Dict[str, torch.Tensor]:
    """A batch of real T91 crops (HR 192, LR 48)."""
    items = t91_pairs(batch, gt_size=192, scale=4)
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "gt")}


def build(kind: str, device: torch.device = torch.device("cpu")) -> TrainStep:
    """A fresh training step of ``kind`` (same seed, same weights) on ``device``."""
    torch.manual_seed(0)
    net = EDSR(num_feat=64, num_block=16, upscale=4)
    optim = OptimStep(torch.optim.Adam(net.parameters(), lr=1e-4), net.parameters())
    compiled = kind in ("plain_compiled", "spn_target", "spn_all")
    wrap = (lambda m: CompiledModule(m, "the target network")) if compiled else None
    if kind.startswith("plain"):
        return TrainStep(RestorationModel(net, L1Loss()), optim, device, compile_net=wrap)
    bank = NegativeBank(net, steps=[100, 200, 500, 1000], decay=0.1, init="blend")
    spn = SPNLoss(loss_weight=1e-4, vgg_weights="random")
    if kind == "spn_all":
        bank.compile_forwards(lambda m: CompiledModule(m, "a negative"))
        spn.compile_vgg(lambda m: CompiledModule(m, "the SPN VGG"))
    model = MCIRModel(net, negatives=bank, spn=spn, pixel_loss=L1Loss())
    return TrainStep(model, optim, device, compile_net=wrap)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def child(kind: str, batch_size: int, device: torch.device) -> None:
    """Print the first and second step's seconds of ``kind`` in this (fresh) process."""
    batch = real_batch(batch_size)
    step = build(kind, device)
    times = []
    for it in (1, 2):
        t0 = time.perf_counter()
        step(batch, it)
        _sync(device)
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def first_call(kind: str, batch_size: int, device: torch.device) -> Dict[str, float]:
    """First and second step of ``kind`` in a fresh process with an empty inductor cache."""
    with tempfile.TemporaryDirectory(prefix="mcir-inductor-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, __file__, "--child", kind, "--batch", str(batch_size),
                              "--device", str(device)],
                             check=True, capture_output=True, text=True, env=env)
    first, second = json.loads(out.stdout.strip().splitlines()[-1])
    return {"first_s": round(first, 2), "second_s": round(second, 2), "compile_s": round(first - second, 1)}


def main() -> None:
    """Time the variants side by side and print the JSON summary last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--first_call", choices=["child", "warmup"], default="child",
                        help="child: each compiled variant's first step in a fresh process with an empty inductor "
                        "cache; warmup: the warm-up step of this process (set TORCHINDUCTOR_CACHE_DIR to an empty "
                        "folder; variants after the first reuse graphs already compiled)")
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*random.*")
    device = torch.device(args.device)
    if args.child:
        child(args.child, args.batch, device)
        return
    compiled = [k for k in args.kinds if not k.endswith("eager")]
    cold = {k: first_call(k, args.batch, device) for k in compiled} if args.first_call == "child" else {}
    print(json.dumps({"first_call": cold}), flush=True)
    batch = real_batch(args.batch)
    steps = {k: build(k, device) for k in args.kinds}
    count = {k: 0 for k in steps}

    def runner(kind: str) -> Callable[[], None]:
        def run() -> None:
            count[kind] += 1
            steps[kind](batch, count[kind])
            _sync(device)
        return run

    fns = {k: runner(k) for k in steps}
    warmup = {}
    for k, fn in fns.items():
        t0 = time.perf_counter()
        fn()  # warm-up (compiles)
        warmup[k] = time.perf_counter() - t0
    med = median_times(fns, args.repeats)
    if args.first_call == "warmup":
        cold = {k: {"first_s": round(warmup[k], 2), "compile_s": round(warmup[k] - med[k], 1)} for k in compiled}
    fallbacks = {k: m.fallback_reason for k, s in steps.items() for m in [s.train_net]
                 if isinstance(m, CompiledModule) and not m.compiled}
    ratios = {}
    if "plain_eager" in med and "plain_compiled" in med:
        ratios["plain_compiled_over_eager"] = round(med["plain_compiled"] / med["plain_eager"], 3)
    for k in ("spn_target", "spn_all"):
        if k in med and "spn_eager" in med:
            ratios[f"{k}_over_eager"] = round(med[k] / med["spn_eager"], 3)
    print(json.dumps({
        **ratios,
        "seconds": {k: round(v, 3) for k, v in med.items()},
        "first_call": cold,
        "fallbacks": fallbacks,
        "batch": args.batch,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
