"""The SPN loss and the fused multi-L1 under autocast (float32 results, finite gradients); an MCIR bf16 step."""

from __future__ import annotations

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.method.eq1_negatives import NegativeBank
from mcir.core.optim_step import OptimStep
from mcir.engine.train_step import TrainStep
from mcir.losses.multi_l1 import mean_abs_to_many
from mcir.losses.pixel_loss import L1Loss
from mcir.method.eq2_4_spn import SPNLoss
from mcir.models.mcir_model import MCIRModel

pytestmark = pytest.mark.filterwarnings("ignore:VGGFeatureExtractor")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_multi_l1_sums_half_inputs_in_float32(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 8, 16, 16, generator=g)
    y = torch.rand(3, 2, 8, 16, 16, generator=g)
    xh = x.to(dtype).requires_grad_()
    value = mean_abs_to_many(xh, y.to(dtype))
    assert value.dtype == torch.float32
    exact = (xh.detach().float().unsqueeze(0) - y.to(dtype).float()).abs().mean()
    torch.testing.assert_close(value, exact, rtol=1e-3, atol=0)  # differences are rounded to the input dtype
    value.backward()
    assert xh.grad.dtype == dtype and torch.isfinite(xh.grad).all()


@pytest.mark.parametrize("criterion", ["l1", "l2"])
def test_spn_distance_under_bf16_autocast_is_float32_and_close(criterion):
    torch.manual_seed(0)
    loss = SPNLoss(vgg_weights="random", criterion=criterion)
    out = torch.rand(2, 3, 32, 32, requires_grad=True)
    neg = torch.rand(2, 2, 3, 32, 32)
    ref = loss.distance(out, neg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = loss.distance(out, neg)
    assert d.dtype == torch.float32
    torch.testing.assert_close(d, ref, rtol=2e-2, atol=0)  # bf16 VGG features: ~3 significant digits
    d.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_mcir_step_in_bf16():
    torch.manual_seed(0)
    net = EDSR(num_feat=8, num_block=1, upscale=2)
    model = MCIRModel(
        net,
        negatives=NegativeBank(net, steps=[1, 2], init="blend"),
        spn=SPNLoss(loss_weight=1e-2, vgg_weights="random"),
        pixel_loss=L1Loss(),
    )
    optim = OptimStep(torch.optim.Adam(net.parameters(), lr=1e-3), net.parameters(), amp="bf16")
    step = TrainStep(model, optim, torch.device("cpu"))
    before = net.conv_first.weight.detach().clone()
    batch = {"lq": torch.rand(2, 3, 12, 12), "gt": torch.rand(2, 3, 24, 24)}
    logs = step(batch, 1)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in logs.values())
    assert float(logs["l_neg"]) > 0 and step.skipped_steps == 0
    assert not torch.equal(before, net.conv_first.weight)
