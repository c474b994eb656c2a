"""The restoration model: a generator, its reconstruction loss, optimizer step, scheduler and EMA copy."""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from mcir.engine.averaged_model import AveragedModel
from mcir.engine.inference import restore
from mcir.engine.optim_step import OptimStep, check_amp
from mcir.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
@MODEL_REGISTRY.register(name="SRModel")
class RestorationModel:
    """Trains ``net_g`` with a pixel loss; also used for super-resolution (BasicSR's ``SRModel``).

    Args:
        net_g: The generator.
        device: Where tensors live.
        pixel_loss: Reconstruction loss module (None for test-only use).
        optim_step: Optimizer-step wrapper (None for test-only use).
        scheduler: LR scheduler stepped once per iteration, or None.
        ema: Averaged copy of ``net_g`` used for evaluation, or None.
        perceptual_loss: Extra term ``loss(output, gt)`` (e.g. ``PerceptualLoss``), or None.
        contrast_loss: Sample-contrastive term ``loss(output, gt, lq)`` (``ContrastLoss``, ``PCLLoss``, ``CCRLoss``;
            called with ``negs=batch['negs']`` too when the batch has folder negatives), or None.
        channels_last: Feed the network channels-last inputs (build it channels-last too, before copying it
            into the EMA or negatives, so all copies share the layout).
    """

    def __init__(
        self,
        net_g: nn.Module,
        device: torch.device,
        pixel_loss: Optional[nn.Module] = None,
        optim_step: Optional[OptimStep] = None,
        scheduler: Optional[torch.optim.lr_scheduler.LRScheduler] = None,
        ema: Optional[AveragedModel] = None,
        perceptual_loss: Optional[nn.Module] = None,
        contrast_loss: Optional[nn.Module] = None,
        channels_last: bool = False,
    ):
        self.device = device
        self.channels_last = channels_last
        self.net_g = net_g.to(device)
        self.pixel_loss = pixel_loss.to(device) if pixel_loss is not None else None
        self.optim_step = optim_step
        self.scheduler = scheduler
        self.ema = ema.to(device) if ema is not None else None
        self.perceptual_loss = perceptual_loss.to(device) if perceptual_loss is not None else None
        self.contrast_loss = contrast_loss.to(device) if contrast_loss is not None else None
        # What training runs forward/backward through: net_g itself, or a DDP wrapper of it (distribute()).
        self.train_net: nn.Module = self.net_g

    @classmethod
    def from_options(cls, opt: Dict[str, Any], device: torch.device, is_train: bool) -> "RestorationModel":
        """Build the model from resolved options (the only place option sections are read)."""
        return cls(**build_restoration_parts(opt, device, is_train))

    @classmethod
    def extra_train_options(cls) -> Dict[str, Any]:
        """Schema of the ``train`` keys this model adds (none for the plain model)."""
        return {}

    # ---- training ---------------------------------------------------------------------------
    def compute_losses(
        self, lq: torch.Tensor, gt: torch.Tensor, output: torch.Tensor, iteration: int,
        negs: Optional[Mapping[str, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Total loss and the detached terms to log.

        Args:
            lq: Degraded input batch.
            gt: Ground-truth batch.
            output: ``net_g(lq)``.
            iteration: Current iteration (1-based).
            negs: The batch's precomputed negatives ``{name: tensor}`` (``dataroot_neg``), for the contrast loss.

        Returns:
            ``(total_loss, {name: detached_value})``: ``l_pix`` plus ``l_percep`` / ``l_contrast`` when
            those terms are configured.
        """
        l_pix = self.pixel_loss(output, gt)
        total, logs = l_pix, {"l_pix": l_pix.detach()}
        if self.perceptual_loss is not None:
            terms = self.perceptual_loss(output, gt)
            # BasicSR-style perceptual losses return (perceptual, style), either possibly None.
            parts = [t for t in (terms if isinstance(terms, tuple) else (terms,)) if t is not None]
            l_percep = sum(parts[1:], parts[0])
            total = total + l_percep
            logs["l_percep"] = l_percep.detach()
        if self.contrast_loss is not None:
            # CCR (issue 13 §3): precomputed negatives reach the loss only when the batch has them.
            extra = {} if negs is None else {"negs": negs}
            l_contrast = self.contrast_loss(output, gt, lq, **extra)
            total = total + l_contrast
            logs["l_contrast"] = l_contrast.detach()
        return total, logs

    def accept_step(self, total: torch.Tensor, logs: Dict[str, torch.Tensor], iteration: int) -> bool:
        """Whether to apply this iteration's update (subclasses guard against bad steps)."""
        return True

    def after_optimizer_step(self, iteration: int) -> None:
        """Hook run after each optimizer step (EMA update here; subclasses add their own)."""
        if self.ema is not None:
            self.ema.update(self.net_g, iteration)

    def train_step(
        self, batch: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]], iteration: int
    ) -> Dict[str, torch.Tensor]:
        """One training iteration (one optimizer step) on a batch, or on ``accumulate_steps`` micro-batches.

        Each micro-batch's forward pass and losses run under the optimizer step's autocast; its gradients are
        accumulated; then the step is applied once (unless :meth:`accept_step` rejects it), and the scheduler,
        the EMA and the other per-step hooks run once.

        Args:
            batch: Dict with ``lq`` and ``gt`` tensors, or a sequence of ``accumulate_steps`` such dicts.
            iteration: The iteration being run (1-based).

        Returns:
            Detached loss terms averaged over the micro-batches (tensors; convert to floats only when logging).
        """
        assert self.optim_step is not None and self.pixel_loss is not None, "model was built for testing"
        micro = [batch] if isinstance(batch, Mapping) else list(batch)
        if len(micro) != self.optim_step.accumulate_steps:
            raise ValueError(
                f"train_step got {len(micro)} micro-batches; accumulate_steps is {self.optim_step.accumulate_steps}"
            )
        self.net_g.train()
        self.optim_step.zero_grad()
        total = logs = None
        for i, mb in enumerate(micro):
            lq = self._to_input(mb["lq"])
            gt = mb["gt"].to(self.device, non_blocking=True)
            # DDP: all-reduce gradients only on the last micro-batch of an accumulated step.
            last = i == len(micro) - 1
            sync = nullcontext() if last or not hasattr(self.train_net, "no_sync") else self.train_net.no_sync()
            with sync:
                with self.optim_step.autocast():
                    output = self.train_net(lq)
                    mb_total, mb_logs = self.compute_losses(lq, gt, output, iteration, negs=mb.get("negs"))  # CCR
                self.optim_step.backward(mb_total)
            if total is None:
                total, logs = mb_total.detach(), mb_logs
            else:
                total = total + mb_total.detach()
                logs = {k: logs[k] + v for k, v in mb_logs.items()}
        if len(micro) > 1:
            total = total / len(micro)
            logs = {k: v / len(micro) for k, v in logs.items()}
        if self.accept_step(total, logs, iteration):
            self.optim_step.apply(iteration)
        else:
            self.optim_step.discard()
        if self.scheduler is not None:
            self.scheduler.step()
        self.after_optimizer_step(iteration)
        return logs

    # ---- distributed training ----------------------------------------------------------------
    def replicated_modules(self) -> List[nn.Module]:
        """Modules that must hold the same values on every rank (broadcast from rank 0 before training)."""
        # Loss networks count too: a random-initialised VGG must match on every rank.
        return [self.net_g] + [m for m in (self.ema, self.perceptual_loss, self.contrast_loss) if m is not None]

    def distribute(self, wrapper: Callable[[nn.Module], nn.Module]) -> None:
        """Train through ``wrapper(net_g)`` (DistributedDataParallel); EMA, checkpoints and inference keep
        using the plain ``net_g``, whose parameters the wrapper shares.

        Args:
            wrapper: Wraps the target network.
        """
        self.train_net = wrapper(self.net_g)

    def _to_input(self, lq: torch.Tensor) -> torch.Tensor:
        """Move a network input to the device (channels-last when the network is)."""
        lq = lq.to(self.device, non_blocking=True)
        return lq.contiguous(memory_format=torch.channels_last) if self.channels_last else lq

    @property
    def skipped_steps(self) -> int:
        """Optimizer steps skipped so far because a gradient was not finite."""
        return self.optim_step.skipped_steps if self.optim_step is not None else 0

    # ---- inference --------------------------------------------------------------------------
    def eval_network(self, use_ema: bool = True) -> nn.Module:
        """The network used for evaluation: the EMA copy when there is one and ``use_ema``."""
        if use_ema and self.ema is not None:
            return self.ema.module
        return self.net_g

    @torch.no_grad()
    def infer(
        self,
        lq: torch.Tensor,
        use_ema: bool = True,
        tile: Optional[int] = None,
        tile_overlap: int = 0,
        self_ensemble: bool = False,
    ) -> torch.Tensor:
        """Restore a batch in eval mode (padded to the network's size multiple, optionally tiled/ensembled).

        Args:
            lq: Degraded batch (N, C, H, W) in [0, 1].
            use_ema: Evaluate the EMA copy when there is one.
            tile: Tile side in input pixels (None: whole image).
            tile_overlap: Overlap between tiles.
            self_ensemble: Average the 8 flips/rotations.

        Returns:
            The restored batch (not clamped).
        """
        net = self.eval_network(use_ema)
        was_training = net.training
        net.eval()
        try:
            return restore(net, lq.to(self.device), tile=tile, overlap=tile_overlap, ensemble=self_ensemble)
        finally:
            net.train(was_training)

    # ---- state ------------------------------------------------------------------------------
    def weights(self) -> Dict[str, Dict[str, torch.Tensor]]:
        """BasicSR-style weights: ``params`` (and ``params_ema`` when there is an EMA copy)."""
        out = {"params": cpu_state_dict(self.net_g.state_dict())}
        if self.ema is not None:
            out["params_ema"] = cpu_state_dict(self.ema.module.state_dict())
        return out

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to resume training exactly."""
        state: Dict[str, Any] = {"net_g": cpu_state_dict(self.net_g.state_dict())}
        if self.ema is not None:
            state["ema"] = cpu_state_dict(self.ema.state_dict())
        if self.optim_step is not None:
            state["optimizer"] = self.optim_step.optimizer.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.optim_step is not None:
            state["optim_step"] = self.optim_step.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.net_g.load_state_dict(state["net_g"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        if self.optim_step is not None and "optimizer" in state:
            self.optim_step.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.optim_step is not None and "optim_step" in state:
            self.optim_step.load_state_dict(state["optim_step"])

    def loggable_lr(self, iteration: int) -> Optional[float]:
        """Learning rate applied at ``iteration``."""
        return self.optim_step.current_lr(iteration) if self.optim_step is not None else None


def cpu_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Detached CPU copies of a state dict's tensors (safe to keep or save while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}


def build_restoration_parts(opt: Dict[str, Any], device: torch.device, is_train: bool) -> Dict[str, Any]:
    """Turn option sections into the constructor arguments of :class:`RestorationModel`.

    Args:
        opt: Resolved options.
        device: Target device.
        is_train: Build the loss, optimizer, scheduler and EMA too.

    Returns:
        Keyword arguments for ``RestorationModel(**parts)``.
    """
    from mcir.archs import build_network
    from mcir.engine.checkpoint import load_network_weights
    from mcir.errors import OptionError
    from mcir.losses import build_loss
    from mcir.registry import OPTIMIZER_REGISTRY, SCHEDULER_REGISTRY, build_from_registry

    file = opt.get("opt_path")
    net_g = build_network(opt["network_g"], key="network_g", file=file)
    path = opt.get("path", {})
    if path.get("pretrain_network_g"):
        load_network_weights(
            net_g,
            path["pretrain_network_g"],
            path.get("param_key_g", "params"),
            path.get("strict_load_g", True),
            trusted=path.get("trust_checkpoint", False),
        )
    parts: Dict[str, Any] = {"net_g": net_g, "device": device}
    if not is_train:
        return parts
    train = opt["train"]
    if train.get("channels_last"):
        # Before the EMA copy and the negatives are made from it, so they share the layout.
        net_g.to(memory_format=torch.channels_last)
        parts["channels_last"] = True
    if not getattr(net_g, "requires_training", True):
        raise OptionError(
            f"'{opt['network_g']['type']}' has nothing to train; use it with test.py", file=file, key="network_g.type"
        )
    parts["pixel_loss"] = build_loss(train["pixel_opt"], key="train.pixel_opt", file=file)
    # VGG-based losses draw random weights before loading theirs: a forked RNG keeps the run's stream.
    with torch.random.fork_rng(devices=[]):
        for key in ("perceptual_opt", "contrast_opt"):
            if train.get(key):
                name = "perceptual_loss" if key == "perceptual_opt" else "contrast_loss"
                parts[name] = build_loss(train[key], key=f"train.{key}", file=file)
    params = [p for p in net_g.parameters() if p.requires_grad]
    try:
        optimizer = build_from_registry(OPTIMIZER_REGISTRY, train["optim_g"], key="train.optim_g", params=params)
        scheduler = None
        if train.get("scheduler"):
            scheduler = build_from_registry(
                SCHEDULER_REGISTRY, train["scheduler"], key="train.scheduler", optimizer=optimizer
            )
    except (TypeError, ValueError) as exc:
        raise OptionError(str(exc), file=file, key="train.optim_g / train.scheduler") from exc
    amp = train.get("amp", "off")
    amp = "off" if amp is False else amp  # YAML reads a bare `off` as false
    try:
        check_amp(amp, device.type)
    except ValueError as exc:
        raise OptionError(str(exc), file=file, key="train.amp") from exc
    if amp == "fp16" and device.type == "cpu":
        warnings.warn(
            "train.amp: fp16 on the CPU runs, but torch takes a slow path for fp16 convolution gradients there "
            "(over 100x slower than fp32 on our test CPU); use amp: bf16 on the CPU",
            stacklevel=2,
        )
    accumulate = train.get("accumulate_steps", 1)
    if accumulate < 1:
        raise OptionError(f"must be >= 1, got {accumulate}", file=file, key="train.accumulate_steps")
    parts["optim_step"] = OptimStep(
        optimizer,
        params,
        train.get("clip_grad_norm"),
        train.get("warmup_iter", -1),
        amp=amp,
        accumulate_steps=accumulate,
        device_type=device.type,
    )
    parts["scheduler"] = scheduler
    if train.get("ema_decay", 0) > 0:
        parts["ema"] = AveragedModel(net_g, decay=train["ema_decay"])
    return parts

