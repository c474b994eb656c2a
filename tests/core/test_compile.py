"""CompiledModule: real dynamo (eager backend, fast) keeps the plain names; failures fall back with one warning."""

from __future__ import annotations

import functools
import warnings

import pytest
import torch
from torch import nn

from mcir.archs.edsr_arch import EDSR
from mcir.core.compile import CompiledModule, maybe_compile, strip_compile_prefix
from mcir.core.inference import infer

EAGER = functools.partial(torch.compile, backend="eager")  # dynamo's tracing without inductor's C++ build


def _net() -> nn.Module:
    torch.manual_seed(0)
    return EDSR(num_feat=8, num_block=1, upscale=2)


def test_compiled_module_keeps_names_weights_and_outputs():
    net = _net()
    compiled = CompiledModule(net, compile_fn=EAGER)
    assert any(k.startswith("_orig_mod.") for k in EAGER(net).state_dict())  # what a bare compile would save
    assert list(compiled.state_dict()) == list(net.state_dict())
    assert all(a is b for a, b in zip(compiled.parameters(), net.parameters()))
    assert compiled.upscale == 2 and compiled.compiled
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(infer(compiled, x), infer(net, x), rtol=0, atol=0)
    prefixed = {f"_orig_mod.{k}": v + 1 for k, v in net.state_dict().items()}
    compiled.load_state_dict(prefixed)  # a state saved from a bare torch.compile module loads too
    assert torch.equal(net.conv_first.bias, prefixed["_orig_mod.conv_first.bias"])
    assert strip_compile_prefix({"a._orig_mod.b": 1}) == {"a.b": 1}
    assert maybe_compile(net, False) is net


def test_compile_that_raises_falls_back_with_one_line_warning():
    def broken(_module):
        raise RuntimeError("no C++ compiler found\nsecond line")

    net = _net()
    with pytest.warns(RuntimeWarning) as record:
        compiled = CompiledModule(net, "the target network", compile_fn=broken)
    message = str(record[0].message)
    assert "\n" not in message and "the target network" in message and "no C++ compiler" in message
    assert not compiled.compiled and compiled.fallback_reason.startswith("RuntimeError")
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(compiled(x), net(x))


def test_failure_at_the_first_call_falls_back_once():
    calls = []

    def fails_when_called(module):
        def run(*_args):
            calls.append(1)
            raise RuntimeError("InductorError: compilation failed")
        return run

    net = _net()
    compiled = CompiledModule(net, compile_fn=fails_when_called)
    x = torch.rand(1, 3, 8, 8)
    with pytest.warns(RuntimeWarning, match="compilation failed"):
        out = compiled(x)
    assert torch.equal(out, net(x)) and not compiled.compiled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(x)  # plain from now on: no second try, no second warning
    assert calls == [1]


def test_an_error_of_the_input_is_raised_not_blamed_on_compile():
    compiled = CompiledModule(_net(), compile_fn=EAGER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError):
            compiled(torch.rand(1, 5, 8, 8))  # wrong channel count: the plain module fails too
    assert compiled.compiled
