"""TrainStep with a watching guard and a fused optimizer: each step is judged one step late, nothing lost.

The fused tests also run on CUDA when one is present (the pinned, event-timed copy of the losses is only
taken there); on this project's CPU machines they run on the CPU only.
"""

from __future__ import annotations

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.core.optim_step import OptimStep
from mcir.engine.guard import LossNotFinite, StepGuard
from mcir.engine.train_step import TrainStep
from mcir.losses.pixel_loss import L1Loss
from mcir.models.restoration_model import RestorationModel


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def _step(fused: bool, device: str = "cpu") -> TrainStep:
    torch.manual_seed(0)
    net = EDSR(num_feat=8, num_block=1, upscale=2).to(device)
    optim = OptimStep(torch.optim.Adam(net.parameters(), lr=1e-2, fused=fused), net.parameters(),
                      device_type=device)
    return TrainStep(RestorationModel(net, L1Loss()), optim, torch.device(device), guard=StepGuard("watch", 1.5))


def _batch(seed: int, gt_value: float = None, nan_input: bool = False) -> dict:
    g = torch.Generator().manual_seed(seed)
    b = {"lq": torch.rand(2, 3, 8, 8, generator=g), "gt": torch.rand(2, 3, 16, 16, generator=g)}
    if gt_value is not None:
        b["gt"].fill_(gt_value)
    if nan_input:
        b["lq"][0, 0, 0, 0] = float("nan")  # NaN activations: NaN gradients too
    return b


def _weights(step: TrainStep) -> dict:
    return {k: v.clone() for k, v in step.model.net_g.state_dict().items()}


@pytest.mark.parametrize("device", DEVICES)
def test_a_non_finite_step_stops_the_run_one_step_later_with_its_update_skipped(device: str):
    step = _step(fused=True, device=device)
    step(_batch(0), 1)
    before = _weights(step)
    step(_batch(1, nan_input=True), 2)  # not judged yet: the run goes on, the optimizer skipped it on the device
    for k, v in _weights(step).items():
        assert torch.equal(v, before[k]), k
    with pytest.raises(LossNotFinite, match="not finite at iteration 2"):
        step(_batch(2), 3)
    for k, v in _weights(step).items():  # and iteration 3 was not applied either
        assert torch.equal(v, before[k]), k
    assert step.skipped_steps == 1


def test_an_unfused_optimizer_judges_the_step_at_once():
    step = _step(fused=False)
    step(_batch(0), 1)
    with pytest.raises(LossNotFinite, match="not finite at iteration 2"):
        step(_batch(1, nan_input=True), 2)


@pytest.mark.parametrize("device", DEVICES)
def test_flush_judges_the_last_step_and_the_guard_ends_as_an_immediate_one(device: str):
    step = _step(fused=True, device=device)
    losses = []
    for it, b in enumerate([_batch(0), _batch(1), _batch(2), _batch(3), _batch(4, gt_value=30.0)], start=1):
        losses.append(step(b, it)["l_pix"])
    assert step.suspicious_steps == 0  # the exploding last step is still on its way
    step.flush()
    assert step.suspicious_steps == 1
    reference = StepGuard("watch", 1.5)
    for loss in losses:
        reference.check(loss.cpu(), loss.cpu())
    assert step.guard.state_dict() == reference.state_dict()
    step.flush()  # nothing pending: no second verdict
    assert step.guard.state_dict() == reference.state_dict()


@pytest.mark.parametrize("device", DEVICES)
def test_the_saved_state_includes_the_last_step_s_verdict(device: str):
    step = _step(fused=True, device=device)
    step(_batch(0), 1)
    step(_batch(1, gt_value=30.0), 2)  # exploding, still pending
    assert step.state_dict()["guard"]["suspicious"] == 1


@pytest.mark.parametrize("device", DEVICES)
def test_a_non_finite_last_step_is_reported_by_flush(device: str):
    step = _step(fused=True, device=device)
    step(_batch(0), 1)
    step(_batch(1, nan_input=True), 2)
    with pytest.raises(LossNotFinite, match="iteration 2"):
        step.flush()
