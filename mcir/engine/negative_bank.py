"""The bank of negative ("latency") models of MCIR: slow EMA histories of the target network (Eq. 1).

After the optimizer step of iteration ``t``, negative ``i`` with ``t % s_i == 0`` is updated as
``θ'_i ← w_i·θ'_i + (1 − w_i)·θ``. Their outputs on the current batch are the hard negatives of the SPN loss.

Use it in any PyTorch loop::

    bank = NegativeBank(net, steps=(100, 200, 500, 1000), decay=0.1)
    for t, (lq, gt) in enumerate(loader, start=1):
        out = net(lq)
        loss = l1(out, gt) + spn(out, bank(lq))      # bank(lq): (N, B, C, H, W), no gradients
        opt.zero_grad(); loss.backward(); opt.step()
        bank.step(net, t)                              # Eq. 1 after the optimizer step
"""

from __future__ import annotations

import copy
from typing import Callable, List, Optional, Sequence, Union

import torch
from torch import nn

from mcir.engine.averaged_model import AveragedModel
from mcir.errors import OptionError

INIT_MODES = ("target", "blend", "random_fixed", "pretrained_fixed")
PRECISIONS = ("fp32", "bf16")


def fresh_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with freshly initialised weights (``reset_parameters`` of every submodule).

    Architectures with custom initialisation should pass their own factory to :class:`NegativeBank`.
    """
    new = copy.deepcopy(model)
    for m in new.modules():
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()
    return new


class NegativeBank(nn.Module):
    """N negative models following the target with different update intervals and decays.

    Args:
        model: The target network (its current weights seed the negatives).
        steps: Update interval ``s_i`` of each negative; N = ``len(steps)``.
        decay: ``w_i``: one value for all, or one per step (paired in order).
        init: ``target`` (copy), ``blend`` (``neg_start``·random + (1 − ``neg_start``)·target),
            ``random_fixed`` (random, never updated) or ``pretrained_fixed`` (``pretrained`` weights, never updated).
        neg_start: Share of the random weights in ``blend``.
        start_iter: No updates at or before this iteration.
        factory: Builds a freshly initialised network of the same architecture (``blend``/``random_fixed``);
            default :func:`fresh_copy`.
        pretrained: State dict for ``pretrained_fixed``.
        precision: ``fp32``, or ``bf16`` to run the negatives' forwards under bfloat16 autocast (their
            outputs are then bfloat16; no gradient ever flows through them, and on GPUs and CPUs with
            AMX / AVX512-BF16 this is about twice as fast).
    """

    def __init__(
        self,
        model: nn.Module,
        steps: Sequence[int] = (100, 200, 500, 1000),
        decay: Union[float, Sequence[float]] = 0.1,
        init: str = "blend",
        neg_start: float = 0.1,
        start_iter: int = 0,
        factory: Optional[Callable[[], nn.Module]] = None,
        pretrained: Optional[dict] = None,
        precision: str = "fp32",
    ):
        super().__init__()
        steps = [int(s) for s in steps]
        if not steps or any(s < 1 for s in steps):
            raise OptionError(f"steps must be a non-empty list of positive integers, got {steps}", key="steps")
        decays = [float(decay)] * len(steps) if isinstance(decay, (int, float)) else [float(d) for d in decay]
        if len(decays) != len(steps):
            raise OptionError(f"decay has {len(decays)} values for {len(steps)} steps", key="decay")
        if any(not 0.0 <= d <= 1.0 for d in decays):
            raise OptionError(f"every decay must be in [0, 1], got {decays}", key="decay")
        if init not in INIT_MODES:
            raise OptionError(f"unknown init '{init}' (choose {', '.join(INIT_MODES)})", key="init")
        if not 0.0 <= neg_start <= 1.0:
            raise OptionError(f"neg_start must be in [0, 1], got {neg_start}", key="neg_start")
        if precision not in PRECISIONS:
            raise OptionError(f"unknown precision '{precision}' (choose {', '.join(PRECISIONS)})", key="precision")
        if init == "pretrained_fixed" and pretrained is None:
            raise OptionError("init 'pretrained_fixed' needs pretrained weights", key="pretrained_path")
        self.init = init
        self.precision = precision
        self.neg_start = float(neg_start)
        self.start_iter = int(start_iter)
        self.frozen = init in ("random_fixed", "pretrained_fixed")
        self._factory = factory or (lambda: fresh_copy(model))
        self._pretrained = pretrained
        self.negatives = nn.ModuleList(
            AveragedModel(model, decay=w, update_every=s, start_step=self.start_iter + 1)
            for s, w in zip(steps, decays)
        )
        self.reset_from(model)

    def __len__(self) -> int:
        return len(self.negatives)

    @property
    def steps(self) -> List[int]:
        """Update interval of each negative."""
        return [n.update_every for n in self.negatives]

    @property
    def decays(self) -> List[float]:
        """Decay of each negative."""
        return [n.decay for n in self.negatives]

    @torch.no_grad()
    def reset_from(self, model: nn.Module) -> None:
        """(Re-)initialise every negative from ``model`` with this bank's init mode (buffers included)."""
        for neg in self.negatives:
            if self.init == "target":
                neg.blend_from(model, decay=0.0)
            elif self.init == "pretrained_fixed":
                neg.module.load_state_dict(self._pretrained)
            else:
                neg.module.load_state_dict(self._factory().state_dict())
                if self.init == "blend":
                    neg.blend_from(model, decay=self.neg_start)

    @torch.no_grad()
    def step(self, model: nn.Module, iteration: int) -> List[int]:
        """Apply Eq. 1 to the negatives due at ``iteration`` (call after the optimizer step).

        Args:
            model: The target network.
            iteration: The iteration just completed (1-based).

        Returns:
            Indices of the negatives that were updated.
        """
        if self.frozen:
            return []
        return [i for i, neg in enumerate(self.negatives) if neg.update(model, iteration)]

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of all negatives on ``x`` (eval mode, no autograd): shape ``(N, B, C, H, W)``.

        With ``precision='bf16'`` the forwards run under bfloat16 autocast and the result is bfloat16.
        """
        if self.precision == "fp32":
            return torch.stack([neg.module(x) for neg in self.negatives])
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return torch.stack([neg.module(x).to(torch.bfloat16) for neg in self.negatives])

    def extra_repr(self) -> str:
        """Summary shown by ``print(bank)``."""
        return f"steps={self.steps}, decays={self.decays}, init={self.init!r}, precision={self.precision!r}"
