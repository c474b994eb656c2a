"""Tests of the negative bank (Eq. 1): closed form, schedule, no gradients, init modes, state round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mcir.method.eq1_negatives import NegativeBank


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))


def _flat(m: nn.Module) -> torch.Tensor:
    return torch.cat([v.flatten().double() for v in m.state_dict().values() if v.is_floating_point()])


def test_closed_form_after_k_updates():
    """With a target frozen at θ after a copy-init θ0: θ'_k = w^k θ0 + (1 − w^k) θ."""
    target = _net(0)
    bank = NegativeBank(target, steps=[2], decay=0.3, init="target")
    theta0 = _flat(bank.negatives[0].module)
    with torch.no_grad():
        for p in target.parameters():
            p.mul_(-2.0).add_(0.5)
    theta = _flat(target)
    for t in range(1, 9):  # updates at t = 2, 4, 6, 8
        bank.update(target, t)
    k = 4
    expected = 0.3**k * theta0 + (1 - 0.3**k) * theta
    torch.testing.assert_close(_flat(bank.negatives[0].module), expected, rtol=1e-6, atol=1e-6)
    assert bank.negatives[0].num_updates == k


def test_closed_form_with_a_moving_target():
    """θ'_k = w θ'_{k-1} + (1 − w) θ_k for a target that changes between updates."""
    target = _net(1)
    bank = NegativeBank(target, steps=[1], decay=0.5, init="target")
    ref = _flat(target)
    for t in range(1, 5):
        with torch.no_grad():
            for p in target.parameters():
                p.add_(0.1 * t)
        bank.update(target, t)
        ref = 0.5 * ref + 0.5 * _flat(target)
    torch.testing.assert_close(_flat(bank.negatives[0].module), ref, rtol=1e-6, atol=1e-6)


def test_updates_only_at_multiples_and_steps_pair_with_decays():
    target = _net()
    bank = NegativeBank(target, steps=[2, 3, 5], decay=[0.1, 0.2, 0.3], init="target")
    updates = {i: [] for i in range(3)}
    for t in range(1, 16):
        for i in bank.update(target, t):
            updates[i].append(t)
    assert updates == {0: [2, 4, 6, 8, 10, 12, 14], 1: [3, 6, 9, 12, 15], 2: [5, 10, 15]}
    assert bank.steps == [2, 3, 5] and bank.decays == [0.1, 0.2, 0.3]


def test_start_iter_delays_updates():
    target = _net()
    bank = NegativeBank(target, steps=[2], init="target", start_iter=4)
    assert [t for t in range(1, 9) if bank.update(target, t)] == [6, 8]


def test_negatives_never_get_gradients():
    target = _net()
    bank = NegativeBank(target, steps=[1, 2])
    x = torch.rand(2, 3, 8, 8)
    out = target(x)
    negs = bank(x)
    assert negs.shape == (2, 2, 3, 8, 8) and not negs.requires_grad
    (out - negs.mean(0)).abs().mean().backward()
    assert all(p.grad is None for p in bank.parameters())
    assert all(not p.requires_grad for p in bank.parameters())
    assert all(not n.module.training for n in bank.negatives)


def test_init_target_copies_buffers():
    target = _net()
    target[1].running_mean.fill_(3.0)
    target[1].num_batches_tracked.fill_(7)
    bank = NegativeBank(target, steps=[1], init="target")
    sd = bank.negatives[0].module.state_dict()
    assert torch.equal(sd["1.running_mean"], target[1].running_mean)
    assert int(sd["1.num_batches_tracked"]) == 7
    torch.testing.assert_close(_flat(bank.negatives[0].module), _flat(target))


def test_init_blend_is_the_convex_mix():
    target = _net(0)
    fresh = _net(5)
    bank = NegativeBank(target, steps=[1], init="blend", neg_start=0.1, factory=lambda: _net(5))
    torch.testing.assert_close(_flat(bank.negatives[0].module), 0.1 * _flat(fresh) + 0.9 * _flat(target))


def test_random_fixed_never_moves():
    target = _net(0)
    bank = NegativeBank(target, steps=[1], init="random_fixed", factory=lambda: _net(9))
    before = _flat(bank.negatives[0].module)
    torch.testing.assert_close(before, _flat(_net(9)))
    assert bank.update(target, 1) == []
    torch.testing.assert_close(_flat(bank.negatives[0].module), before)


def test_pretrained_fixed_loads_weights_and_never_moves():
    target = _net(0)
    other = _net(3)
    bank = NegativeBank(target, steps=[1, 2], init="pretrained_fixed", pretrained=other.state_dict())
    for neg in bank.negatives:
        torch.testing.assert_close(_flat(neg.module), _flat(other))
    assert bank.update(target, 2) == []
    with pytest.raises(ValueError, match="pretrained"):
        NegativeBank(target, init="pretrained_fixed")


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay has 2 values for 3 steps"):
        NegativeBank(_net(), steps=[1, 2, 3], decay=[0.1, 0.2])
    with pytest.raises(ValueError, match="unknown init"):
        NegativeBank(_net(), init="ema")
    with pytest.raises(ValueError, match="positive"):
        NegativeBank(_net(), steps=[0])
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        NegativeBank(_net(), precision="fp16")


def test_bf16_negatives_are_bf16_and_close_to_fp32():
    net = _net()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    full = NegativeBank(net, steps=[1, 2], init="target")(x)
    half = NegativeBank(net, steps=[1, 2], init="target", precision="bf16")(x)
    assert full.dtype == torch.float32 and half.dtype == torch.bfloat16
    assert half.shape == full.shape
    err = (half.float() - full).abs().max() / full.abs().max()
    assert 0 < err < 2e-2  # bf16 really ran (not bit-equal) and stays within its ~3 significant digits


def test_state_round_trip_keeps_weights_and_counters():
    target = _net()
    bank = NegativeBank(target, steps=[1, 2], init="target")
    with torch.no_grad():
        target[0].weight.add_(1)
    for t in range(1, 5):
        bank.update(target, t)
    other = NegativeBank(_net(7), steps=[1, 2], init="target")
    other.load_state_dict(bank.state_dict())
    assert [n.num_updates for n in other.negatives] == [4, 2]
    for a, b in zip(bank.negatives, other.negatives):
        torch.testing.assert_close(_flat(a.module), _flat(b.module))
