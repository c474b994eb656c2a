"""The training loop with a fused optimizer: the guard's one-step-late verdicts reach the logs and the saves."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.core.optim_step import OptimStep
from mcir.data import EnlargedSampler
from mcir.engine.checkpointer import Checkpointer
from mcir.engine.guard import LossNotFinite, StepGuard
from mcir.engine.logger import TensorBoardWriter
from mcir.engine.train_step import TrainStep
from mcir.engine.trainer import Schedule, Trainer
from mcir.losses.pixel_loss import L1Loss
from mcir.models.restoration_model import RestorationModel


class _Samples(torch.utils.data.Dataset):
    """The batches' samples, in order (the loader batches them back, two by two)."""

    def __init__(self, batches: List[Dict[str, torch.Tensor]]):
        self.samples = [{k: v[j] for k, v in b.items()} for b in batches for j in range(2)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Dict[str, torch.Tensor]:
        return self.samples[i]


def _batches(nan_at: int, exploding_at: int, n: int) -> List[Dict[str, torch.Tensor]]:
    out = []
    for i in range(1, n + 1):
        g = torch.Generator().manual_seed(i)
        b = {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}
        if i == nan_at:
            b["lq"][0, 0, 0, 0] = float("nan")
        if i == exploding_at:
            b["gt"].fill_(30.0)
        out.append(b)
    return out


def _trainer(tmp_path: Path, batches: List[Dict[str, torch.Tensor]], print_freq: int, logger: logging.Logger,
             save_freq: int = 0) -> Trainer:
    torch.manual_seed(0)
    net = EDSR(num_feat=8, num_block=1, upscale=2)
    optim = OptimStep(torch.optim.Adam(net.parameters(), lr=1e-2, fused=True), net.parameters())
    assert optim.skips_on_device
    step = TrainStep(RestorationModel(net, L1Loss()), optim, torch.device("cpu"), guard=StepGuard("watch", 1.5))
    data = _Samples(batches)
    loader = torch.utils.data.DataLoader(data, batch_size=2, sampler=EnlargedSampler(data, 1, 0, shuffle=False))
    schedule = Schedule(total_iter=len(batches), print_freq=print_freq, val_freq=0, save_checkpoint_freq=save_freq)
    return Trainer(step, loader, schedule, Checkpointer(tmp_path / "models", tmp_path / "states"), logger,
                   TensorBoardWriter(None), progress=False)


@pytest.mark.parametrize("nan_at, save_freq", [(3, 0), (2, 2)], ids=["last iteration", "a save's iteration"])
def test_a_non_finite_step_due_for_a_save_stops_the_run_and_its_state_is_saved(tmp_path, nan_at, save_freq):
    trainer = _trainer(tmp_path, _batches(nan_at=nan_at, exploding_at=0, n=4 if save_freq else 3), print_freq=100,
                       logger=logging.getLogger("mcir.test.trainer"), save_freq=save_freq)
    with pytest.raises(LossNotFinite, match=f"iteration {nan_at}"):
        trainer.run()
    state = torch.load(tmp_path / "states" / f"{nan_at}.state", weights_only=False)
    assert state["iteration"] == nan_at
    assert state["model"]["guard"]["suspicious"] == 1


def test_the_log_line_counts_the_step_it_closes(tmp_path, caplog):
    logger = logging.getLogger("mcir.test.trainer.log")
    trainer = _trainer(tmp_path, _batches(nan_at=0, exploding_at=2, n=4), print_freq=2, logger=logger)
    with caplog.at_level(logging.INFO, logger=logger.name):
        trainer.run()
    lines = [r.getMessage() for r in caplog.records if "suspicious" in r.getMessage()]
    assert lines, [r.getMessage() for r in caplog.records]
    assert "iter 2]" in lines[0] and "suspicious steps: 1" in lines[0], lines[0]
