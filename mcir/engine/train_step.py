"""One training iteration: the model's losses, then backward, the guard, the update and what follows it."""

from __future__ import annotations

import copy
import logging
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from mcir.core.averaged_model import AveragedModel
from mcir.core.dist import mean_across_ranks
from mcir.core.optim_step import OptimStep
from mcir.engine.guard import LossNotFinite, StepGuard, TrainingCollapsed
from mcir.models.restoration_model import Logs, cpu_state_dict

log = logging.getLogger("mcir")
Batch = Union[Mapping[str, Any], Sequence[Mapping[str, Any]]]


class _PendingLosses:
    """One step's (total, l_rec) on their way to the host: copied without waiting, read when needed."""

    def __init__(self, values: torch.Tensor, iteration: int):
        self.iteration = iteration
        self._event: Optional[torch.cuda.Event] = None
        if values.is_cuda:
            self.host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self.host.copy_(values, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self.host = values

    def read(self) -> torch.Tensor:
        """The values, once the copy is done (waits for this step's work only, not for what came after)."""
        if self._event is not None:
            self._event.synchronize()
        return self.host


class TrainStep:
    """Runs a model's iterations: it owns the optimizer step, the scheduler, the EMA and the guard.

    One call is one optimizer step over one batch, or over ``accumulate_steps`` micro-batches: each
    micro-batch's forward and losses run under the optimizer step's autocast and its gradients are
    accumulated; then the guard judges the step, the update is applied (or skipped), and the scheduler, the
    EMA and the model's followers (MCIR: the negatives, Eq. 1) advance once.

    With an optimizer that skips non-finite updates on the device (a fused one, see
    :attr:`OptimStep.skips_on_device`), a watching guard judges each step one step later, once its losses
    have reached the host without stalling the device. The optimizer itself skips any update whose gradients
    are not finite (a non-finite loss gives non-finite gradients in practice), so the weights stay finite and
    the run stops with them one iteration later than an unfused run would. :meth:`flush` judges the last
    step now (the trainer calls it before it logs or saves).

    Args:
        model: A task model (``net_g``, ``compute_losses``, ``followers``, ``state_dict``).
        optim: The optimizer-step wrapper (AMP, accumulation, clipping, warm-up).
        device: Where the batches go.
        scheduler: LR scheduler stepped once per iteration, or None.
        ema: Averaged copy of ``net_g`` used for evaluation, or None.
        guard: Watches the steps (and acts on bad ones if told to), or None.
        channels_last: Feed the network channels-last inputs (build it channels-last too, before the EMA
            and the negatives are copied from it, so all copies share the layout).
        compile_net: Wraps what training calls (``net_g``, or its DDP wrapper) in a compiled module
            (:class:`~mcir.core.compile.CompiledModule`); ``net_g`` itself, the EMA, checkpoints and
            evaluation stay plain. None: no compilation.
    """

    def __init__(
        self,
        model: Any,
        optim: OptimStep,
        device: torch.device,
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
        ema: Optional[AveragedModel] = None,
        guard: Optional[StepGuard] = None,
        channels_last: bool = False,
        compile_net: Optional[Callable[[nn.Module], nn.Module]] = None,
    ):
        self.model = model.to(device)
        self.optim = optim
        self.device = device
        self.scheduler = scheduler
        self.ema = ema.to(device) if ema is not None else None
        self.guard = guard
        self.channels_last = channels_last
        self._compile_net = compile_net or (lambda net: net)
        # What training runs forward/backward through: net_g itself, or a DDP wrapper of it (distribute()),
        # compiled with train.compile. Never saved: checkpoints hold net_g's own names.
        self.train_net: nn.Module = self._compile_net(model.net_g)
        self._good_state: Optional[Dict[str, Any]] = None
        self._pending: Optional[_PendingLosses] = None

    # ---- one iteration ------------------------------------------------------------------------
    def __call__(self, batch: Batch, iteration: int) -> Logs:
        """Run iteration ``iteration`` (1-based) on ``batch`` (a dict with ``lq``/``gt``, or a list of them).

        Returns:
            Detached loss terms averaged over the micro-batches (tensors; convert to floats when logging).
        """
        micro = [batch] if isinstance(batch, Mapping) else list(batch)
        if len(micro) != self.optim.accumulate_steps:
            raise ValueError(f"got {len(micro)} micro-batches; accumulate_steps is {self.optim.accumulate_steps}")
        total, logs = self._forward_backward(micro, iteration)
        if self._accept(total, logs, iteration):
            self.optim.apply(iteration)
        else:
            self.optim.discard()
        if self.scheduler is not None:
            self.scheduler.step()
        self._after_update(iteration)
        return logs

    def _forward_backward(self, micro: List[Mapping[str, Any]], iteration: int) -> Any:
        self.model.net_g.train()
        self.optim.zero_grad()
        total: Optional[torch.Tensor] = None
        logs: Logs = {}
        for i, mb in enumerate(micro):
            lq = self._to_input(mb["lq"])
            gt = mb["gt"].to(self.device, non_blocking=True)
            negs = {k: v.to(self.device, non_blocking=True) for k, v in mb["negs"].items()} if "negs" in mb else None
            # DDP: all-reduce gradients only on the last micro-batch of an accumulated step.
            last = i == len(micro) - 1
            sync = nullcontext() if last or not hasattr(self.train_net, "no_sync") else self.train_net.no_sync()
            with sync:
                with self.optim.autocast():
                    output = self.train_net(lq)
                    mb_total, mb_logs = self.model.compute_losses(lq, gt, output, iteration, negs)
                self.optim.backward(mb_total)
            total = mb_total.detach() if total is None else total + mb_total.detach()
            logs = mb_logs if not logs else {k: logs[k] + v for k, v in mb_logs.items()}
        n = len(micro)
        return total / n, {k: v / n for k, v in logs.items()} if n > 1 else logs

    def _accept(self, total: torch.Tensor, logs: Logs, iteration: int) -> bool:
        """The guard's verdict on this step: apply it, or skip it (and maybe restore, halve λ or stop)."""
        guard = self.guard
        if guard is None:
            return True
        # Judged on the losses of all ranks, so every rank takes the same decision (DDP needs that).
        rec = logs.get("l_rec", total)
        losses = mean_across_ranks(torch.stack([total.detach().float(), rec.detach().float()]))
        if not guard.acts and self.optim.skips_on_device:
            previous, self._pending = self._pending, _PendingLosses(losses, iteration)
            if previous is not None:
                self._watch(previous.read(), previous.iteration)
            return True
        if not guard.acts:
            self._watch(losses, iteration)
            return True
        total_g, rec_g = losses
        verdict = guard.check(total_g, rec_g)
        if verdict == "ok":
            return True
        log.warning("iteration %d: %s loss (l_rec %.4e), step skipped", iteration, verdict, float(rec_g))
        if guard.bad_in_a_row < guard.patience:
            return False
        self._restore_good_state()
        if guard.action == "stop":
            raise TrainingCollapsed(
                f"training collapsed at iteration {iteration} ({guard.patience} bad steps in a row); the last "
                "good state was restored and saved. Lower the learning rate or train.neg_opt.loss_weight"
            )
        done = self.model.halve_lambda() if guard.action == "halve" else "going on"
        log.warning("iteration %d: restored the last good state; %s", iteration, done)
        return False

    def _watch(self, losses: torch.Tensor, iteration: int) -> None:
        """A watching guard's verdict on iteration ``iteration``'s ``(total, l_rec)``: log, or stop if not finite."""
        total_g, rec_g = losses
        verdict = self.guard.check(total_g, rec_g)
        if verdict == "non-finite":
            raise LossNotFinite(
                f"the loss is not finite at iteration {iteration} (l_rec {float(rec_g):.4e}); a state was saved. "
                "Lower the learning rate (or λ), or let train.guard.action: skip restore the last good state"
            )
        if verdict == "exploding":
            log.warning("iteration %d: exploding loss (l_rec %.4e); the guard only watches", iteration, float(rec_g))

    def flush(self) -> None:
        """Judge the step whose losses are still on their way to the host (see the class notes); else nothing."""
        previous, self._pending = self._pending, None
        if previous is not None:
            self._watch(previous.read(), previous.iteration)

    def _after_update(self, iteration: int) -> None:
        """EMA update, the model's followers (Eq. 1 for the negatives due now), and the guard's snapshot."""
        if self.ema is not None:
            self.ema.update(self.model.net_g, iteration)
        for follower in self.model.followers():
            follower.update(self.model.net_g, iteration)
        guard = self.guard
        if guard is not None and (guard.snapshot_due(iteration) or (guard.acts and self._good_state is None)):
            if guard.bad_in_a_row == 0:
                self._good_state = copy.deepcopy(self.state_dict())

    def _restore_good_state(self) -> None:
        if self._good_state is not None:
            guard_state = self.guard.state_dict() if self.guard is not None else None
            self.load_state_dict(self._good_state)
            if self.guard is not None:
                self.guard.load_state_dict({**guard_state, "bad_in_a_row": 0})

    def _to_input(self, lq: torch.Tensor) -> torch.Tensor:
        lq = lq.to(self.device, non_blocking=True)
        return lq.contiguous(memory_format=torch.channels_last) if self.channels_last else lq

    # ---- what the trainer reads ----------------------------------------------------------------
    @property
    def skipped_steps(self) -> int:
        """Optimizer steps skipped because a gradient was not finite."""
        return self.optim.skipped_steps

    @property
    def suspicious_steps(self) -> int:
        """Steps the guard found non-finite or exploding (up to the last one judged: :meth:`flush` first)."""
        return self.guard.suspicious if self.guard is not None else 0

    def loggable_lr(self, iteration: int) -> float:
        """Learning rate applied at ``iteration``."""
        return self.optim.current_lr(iteration)

    def eval_network(self, use_ema: bool = True) -> nn.Module:
        """The network evaluation uses: the EMA copy when there is one and ``use_ema``."""
        return self.ema.module if use_ema and self.ema is not None else self.model.net_g

    def replicated_modules(self) -> List[nn.Module]:
        """Modules that must hold the same values on every rank (broadcast from rank 0 before training)."""
        return self.model.replicated_modules() + ([self.ema] if self.ema is not None else [])

    def distribute(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Train through ``wrapper(net_g)`` (DistributedDataParallel); the EMA, the negatives, checkpoints and
        evaluation keep using the plain ``net_g``, whose parameters the wrapper shares. With ``compile_net`` the
        wrapper is compiled (``compile(DDP(net_g))``, so dynamo splits graphs at DDP's buckets)."""
        self.train_net = self._compile_net(wrapper(self.model.net_g))

    # ---- state -------------------------------------------------------------------------------
    def weights(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """BasicSR-style weights: ``params`` (and ``params_ema`` when there is an EMA copy)."""
        out = {"params": cpu_state_dict(self.model.net_g.state_dict())}
        if self.ema is not None:
            out["params_ema"] = cpu_state_dict(self.ema.module.state_dict())
        return out

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to resume training exactly: the model's state plus the step's (the guard's up to
        the last step: :meth:`flush` first)."""
        self.flush()
        state = dict(self.model.state_dict())
        if self.ema is not None:
            state["ema"] = cpu_state_dict(self.ema.state_dict())
        state["optimizer"] = self.optim.optimizer.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        state["optim_step"] = self.optim.state_dict()
        if self.guard is not None:
            state["guard"] = self.guard.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.model.load_state_dict(state)
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        self.optim.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        if "optim_step" in state:
            self.optim.load_state_dict(state["optim_step"])
        if self.guard is not None and "guard" in state:
            self.guard.load_state_dict(state["guard"])
        self._good_state = None
        self._pending = None
