"""MCIRModel: the restoration model plus negative models and the SPN term (learning from history)."""

from __future__ import annotations

import copy
import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from mcir.engine.dist import mean_across_ranks
from mcir.engine.negative_bank import INIT_MODES, PRECISIONS, NegativeBank
from mcir.errors import OptionError, StopTraining
from mcir.models.restoration_model import RestorationModel, build_restoration_parts, cpu_state_dict
from mcir.models.step_guard import StepGuard
from mcir.options_schema import Leaf, Section, Typed
from mcir.registry import LOSS_REGISTRY, MODEL_REGISTRY

log = logging.getLogger("mcir")


class TrainingCollapsed(StopTraining):
    """Training kept producing bad steps and the guard was told to stop."""


@MODEL_REGISTRY.register()
class MCIRModel(RestorationModel):
    """Trains with ``L = L_rec − λ · L_neg`` where the negatives are EMA histories of the target (Eq. 1–4).

    Args:
        neg_bank: The negative models.
        neg_loss: The SPN loss (its ``distance`` gives L_neg; its ``loss_weight`` is λ).
        neg_ratio: Adaptive mode: choose λ each step so that ``λ·L_neg = neg_ratio·L_rec`` (None: fixed λ).
        guard: Detects non-finite / exploding steps; None disables it.
        start_iter: The SPN term is off up to this iteration; the negatives are re-seeded from the target
            at ``start_iter + 1`` when ``start_iter > 0``.
        **parts: Arguments of :class:`RestorationModel`.
    """

    def __init__(
        self,
        neg_bank: NegativeBank,
        neg_loss: nn.Module,
        neg_ratio: Optional[float] = None,
        guard: Optional[StepGuard] = None,
        start_iter: int = 0,
        **parts: Any,
    ):
        super().__init__(**parts)
        self.neg_bank = neg_bank.to(self.device)
        self.neg_loss = neg_loss.to(self.device)
        self.neg_lambda = float(neg_loss.loss_weight)
        self.neg_ratio = neg_ratio
        self.guard = guard
        self.start_iter = start_iter
        self._good_state: Optional[Dict[str, Any]] = None

    @classmethod
    def extra_train_options(cls) -> Dict[str, Any]:
        """``train.negatives``, ``train.neg_opt``, ``train.neg_ratio`` and ``train.neg_guard``."""
        return {
            "negatives": Section(
                {
                    "steps": Leaf((list,), default=[100, 200, 500, 1000]),
                    "decay": Leaf((int, float, list), default=0.1),
                    "init": Leaf((str,), default="blend", choices=INIT_MODES),
                    "neg_start": Leaf((int, float), default=0.1),
                    "start_iter": Leaf((int,), default=0),
                    "pretrained_path": Leaf((str,), default=None),
                    "precision": Leaf((str,), default="fp32", choices=PRECISIONS),
                }
            ),
            "neg_opt": Typed(registry=lambda: LOSS_REGISTRY, default_type="SPNLoss"),
            "neg_ratio": Leaf((int, float), default=None),
            "neg_guard": Section(
                {
                    "enabled": Leaf((bool,), default=True),
                    "explode_factor": Leaf((int, float), default=10.0),
                    "patience": Leaf((int,), default=3),
                    "on_collapse": Leaf((str,), default="halve", choices=("halve", "stop")),
                    "snapshot_freq": Leaf((int,), default=100),
                }
            ),
        }

    @classmethod
    def from_options(cls, opt: Dict[str, Any], device: torch.device, is_train: bool) -> RestorationModel:
        """Build the restoration parts, then (for training) the negative bank, SPN loss and guard."""
        parts = build_restoration_parts(opt, device, is_train)
        if not is_train:
            return RestorationModel(**parts)
        from mcir.archs import build_network
        from mcir.engine.checkpoint import torch_load, unwrap_state_dict
        from mcir.losses import build_loss

        file = opt.get("opt_path")
        train = opt["train"]
        neg = train["negatives"]
        pretrained = None
        if neg["pretrained_path"]:
            trusted = opt["path"].get("trust_checkpoint", False)
            pretrained = unwrap_state_dict(torch_load(neg["pretrained_path"], trusted), "params", neg["pretrained_path"])
        net_cfg = opt["network_g"]
        # Random weights drawn here (fresh negatives for blend / random_fixed, the VGG before its weights
        # load) come from a forked RNG, so adding the SPN term does not shift the random stream of the run:
        # λ = 0 then trains exactly like the plain model.
        with torch.random.fork_rng(devices=[]):
            bank = NegativeBank(
                parts["net_g"],
                steps=neg["steps"],
                decay=neg["decay"],
                init=neg["init"],
                neg_start=neg["neg_start"],
                start_iter=neg["start_iter"],
                factory=lambda: build_network(net_cfg, key="network_g", file=file),
                pretrained=pretrained,
                precision=neg["precision"],
            )
            neg_loss = build_loss(train["neg_opt"], key="train.neg_opt", file=file)
        g = train["neg_guard"]
        guard = None
        if g["enabled"]:
            try:
                guard = StepGuard(g["explode_factor"], g["patience"], g["on_collapse"], g["snapshot_freq"])
            except OptionError as exc:
                raise OptionError(exc.message, file, exc.key) from None
        return cls(
            neg_bank=bank,
            neg_loss=neg_loss,
            neg_ratio=train["neg_ratio"],
            guard=guard,
            start_iter=neg["start_iter"],
            **parts,
        )

    # ---- training ---------------------------------------------------------------------------
    def compute_losses(
        self, lq: torch.Tensor, gt: torch.Tensor, output: torch.Tensor, iteration: int,
        negs: Optional[Mapping[str, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """``L_rec − λ·L_neg`` and the terms to log (``l_rec``, ``l_neg``, ``neg_ratio`` = λ·L_neg / L_rec).

        ``L_rec`` is the plain model's whole loss (pixel term plus any perceptual / contrastive terms).
        """
        l_rec, logs = super().compute_losses(lq, gt, output, iteration, negs)  # negs: CCR's folder negatives
        logs["l_rec"] = l_rec.detach()
        if iteration <= self.start_iter:
            return l_rec, logs
        if self.start_iter > 0 and iteration == self.start_iter + 1:
            self.neg_bank.reset_from(self.net_g)
        negatives = self.neg_bank(lq)
        l_neg = self.neg_loss.distance(output, negatives)
        lam = self.neg_lambda
        if self.neg_ratio is not None:
            # One λ on every rank, from the losses of the whole batch (all ranks), as one process would pick.
            rec_g, neg_g = mean_across_ranks(torch.stack([l_rec.detach().float(), l_neg.detach().float()]))
            # Identical negatives (e.g. at the very start with init: target) give L_neg = 0: no push then.
            d = float(neg_g)
            # |L_rec|: losses such as PSNRLoss (−PSNR) are negative, and λ must stay positive.
            lam = float(self.neg_ratio * rec_g.abs()) / d if d > 1e-12 else 0.0
        total = l_rec - lam * l_neg
        logs["l_neg"] = l_neg.detach()
        logs["neg_ratio"] = (lam * l_neg.detach() / l_rec.detach().abs().clamp_min(1e-12)).detach()
        logs["lambda"] = torch.tensor(lam)
        return total, logs

    def accept_step(self, total: torch.Tensor, logs: Dict[str, torch.Tensor], iteration: int) -> bool:
        """Skip non-finite or exploding steps; after ``patience`` in a row, restore the last good state."""
        if self.guard is None:
            return True
        # Judged on the losses of all ranks, so every rank takes the same decision (DDP needs that).
        total_g, rec_g = mean_across_ranks(torch.stack([total.detach().float(), logs["l_rec"].float()]))
        verdict = self.guard.check(total_g, rec_g)
        if verdict == "ok":
            return True
        log.warning("iteration %d: %s loss (l_rec %.4e), step skipped", iteration, verdict, float(rec_g))
        if self.guard.bad_in_a_row < self.guard.patience:
            return False
        if self._good_state is not None:
            self.load_state_dict(self._good_state)
        self.guard.reset()
        if self.guard.on_collapse == "stop":
            raise TrainingCollapsed(
                f"training collapsed at iteration {iteration} ({self.guard.patience} bad steps in a row with "
                f"λ = {self.neg_lambda:g}); the last good state was restored and saved. Lower "
                "train.neg_opt.loss_weight or use train.neg_ratio"
            )
        self.neg_lambda /= 2
        log.warning("iteration %d: restored the last good state and halved λ to %g", iteration, self.neg_lambda)
        return False

    def after_optimizer_step(self, iteration: int) -> None:
        """EMA update, then Eq. 1 for the negatives due at this iteration."""
        super().after_optimizer_step(iteration)
        if iteration > self.start_iter:
            self.neg_bank.step(self.net_g, iteration)
        guard = self.guard
        if guard is not None and guard.bad_in_a_row == 0 and (guard.snapshot_due(iteration) or self._good_state is None):
            self._good_state = copy.deepcopy(self.state_dict())  # the last good state, after a good step

    def replicated_modules(self) -> List[nn.Module]:
        """Target and EMA, plus the negatives and the loss networks (a random VGG must match too)."""
        return super().replicated_modules() + [self.neg_bank, self.neg_loss]

    # ---- state ------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Restoration state plus the negatives (with their update counters), λ and the guard."""
        state = super().state_dict()
        state["negatives"] = cpu_state_dict(self.neg_bank.state_dict())
        state["neg_lambda"] = self.neg_lambda
        if self.guard is not None:
            state["guard"] = self.guard.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the negatives too: resuming keeps the history)."""
        super().load_state_dict(state)
        self.neg_bank.load_state_dict(state["negatives"])
        self.neg_lambda = float(state.get("neg_lambda", self.neg_lambda))
        if self.guard is not None and "guard" in state:
            self.guard.load_state_dict(state["guard"])
        self._good_state = None

