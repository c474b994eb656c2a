"""TrainStep with ``compile_net``: training calls the compiled wrapper (around DDP when distributed), the state
and the weights come from the plain network."""

from __future__ import annotations

import torch
from torch import nn

from mcir.archs.edsr_arch import EDSR
from mcir.core.compile import CompiledModule
from mcir.core.optim_step import OptimStep
from mcir.engine.train_step import TrainStep
from mcir.losses.pixel_loss import L1Loss
from mcir.models.restoration_model import RestorationModel


class _Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: holds the network as ``module`` and offers ``no_sync``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.module = net
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.module(x)

    def no_sync(self):  # noqa: D102
        raise AssertionError("not used with one micro-batch")


def test_compiled_train_net_wraps_the_ddp_wrapper_and_saves_plain_names():
    torch.manual_seed(0)
    net = EDSR(num_feat=8, num_block=1, upscale=2)
    wrapped = []
    compile_net = lambda m: wrapped.append(m) or CompiledModule(m, compile_fn=lambda mod: mod)  # noqa: E731
    optim = OptimStep(torch.optim.Adam(net.parameters(), lr=1e-3), list(net.parameters()))
    step = TrainStep(RestorationModel(net, L1Loss()), optim, torch.device("cpu"), compile_net=compile_net)
    assert isinstance(step.train_net, CompiledModule) and wrapped == [net]
    step.distribute(_Wrapper)
    assert isinstance(step.train_net, CompiledModule) and isinstance(step.train_net.module, _Wrapper)
    assert hasattr(step.train_net, "no_sync")  # DDP's no_sync reachable through the compiled wrapper
    step({"lq": torch.rand(2, 3, 8, 8), "gt": torch.rand(2, 3, 16, 16)}, 1)
    assert step.train_net.module.calls == 1
    assert list(step.weights()["params"]) == list(net.state_dict())
    assert list(step.state_dict()["net_g"]) == list(net.state_dict())
