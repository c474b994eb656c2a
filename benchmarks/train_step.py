"""Training-step time of mcir's Trainer vs a bare hand-written PyTorch loop doing the same work.

EDSR-light x4 (64 features, 16 blocks), batch 16, LR patch 48, Adam, L1, on the CPU. Both loops read the
same in-memory batches through the same DataLoader; the mcir side runs ``Trainer.run`` (RestorationModel,
OptimStep, logging, progress bookkeeping), without EMA, scheduler, validation or checkpoints, which the
bare loop would not do either. Prints a JSON line with the median seconds per step and the ratio.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import median_times, t91_pairs  # noqa: E402
from mcir.archs.edsr_arch import EDSR  # noqa: E402
from mcir.data import EnlargedSampler  # noqa: E402
from mcir.engine.checkpointer import Checkpointer  # noqa: E402
from mcir.engine.logger import TensorBoardWriter  # noqa: E402
from mcir.core.optim_step import OptimStep  # noqa: E402
from mcir.engine.trainer import Schedule, Trainer  # noqa: E402
from mcir.losses.pixel_loss import L1Loss  # noqa: E402
from mcir.engine.guard import StepGuard  # noqa: E402
from mcir.engine.train_step import TrainStep  # noqa: E402
from mcir.models.restoration_model import RestorationModel  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class InMemory(Dataset):
    """Pre-cropped real training pairs (T91, LR made with MATLAB bicubic)."""

    def __init__(self, n: int):
        self.items = t91_pairs(n, gt_size=192, scale=4)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def main() -> None:
    """Run the comparison and print the JSON result as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (median reported)")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = InMemory(args.batch * args.steps)

    def loader() -> DataLoader:
        return DataLoader(data, batch_size=args.batch, sampler=EnlargedSampler(data, 1, 0), drop_last=True)

    def bare() -> None:
        net = EDSR(num_feat=64, num_block=16, upscale=4)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
        for batch in loader():
            out = net(batch["lq"])
            loss = torch.nn.functional.l1_loss(out, batch["gt"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    tmp = tempfile.mkdtemp()
    quiet = logging.getLogger("mcir.bench")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False

    def mcir() -> None:
        net = EDSR(num_feat=64, num_block=16, upscale=4)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.99))
        # as train.py builds it: the default guard watches every step
        step = TrainStep(RestorationModel(net, L1Loss()), OptimStep(opt, net.parameters()), torch.device("cpu"),
                         guard=StepGuard())
        trainer = Trainer(step, loader(), Schedule(total_iter=args.steps, print_freq=2, val_freq=0,
                                                     save_checkpoint_freq=0),
                          Checkpointer(f"{tmp}/m", f"{tmp}/s"), quiet, TensorBoardWriter(None), progress=False)
        trainer.run()

    bare()  # warm-up (allocator, thread pools)
    med = median_times({"bare": bare, "mcir": mcir}, args.repeats)
    result = {
        "bare_s_per_step": med["bare"] / args.steps,
        "mcir_s_per_step": med["mcir"] / args.steps,
        "mcir_over_bare": med["mcir"] / med["bare"],
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "repeats": args.repeats,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
