"""Parameter-and-buffer averaged copies of a network: the generator EMA and, in MCIR, the negative models."""

from __future__ import annotations

import copy
from typing import Any, List

import torch
from torch import nn


class AveragedModel(nn.Module):
    """A frozen copy of ``model`` updated as ``θ' ← decay·θ' + (1 − decay)·θ`` every ``update_every`` steps.

    Floating-point parameters and buffers are averaged; other buffers (counters) are copied. The copy is
    kept in eval mode and never receives gradients.

    Args:
        model: The network to follow (deep-copied at construction).
        decay: Weight of the old average (0 copies the model at every update).
        update_every: Update only when ``step % update_every == 0``.
        start_step: No updates before this step.
    """

    def __init__(self, model: nn.Module, decay: float, update_every: int = 1, start_step: int = 0):
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if update_every < 1:
            raise ValueError(f"update_every must be >= 1, got {update_every}")
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.module.requires_grad_(False)
        self.decay = float(decay)
        self.update_every = int(update_every)
        self.start_step = int(start_step)
        # A buffer, so the count travels with state_dict() also when the average is nested in a bank.
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> "AveragedModel":
        """Stay in eval mode whatever the caller asks (averaged models are never trained)."""
        return super().train(False)

    def should_update(self, step: int) -> bool:
        """Whether :meth:`update` at ``step`` changes the average."""
        return step >= self.start_step and step % self.update_every == 0

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> bool:
        """Average ``model`` in if ``step`` is due.

        Args:
            model: The target network (same architecture).
            step: Iteration just completed (after the optimizer step).

        Returns:
            Whether an update happened.
        """
        if not self.should_update(step):
            return False
        self.blend_from(model, self.decay)
        self.num_updates += 1
        return True

    @torch.no_grad()
    def blend_from(self, model: nn.Module, decay: float) -> None:
        """``θ' ← decay·θ' + (1 − decay)·θ`` on floating tensors; other buffers are copied."""
        avg: List[torch.Tensor] = []
        new: List[torch.Tensor] = []
        own = self.module.state_dict(keep_vars=True)
        for name, src in model.state_dict(keep_vars=True).items():
            dst = own[name]
            if dst.is_floating_point():
                avg.append(dst.data)
                new.append(src.data.to(dst.dtype))
            else:
                dst.data.copy_(src.data)
        if avg:
            if decay == 0.0:
                torch._foreach_copy_(avg, new)
            else:
                torch._foreach_mul_(avg, decay)
                torch._foreach_add_(avg, new, alpha=1.0 - decay)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the averaged network."""
        return self.module(*args, **kwargs)
