"""Training-step costs on an accelerator, side by side in one run: the trainer's overhead, the SPN step, AMP.

Measured on CUDA (synchronised around every timed call; medians of interleaved repeats; peak memory from
``torch.cuda.max_memory_allocated``, reset before each variant), EDSR-light x4 (64 features, 16 blocks),
batch 16, LR patch 48, Adam, real T91 crops:

* ``bare``: a hand-written loop (forward, L1, backward, step) vs ``trainer``: mcir's ``Trainer`` with a
  ``TrainStep`` as train.py builds it (the guard watching every step, logging every ``--print_freq``);
  ``bare_synced``: the bare loop reading its loss on the host every step (one sync, as BasicSR's per-step
  loss reduction does); ``trainer_unguarded``: the trainer without the guard (the optimizer step's
  non-finite-gradient check still reads one value on the host every step); ``bare_fused`` /
  ``trainer_fused``: both with ``Adam(fused=True)``, where mcir's step skips non-finite updates on the device
  and its watching guard reads each step's losses one step late (no host read inside the step).
* ``baseline`` / ``spn`` / ``spn_bf16`` / ``published``: one step each, as ``benchmarks/spn_step.py`` defines
  them (N = 4 negatives, VGG16 to relu3_3, random VGG weights: the speed does not depend on them).
* ``amp_off`` / ``amp_bf16``: the plain step without and with bf16 autocast.

The last line printed is a JSON object with the ratios and the raw numbers. ``--device cpu --quick`` runs
a seconds-long version of the same code on the CPU (to check the script, not to report).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import t91_pairs  # noqa: E402
from benchmarks.spn_step import PublishedStyleModel  # noqa: E402
from mcir.archs.edsr_arch import EDSR  # noqa: E402
from mcir.core.optim_step import OptimStep  # noqa: E402
from mcir.data import EnlargedSampler  # noqa: E402
from mcir.engine.checkpointer import Checkpointer  # noqa: E402
from mcir.engine.guard import StepGuard  # noqa: E402
from mcir.engine.logger import TensorBoardWriter  # noqa: E402
from mcir.engine.train_step import TrainStep  # noqa: E402
from mcir.engine.trainer import Schedule, Trainer  # noqa: E402
from mcir.losses.pixel_loss import L1Loss  # noqa: E402
from mcir.method.eq1_negatives import NegativeBank  # noqa: E402
from mcir.method.eq2_4_spn import SPNLoss  # noqa: E402
from mcir.models.mcir_model import MCIRModel  # noqa: E402
from mcir.models.restoration_model import RestorationModel  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_medians(fns: Dict[str, Callable[[], None]], repeats: int, device: torch.device) -> Dict[str, float]:
    """Median seconds of each function, interleaved, synchronised before and after each call."""
    samples: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            samples[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def make_step(kind: str, device: torch.device, amp: str = "off", guard: bool = True,
              fused: bool = False) -> TrainStep:
    """A fresh training step of one kind, on ``device`` (same seed, same weights)."""
    torch.manual_seed(0)
    net = EDSR(num_feat=64, num_block=16, upscale=4).to(device)
    adam = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99), fused=fused or None)
    optim = OptimStep(adam, net.parameters(), amp=amp, device_type=device.type)
    if kind == "baseline":
        model: RestorationModel = RestorationModel(net, L1Loss())
    else:
        precision = "bf16" if kind == "spn_bf16" else "fp32"
        bank = NegativeBank(net, steps=[100, 200, 500, 1000], decay=0.1, init="blend", precision=precision)
        cls = PublishedStyleModel if kind == "published" else MCIRModel
        model = cls(net, negatives=bank, spn=SPNLoss(loss_weight=1e-4, vgg_weights="random"), pixel_loss=L1Loss())
    return TrainStep(model, optim, device, guard=StepGuard() if guard else None)


def trainer_overhead(batches: List[Dict[str, torch.Tensor]], device: torch.device, repeats: int,
                     print_freq: int) -> Dict[str, float]:
    """Seconds per step of a bare loop and of mcir's Trainer over the same in-memory batches."""
    data = [{k: v.to(device) for k, v in b.items()} for b in batches]
    steps = len(data)
    tmp = tempfile.mkdtemp()
    quiet = logging.getLogger("mcir.bench.gpu")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False

    class OnDevice(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return steps

        def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
            return data[i]

    def loader() -> torch.utils.data.DataLoader:
        ds = OnDevice()
        return torch.utils.data.DataLoader(ds, batch_size=None, sampler=EnlargedSampler(ds, 1, 0, shuffle=False))

    def bare_loop(synced: bool, fused: bool = False) -> None:
        torch.manual_seed(0)
        net = EDSR(num_feat=64, num_block=16, upscale=4).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99), fused=fused or None)
        for b in loader():
            loss = torch.nn.functional.l1_loss(net(b["lq"]), b["gt"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if synced:
                loss.item()  # one host sync per step, as a loop that logs its loss every step has

    def trainer_loop(guarded: bool, fused: bool = False) -> None:
        step = make_step("baseline", device, guard=guarded, fused=fused)
        loop = Trainer(step, _BatchOne(loader()), Schedule(total_iter=steps, print_freq=print_freq, val_freq=0,
                                                           save_checkpoint_freq=0),
                       Checkpointer(f"{tmp}/m", f"{tmp}/s"), quiet, TensorBoardWriter(None), progress=False)
        loop.run()

    fns = {"bare": lambda: bare_loop(False), "bare_synced": lambda: bare_loop(True),
           "trainer": lambda: trainer_loop(True), "trainer_unguarded": lambda: trainer_loop(False),
           "bare_fused": lambda: bare_loop(False, fused=True), "trainer_fused": lambda: trainer_loop(True, fused=True)}
    for fn in fns.values():
        fn()  # warm-up
    med = timed_medians(fns, repeats, device)
    return {k: v / steps for k, v in med.items()}


class _BatchOne:
    """A loader of single pre-made batches that looks like a training DataLoader to the trainer."""

    def __init__(self, loader: torch.utils.data.DataLoader):
        self.loader = loader
        self.sampler = loader.sampler
        self.batch_size = 1

    def __iter__(self):
        return iter(self.loader)


def step_costs(batch: Dict[str, torch.Tensor], device: torch.device, repeats: int) -> Dict[str, Dict[str, float]]:
    """Seconds and peak memory (MiB) of one step of each kind."""
    kinds = {k: make_step(k, device) for k in ("baseline", "spn", "spn_bf16", "published")}
    kinds["amp_bf16"] = make_step("baseline", device, amp="bf16")
    it = {k: 0 for k in kinds}

    def runner(kind: str) -> Callable[[], None]:
        def run() -> None:
            it[kind] += 1
            kinds[kind](batch, it[kind])
        return run

    peak: Dict[str, float] = {}
    for k in kinds:
        runner(k)()  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            runner(k)()
            peak[k] = torch.cuda.max_memory_allocated(device) / 2**20
    med = timed_medians({k: runner(k) for k in kinds}, repeats, device)
    return {"seconds": med, "peak_mib": peak}


def main() -> None:
    """Run everything and print the JSON summary last."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=50, help="steps per timed trainer / bare run")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--print_freq", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    p.add_argument("--overhead_only", action="store_true", help="only the trainer-vs-bare loops")
    args = p.parse_args()
    warnings.filterwarnings("ignore", message=".*random.*")
    device = torch.device(args.device)
    if args.quick:
        args.repeats, args.steps, args.batch = 1, 2, 2
    pairs = t91_pairs(args.batch * args.steps, gt_size=192, scale=4)
    batches = [{k: torch.stack([p[k] for p in pairs[i:i + args.batch]]) for k in ("lq", "gt")}
               for i in range(0, len(pairs), args.batch)]
    overhead = trainer_overhead(batches, device, args.repeats, args.print_freq)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "trainer_over_bare": overhead["trainer"] / overhead["bare"],
        "trainer_over_bare_synced": overhead["trainer"] / overhead["bare_synced"],
        "unguarded_trainer_over_bare": overhead["trainer_unguarded"] / overhead["bare"],
        "fused_trainer_over_fused_bare": overhead["trainer_fused"] / overhead["bare_fused"],
        "seconds_per_step": {f"loop_{k}": round(v, 5) for k, v in overhead.items()},
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
    }
    if not args.overhead_only:
        batch = {k: v.to(device) for k, v in batches[0].items()}
        costs = step_costs(batch, device, args.repeats)
        s = costs["seconds"]
        result.update({
            "spn_over_baseline": s["spn"] / s["baseline"],
            "published_style_over_spn": s["published"] / s["spn"],
            "published_style_over_spn_bf16": s["published"] / s["spn_bf16"],
            "amp_bf16_speedup": s["baseline"] / s["amp_bf16"],
            "peak_mib": {k: round(v) for k, v in costs["peak_mib"].items()},
        })
        result["seconds_per_step"].update({k: round(v, 5) for k, v in s.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
