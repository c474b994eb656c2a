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
