"""Tests of AveragedModel: the update rule, its schedule, buffers and state round trip."""

from __future__ import annotations

import torch
from torch import nn

from mcir.core.averaged_model import AveragedModel


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_update_matches_formula_and_averages_buffers():
    net = _net()
    avg = AveragedModel(net, decay=0.9)
    before = {k: v.clone() for k, v in avg.module.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.add_(2.0)
    assert avg.update(net, step=1)
    for k, v in avg.module.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * net.state_dict()[k])
    assert avg.module[1].num_batches_tracked == net[1].num_batches_tracked


def test_update_only_at_multiples_and_after_start():
    net = _net()
    avg = AveragedModel(net, decay=0.5, update_every=3, start_step=4)
    done = [s for s in range(1, 13) if avg.update(net, s)]
    assert done == [6, 9, 12]
    assert avg.num_updates == 3


def test_frozen_eval_and_no_grad():
    avg = AveragedModel(_net(), decay=0.5)
    avg.train()
    assert not avg.module.training
    assert all(not p.requires_grad for p in avg.parameters())


def test_state_dict_round_trip_keeps_counter():
    net = _net()
    avg = AveragedModel(net, decay=0.5)
    avg.update(net, 1)
    avg.update(net, 2)
    other = AveragedModel(_net(), decay=0.5)
    other.load_state_dict(avg.state_dict())
    assert other.num_updates == 2
    for a, b in zip(avg.state_dict().values(), other.state_dict().values()):
        torch.testing.assert_close(a, b)
