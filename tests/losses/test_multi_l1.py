"""Tests of the fused mean |x − y_i| used by the SPN loss: value and gradient equal autograd's."""

from __future__ import annotations

import torch

from mcir.losses.multi_l1 import mean_abs_to_many


def test_value_and_gradient_match_broadcast_autograd():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 7, requires_grad=True)
    y = torch.randn(4, 2, 3, 5, 7)
    y[1, 0, 0, 0, 0] = x[0, 0, 0, 0].detach()  # a zero difference: sign 0, as autograd's abs
    ref = (x.unsqueeze(0) - y).abs().mean()
    (g_ref,) = torch.autograd.grad(ref, x)
    got = mean_abs_to_many(x, y)
    (g_got,) = torch.autograd.grad(got * 3.0, x)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(g_got, 3.0 * g_ref, rtol=1e-6, atol=1e-9)


def test_constants_get_no_gradient():
    x = torch.rand(1, 2, 3, requires_grad=True)
    y = torch.rand(2, 1, 2, 3, requires_grad=True)
    mean_abs_to_many(x, y).backward()
    assert x.grad is not None and y.grad is None


def test_gradient_matches_autograd_under_bf16_autocast():
    """Features made under CPU bf16 autocast (as the SPN loss sees them with ``amp: bf16``): the fused
    gradient reaching the conv's input and weights equals autograd's on the unfused expression."""
    gen = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    inp = torch.rand(2, 3, 9, 9, generator=gen)
    y = torch.randn(3, 2, 8, 9, 9, generator=gen).bfloat16()

    def grads(distance):
        conv.zero_grad()
        x_in = inp.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x = conv(x_in)
            assert x.dtype == torch.bfloat16
            value = distance(x, y)
        value.backward()
        return value.detach().float(), x_in.grad, conv.weight.grad.clone()

    got = grads(mean_abs_to_many)
    ref = grads(lambda x, y: (x.unsqueeze(0) - y).abs().mean())
    assert got[0].dtype == torch.float32 and got[0] > 0
    torch.testing.assert_close(got[0], ref[0], rtol=1e-2, atol=0)
    for g, r in zip(got[1:], ref[1:]):
        assert r.abs().max() > 0
        torch.testing.assert_close(g, r, rtol=2e-2, atol=1e-3 * float(r.abs().max()))
