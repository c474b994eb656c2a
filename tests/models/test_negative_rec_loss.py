"""MCIR with a reconstruction loss that is negative by design (PSNRLoss = −PSNR): guard and adaptive λ."""

from __future__ import annotations

import pytest
import torch

from mcir.archs.nafnet_arch import NAFNet
from mcir.core.optim_step import OptimStep
from mcir.engine.train_step import TrainStep
from mcir.losses.psnr_loss import PSNRLoss
from mcir.method.eq1_negatives import NegativeBank
from mcir.method.eq2_4_spn import SPNLoss
from mcir.models.mcir_model import MCIRModel
from mcir.engine.guard import StepGuard

pytestmark = pytest.mark.filterwarnings("ignore:.*random.*:UserWarning")


def test_guard_accepts_ordinary_steps_of_a_negative_loss_and_still_flags_a_jump():
    guard = StepGuard("skip", explode_factor=10, patience=3)
    for value in (-30.0, -31.0, -29.5, -32.0):  # PSNRLoss values around 30 dB: all fine
        assert guard.check(torch.tensor(value), torch.tensor(value)) == "ok"
    level = guard.rec_level
    assert level < 0
    jump = level + 9 * abs(level) + 1.0  # above level + (factor − 1)·|level|
    assert guard.check(torch.tensor(jump), torch.tensor(jump)) == "exploding"
    # positive losses keep the plain "factor × level" rule
    pos = StepGuard("skip", explode_factor=5)
    assert pos.check(torch.tensor(1.0), torch.tensor(1.0)) == "ok"
    assert pos.check(torch.tensor(4.9), torch.tensor(4.9)) == "ok"
    assert pos.check(torch.tensor(5.0 * pos.rec_level + 0.01), torch.tensor(0.0)) == "ok"  # only l_rec counts
    assert pos.check(torch.tensor(1.0), torch.tensor(5.0 * pos.rec_level + 0.01)) == "exploding"


def test_nafnet_with_psnr_loss_trains_under_mcir_with_a_positive_adaptive_lambda():
    torch.manual_seed(0)
    net = NAFNet(width=4, middle_blk_num=1, enc_blk_nums=[1], dec_blk_nums=[1])
    model = MCIRModel(
        net,
        negatives=NegativeBank(net, steps=[1, 2], init="target"),
        spn=SPNLoss(loss_weight=1e-4, vgg_weights="random"),
        neg_ratio=0.05,
        pixel_loss=PSNRLoss(),
    )
    optim = OptimStep(torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.9)), net.parameters())
    step = TrainStep(model, optim, torch.device("cpu"), guard=StepGuard("skip", explode_factor=10, patience=2))
    gen = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 17, 19, generator=gen)
    batch = {"lq": (gt + 0.1 * torch.randn(2, 3, 17, 19, generator=gen)).clamp(0, 1), "gt": gt}
    for it in range(1, 4):
        logs = step(batch, it)
        assert float(logs["l_rec"]) < 0  # −PSNR
        assert step.guard.bad_in_a_row == 0, f"iteration {it} was judged bad"
    assert float(logs["lambda"]) > 0 and float(logs["l_neg"]) > 0
    assert float(logs["neg_ratio"]) == pytest.approx(0.05, rel=1e-4)
