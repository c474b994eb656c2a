"""One optimizer step: AMP (autocast, fp16 loss scaling), accumulation, clipping, warm-up, non-finite skips."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any, ContextManager, Dict, Iterable, List, Optional

import torch
from torch import nn

log = logging.getLogger("mcir")

AMP_MODES = ("off", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str, device_type: str) -> None:
    """Raise ValueError when ``amp`` is unknown or this torch build cannot autocast to it on ``device_type``.

    Args:
        amp: ``off``, ``bf16`` or ``fp16``.
        device_type: ``cpu`` or ``cuda``.
    """
    if amp not in AMP_MODES:
        raise ValueError(f"must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    if amp == "off":
        return
    if not torch.amp.is_autocast_available(device_type):
        raise ValueError(f"torch has no autocast for device '{device_type}'; use amp: off")
    if device_type == "cuda" and amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bf16; use amp: fp16 or off")
    # torch only warns (and silently disables autocast) for an unsupported dtype: turn that into an error.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast(device_type, dtype=_AMP_DTYPES[amp]):
            pass
    if any("not supported" in str(w.message) for w in caught):
        raise ValueError(f"torch {torch.__version__} cannot autocast to {amp} on {device_type}; use amp: off")


class OptimStep:
    """Owns the mechanics of an update so models only compute losses.

    A model runs ``zero_grad()``, then per micro-batch ``with autocast(): loss = ...`` and ``backward(loss)``,
    then ``apply(iteration)`` (or ``discard()`` to drop the gradients). ``backward`` divides the loss by
    ``accumulate_steps``, so ``k`` micro-batches of size B give the gradient of one batch of size kB (for
    networks without batch-dependent layers). ``apply`` unscales fp16 gradients, skips the update when a
    gradient is NaN/inf (counted in :attr:`skipped_steps`), clips, applies the warm-up factor and steps.

    With a fused torch optimizer (``fused: true``: Adam, AdamW, SGD, ...) and no fp16 scaler, the skip happens
    on the device: the optimizer is handed the "not finite" flag as torch's loss scaler hands it, and no value
    is read on the host during the step (:attr:`skips_on_device`). Otherwise the gradient norm is read on the
    host every step, which stalls an accelerator's queue once per step.

    Warm-up scales the scheduled learning rate during the step only (then restores it), so it composes
    with any scheduler, chainable or not.

    Args:
        optimizer: The optimizer.
        params: Parameters to clip and check (usually the generator's).
        clip_grad_norm: Max global L2 norm of the gradients, or None.
        warmup_iter: Linear warm-up length in iterations (``<= 0``: none); factor ``min(1, iter / warmup_iter)``.
        amp: ``off``, ``bf16`` (autocast, no scaler) or ``fp16`` (autocast + dynamic loss scaling).
        accumulate_steps: Micro-batches per optimizer step.
        device_type: Device type the autocast and the loss scaler act on (``cpu`` / ``cuda``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: Iterable[nn.Parameter],
        clip_grad_norm: Optional[float] = None,
        warmup_iter: int = -1,
        amp: str = "off",
        accumulate_steps: int = 1,
        device_type: str = "cpu",
    ):
        check_amp(amp, device_type)
        if accumulate_steps < 1:
            raise ValueError(f"accumulate_steps must be >= 1, got {accumulate_steps}")
        self.optimizer = optimizer
        self.params: List[nn.Parameter] = [p for p in params if p.requires_grad]
        self.clip_grad_norm = clip_grad_norm
        self.warmup_iter = warmup_iter
        self.amp = amp
        self.accumulate_steps = int(accumulate_steps)
        self.device_type = device_type
        self.scaler = torch.amp.GradScaler(device_type) if amp == "fp16" else None
        self._skipped = 0
        self._device_skips: Optional[torch.Tensor] = None  # skips counted on the device, read when asked
        self._micro = 0

    @property
    def skips_on_device(self) -> bool:
        """Whether a non-finite update is skipped by the optimizer itself, without a host sync.

        True for torch's fused optimizers (they take ``found_inf`` as ``torch.amp.GradScaler`` passes it, the
        contract ``_step_supports_amp_scaling`` announces) when no fp16 scaler is in use.
        """
        return self.scaler is None and bool(getattr(self.optimizer, "_step_supports_amp_scaling", False))

    @property
    def skipped_steps(self) -> int:
        """Updates skipped for non-finite gradients so far (reads the device counter: one host sync)."""
        on_device = int(self._device_skips.item()) if self._device_skips is not None else 0
        return self._skipped + on_device

    def lr_factor(self, iteration: int) -> float:
        """Warm-up factor at ``iteration`` (1-based, as BasicSR)."""
        if self.warmup_iter > 0 and iteration < self.warmup_iter:
            return iteration / self.warmup_iter
        return 1.0

    def autocast(self) -> ContextManager:
        """Context for the forward pass and the losses: autocast to the AMP dtype, or nothing when off."""
        if self.amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=_AMP_DTYPES[self.amp])

    def zero_grad(self) -> None:
        """Drop the gradients and start a new accumulation."""
        self.optimizer.zero_grad(set_to_none=True)
        self._micro = 0

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of one micro-batch's loss (divided by ``accumulate_steps``, scaled for fp16).

        Args:
            loss: Scalar loss with a graph to the parameters.
        """
        if self.accumulate_steps > 1:
            loss = loss / self.accumulate_steps
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()
        self._micro += 1

    def apply(self, iteration: int) -> Optional[torch.Tensor]:
        """Update the parameters from the accumulated gradients, unless one of them is not finite.

        Args:
            iteration: Current iteration (1-based), for the warm-up factor.

        Returns:
            The gradient norm before clipping (a 0-dim tensor where the gradients are) when clipping is on,
            else None.
        """
        if self._micro != self.accumulate_steps:
            raise RuntimeError(
                f"apply() after {self._micro} micro-batches; accumulate_steps is {self.accumulate_steps}"
            )
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad_norm)
        else:
            norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        if self.skips_on_device:
            self._step_unless_on_device(norm, iteration)
        elif bool(torch.isfinite(norm)):
            self._step_with_warmup(iteration)
        else:
            self._skipped += 1
            log.warning(
                "iteration %d: non-finite gradients, optimizer step skipped (%d skipped so far%s)",
                iteration,
                self.skipped_steps,
                f"; fp16 loss scale {self.scaler.get_scale():g}" if self.scaler is not None else "",
            )
        if self.scaler is not None:
            self.scaler.update()  # backs the scale off after inf/NaN gradients, grows it after good runs
        self.zero_grad()
        return norm if self.clip_grad_norm is not None else None

    def discard(self) -> None:
        """Drop the accumulated gradients without updating (a step the model rejected)."""
        self.zero_grad()

    def step(self, loss: torch.Tensor, iteration: int) -> Optional[torch.Tensor]:
        """Backpropagate ``loss`` and update: the whole step for ``accumulate_steps == 1``.

        Args:
            loss: Scalar loss with a graph to the parameters.
            iteration: Current iteration (1-based).

        Returns:
            What :meth:`apply` returns.
        """
        self.zero_grad()
        self.backward(loss)
        return self.apply(iteration)

    def _step_unless_on_device(self, norm: torch.Tensor, iteration: int) -> None:
        """Step a fused optimizer that leaves the parameters and its state alone when ``norm`` is not finite."""
        found_inf = torch.logical_not(torch.isfinite(norm)).to(torch.float32)
        self.optimizer.found_inf = found_inf  # type: ignore[attr-defined]
        try:
            self._step_with_warmup(iteration)
        finally:
            del self.optimizer.found_inf  # type: ignore[attr-defined]
        self._device_skips = found_inf if self._device_skips is None else self._device_skips + found_inf

    def _step_with_warmup(self, iteration: int) -> None:
        factor = self.lr_factor(iteration)
        scheduled = [g["lr"] for g in self.optimizer.param_groups]
        if factor != 1.0:
            for g in self.optimizer.param_groups:
                g["lr"] = g["lr"] * factor
        try:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
            else:
                self.optimizer.step()
        finally:
            for g, lr in zip(self.optimizer.param_groups, scheduled):
                g["lr"] = lr

    def current_lr(self, iteration: int) -> float:
        """Learning rate of the first group as applied at ``iteration`` (warm-up included)."""
        return self.optimizer.param_groups[0]["lr"] * self.lr_factor(iteration)

    def state_dict(self) -> Dict[str, Any]:
        """Skipped-step count and the fp16 loss scaler (for exact resume); the optimizer is saved separately."""
        state: Dict[str, Any] = {"skipped_steps": self.skipped_steps}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._skipped = int(state.get("skipped_steps", 0))
        self._device_skips = None
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
