"""Tests of the LR schedulers and the warm-up applied by OptimStep."""

from __future__ import annotations

import math

import pytest
import torch

from mcir.core.optim_step import OptimStep
from mcir.core.schedulers import CosineAnnealingRestartCyclicLR, CosineAnnealingRestartLR, MultiStepRestartLR


def _lrs(sched_fn, n):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = sched_fn(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out, opt, sched


def test_multistep_restart():
    lrs, _, _ = _lrs(lambda o: MultiStepRestartLR(o, [2, 4], gamma=0.5), 6)
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_cosine_restart_values():
    lrs, _, _ = _lrs(lambda o: CosineAnnealingRestartLR(o, [4, 4], [1.0, 0.5], eta_min=0.0), 9)
    assert lrs[0] == 1.0
    assert lrs[2] == pytest.approx(0.5)
    assert lrs[4] == pytest.approx(0.5)  # restart at half weight
    assert lrs[6] == pytest.approx(0.25)


def test_cosine_restart_cyclic_has_one_minimum_per_period():
    # Restormer's two-cycle recipe in small: LR held at the base for 4 steps (eta_min = base), then cosine to 0.01.
    lrs, _, _ = _lrs(lambda o: CosineAnnealingRestartCyclicLR(o, [4, 4], [1, 1], eta_mins=[1.0, 0.01]), 9)
    assert lrs[:5] == pytest.approx([1.0] * 5)
    assert lrs[6] == pytest.approx(0.01 + 0.99 * 0.5)
    assert lrs[8] == pytest.approx(0.01)


def test_scheduler_resume_is_exact():
    full, _, _ = _lrs(lambda o: CosineAnnealingRestartLR(o, [10], eta_min=0.1), 8)
    _, opt, sched = _lrs(lambda o: CosineAnnealingRestartLR(o, [10], eta_min=0.1), 5)
    state = sched.state_dict()
    p = torch.nn.Parameter(torch.zeros(1))
    opt2 = torch.optim.SGD([p], lr=1.0)
    sched2 = CosineAnnealingRestartLR(opt2, [10], eta_min=0.1)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    rest = []
    for _ in range(3):
        rest.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    assert rest == full[5:8]


def test_warmup_scales_only_during_the_step():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    step = OptimStep(opt, [p], warmup_iter=4)
    step.step((p * 1.0).sum(), iteration=1)  # grad 1, lr 1 * 1/4
    assert p.item() == pytest.approx(-0.25)
    assert opt.param_groups[0]["lr"] == 1.0
    assert step.current_lr(2) == 0.5 and step.current_lr(4) == 1.0


def test_clip_grad_norm():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=1.0)
    norm = OptimStep(opt, [p], clip_grad_norm=1.0).step((p * torch.tensor([3.0, 4.0])).sum(), iteration=1)
    assert norm == pytest.approx(5.0)
    assert p.detach().tolist() == pytest.approx([-0.6, -0.8])


def _official_cyclic(it, periods, weights, eta_mins, base=1.0):
    """Restormer's CosineAnnealingRestartCyclicLR.get_lr at last_epoch = it, written out (basicsr/models/lr_scheduler.py)."""
    cumulative = [sum(periods[: i + 1]) for i in range(len(periods))]
    idx = next(i for i, c in enumerate(cumulative) if it <= c)
    start = 0 if idx == 0 else cumulative[idx - 1]
    return eta_mins[idx] + weights[idx] * 0.5 * (base - eta_mins[idx]) * (1 + math.cos(math.pi * (it - start) / periods[idx]))


def test_cyclic_cosine_matches_restormer_including_the_boundary_step():
    periods, weights, eta_mins = [4, 6], [1.0, 0.5], [1.0, 0.01]  # Restormer's shape: flat, then annealed
    lrs, _, _ = _lrs(lambda o: CosineAnnealingRestartCyclicLR(o, periods, weights, eta_mins), 10)
    assert lrs == pytest.approx([_official_cyclic(t, periods, weights, eta_mins) for t in range(10)], abs=1e-12)
    assert lrs[:5] == pytest.approx([1.0] * 5)  # t = 4 (= the first period's end) is still in period 0
    assert lrs[5] < 0.5 and lrs[9] > 0.01


def test_cyclic_cosine_keeps_the_last_minimum_after_the_end():
    lrs, _, _ = _lrs(lambda o: CosineAnnealingRestartCyclicLR(o, [2, 3], [1.0, 1.0], [0.5, 0.1]), 9)
    assert lrs[5] == pytest.approx(0.1) and lrs[8] == pytest.approx(0.1)


def test_cyclic_cosine_rejects_mismatched_lengths():
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ValueError, match="same length"):
        CosineAnnealingRestartCyclicLR(torch.optim.SGD([p], lr=1.0), [2, 3], [1.0, 1.0], [0.5])
