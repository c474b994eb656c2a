"""Tests of OptimStep through TrainStep: accumulation, autocast, fp16 scaling, skipped steps, channels-last."""

from __future__ import annotations

import copy
import functools

import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.core.optim_step import OptimStep, check_amp
from mcir.engine.train_step import TrainStep
from mcir.losses.pixel_loss import L1Loss
from mcir.models.restoration_model import RestorationModel


def _model(amp: str = "off", accumulate: int = 1, channels_last: bool = False, seed: int = 0,
           optimizer: type = torch.optim.Adam) -> TrainStep:
    torch.manual_seed(seed)
    net = EDSR(num_feat=8, num_block=1, upscale=2)  # no batch-dependent layers
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = optimizer(net.parameters(), lr=1e-2)
    step = OptimStep(opt, net.parameters(), amp=amp, accumulate_steps=accumulate)
    return TrainStep(RestorationModel(net, L1Loss()), step, torch.device("cpu"), channels_last=channels_last)


def _batch(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"lq": torch.rand(n, 3, 8, 8, generator=g), "gt": torch.rand(n, 3, 16, 16, generator=g)}


def _params(step: TrainStep) -> dict:
    return {k: v.detach().clone() for k, v in step.model.net_g.state_dict().items()}


def test_accumulating_two_halves_equals_one_double_batch():
    whole, halves = _model(), _model(accumulate=2)
    start = _params(whole)
    for it in (1, 2, 3):
        b = _batch(4, seed=it)
        logs_whole = whole(b, it)
        parts = [{k: v[:2] for k, v in b.items()}, {k: v[2:] for k, v in b.items()}]
        logs_halves = halves(parts, it)
        torch.testing.assert_close(logs_halves["l_pix"], logs_whole["l_pix"], rtol=1e-6, atol=1e-7)
    end_whole, end_halves = _params(whole), _params(halves)
    assert not torch.equal(start["conv_first.weight"], end_whole["conv_first.weight"])
    for k in end_whole:
        torch.testing.assert_close(end_halves[k], end_whole[k], rtol=1e-5, atol=1e-6)


def test_wrong_number_of_micro_batches_is_an_error():
    with pytest.raises(ValueError, match="accumulate_steps is 2"):
        _model(accumulate=2)(_batch(2, 0), 1)


def test_bf16_training_runs_under_autocast_and_loss_decreases():
    model = _model(amp="bf16")
    seen = []
    model.model.net_g.conv_first.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    b = _batch(4, 0)
    losses = [float(model(b, it)["l_pix"]) for it in range(1, 31)]
    assert seen[0] == torch.bfloat16  # the convolutions really ran in bf16
    assert all(p.dtype == torch.float32 for p in model.model.net_g.parameters())  # master weights stay float32
    assert losses[-1] < 0.7 * losses[0]


def test_fp16_scaler_state_resumes_exactly():
    a = _model(amp="fp16")
    assert a.optim.scaler is not None
    for it in (1, 2):
        a(_batch(2, it), it)
    state = copy.deepcopy(a.state_dict())
    assert state["optim_step"]["scaler"]["scale"] > 0
    b = _model(amp="fp16", seed=1)
    b.load_state_dict(state)
    for it in (3, 4):
        a(_batch(2, it), it)
        b(_batch(2, it), it)
    for k, v in _params(a).items():
        assert torch.equal(v, _params(b)[k])
    assert a.optim.scaler.get_scale() == b.optim.scaler.get_scale()


FusedAdam = functools.partial(torch.optim.Adam, fused=True)


@pytest.mark.parametrize("amp,optimizer", [("off", torch.optim.Adam), ("fp16", torch.optim.Adam), ("off", FusedAdam)])
def test_non_finite_gradients_skip_the_step_and_are_counted(amp, optimizer):
    model = _model(amp=amp, optimizer=optimizer)
    assert model.optim.skips_on_device == (optimizer is FusedAdam)
    model(_batch(2, 0), 1)
    before = _params(model)
    bad = _batch(2, 1)
    bad["lq"][0, 0, 0, 0] = float("nan")  # NaN activations give NaN gradients (a NaN target would give zeros)
    scale = model.optim.scaler.get_scale() if amp == "fp16" else None
    model(bad, 2)
    for k, v in _params(model).items():
        assert torch.equal(v, before[k]), f"{k} changed on a skipped step"
    assert model.skipped_steps == 1
    assert model.state_dict()["optim_step"]["skipped_steps"] == 1
    if amp == "fp16":
        assert model.optim.scaler.get_scale() < scale  # the scaler backs off
    model(_batch(2, 2), 3)  # and training goes on
    assert not torch.equal(_params(model)["conv_first.weight"], before["conv_first.weight"])
    fresh = _model(amp=amp, optimizer=optimizer)
    fresh.load_state_dict(model.state_dict())
    assert fresh.skipped_steps == 1


def _no_host_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("a tensor value was read on the host")

    for name in ("__bool__", "__float__", "__int__", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, refuse)


def test_a_fused_optimizer_skips_on_the_device_as_if_the_step_never_happened(monkeypatch):
    skipped, clean = _model(optimizer=FusedAdam), _model(optimizer=FusedAdam)
    bad = _batch(2, 1)
    bad["lq"][0, 0, 0, 0] = float("nan")
    with monkeypatch.context() as m:
        _no_host_reads(m)  # the whole step, the NaN one included, reads nothing on the host
        skipped(_batch(2, 0), 1)
        skipped(bad, 2)
        skipped(_batch(2, 2), 3)
    clean(_batch(2, 0), 1)
    clean(_batch(2, 2), 3)  # iteration 3 here too: the warm-up factor and the schedule see the same iteration
    for k, v in _params(clean).items():
        assert torch.equal(_params(skipped)[k], v), k
    steps = [s["step"] for s in skipped.optim.optimizer.state_dict()["state"].values()]
    assert all(float(x) == 2 for x in steps)  # Adam's step count did not advance on the skipped step
    assert skipped.skipped_steps == 1 and clean.skipped_steps == 0


def test_an_unfused_optimizer_reads_the_gradient_norm_on_the_host(monkeypatch):
    model = _model()
    assert not model.optim.skips_on_device
    _no_host_reads(monkeypatch)
    with pytest.raises(AssertionError, match="read on the host"):
        model(_batch(2, 0), 1)


def test_channels_last_trains_like_contiguous():
    # SGD: Adam would magnify float-level differences of near-zero gradients into whole steps.
    plain, nhwc = _model(optimizer=torch.optim.SGD), _model(channels_last=True, optimizer=torch.optim.SGD)
    assert nhwc.model.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    nhwc.model.net_g.conv_first.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    for it in (1, 2):
        plain(_batch(2, it), it)
        nhwc(_batch(2, it), it)
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    for k, v in _params(plain).items():
        torch.testing.assert_close(_params(nhwc)[k], v, rtol=1e-5, atol=1e-6)


def test_check_amp():
    check_amp("off", "cpu")
    check_amp("bf16", "cpu")
    check_amp("fp16", "cpu")  # CPU autocast supports float16 in this torch
    with pytest.raises(ValueError, match="must be one of off, bf16, fp16"):
        check_amp("fp8", "cpu")
