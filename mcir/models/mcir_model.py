"""MCIRModel: the restoration model plus negative models and the SPN term (learning from history)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from mcir.core.dist import mean_across_ranks
from mcir.method.eq1_negatives import NegativeBank
from mcir.method.eq2_4_spn import SPNLoss, adaptive_lambda, spn_term
from mcir.models.restoration_model import Logs, RestorationModel, cpu_state_dict
from mcir.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class MCIRModel(RestorationModel):
    """Trains with ``L = L_rec − λ·L_neg`` where the negatives are EMA histories of the target (Eq. 1–4).

    Args:
        net_g: The target network.
        negatives: The negative models (Eq. 1; updated after each optimizer step as a follower).
        spn: The SPN loss (its :meth:`~SPNLoss.distance` is L_neg; its ``loss_weight`` is λ).
        neg_ratio: Adaptive λ: choose λ each step so that ``λ·L_neg = neg_ratio·L_rec`` (None: fixed λ).
        **losses: ``pixel_loss``, ``perceptual_loss``, ``contrast_loss`` of :class:`RestorationModel` (L_rec).
    """

    has_negatives = True

    def __init__(
        self,
        net_g: nn.Module,
        negatives: NegativeBank,
        spn: SPNLoss,
        neg_ratio: Optional[float] = None,
        **losses: Any,
    ):
        super().__init__(net_g, **losses)
        self.negatives = negatives
        self.spn = spn
        self.neg_lambda = float(spn.loss_weight)
        self.neg_ratio = neg_ratio

    def modules(self) -> List[nn.Module]:
        """The restoration modules plus the negatives and the SPN VGG."""
        return super().modules() + [self.negatives, self.spn]

    def compute_losses(
        self,
        lq: torch.Tensor,
        gt: torch.Tensor,
        output: torch.Tensor,
        iteration: int,
        negs: Optional[Mapping[str, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, Logs]:
        """``L_rec − λ·L_neg`` and the terms to log (``l_rec``, ``l_neg``, ``neg_ratio`` = λ·L_neg / L_rec, ``lambda``).

        ``L_rec`` is the plain model's whole loss (pixel term plus any perceptual / contrastive terms).
        Before ``negatives.start_iter`` the loss is ``L_rec`` alone. ``negs`` are a contrast loss's precomputed
        negatives (other methods' restorations), unrelated to the model's own negatives.
        """
        l_rec, logs = super().compute_losses(lq, gt, output, iteration, negs)
        logs["l_rec"] = l_rec.detach()
        negs = self.negatives.outputs(self.net_g, lq, iteration)
        if negs is None:
            return l_rec, logs
        l_neg = self.spn.distance(output, negs)
        lam = self.current_lambda(l_rec, l_neg)
        logs["l_neg"] = l_neg.detach()
        logs["neg_ratio"] = (lam * l_neg.detach() / l_rec.detach().abs().clamp_min(1e-12)).detach()
        logs["lambda"] = torch.tensor(lam)
        return l_rec + spn_term(l_neg, lam), logs

    def current_lambda(self, l_rec: torch.Tensor, l_neg: torch.Tensor) -> float:
        """λ of this step: fixed, or (with ``neg_ratio``) chosen from the losses of the whole batch (all ranks)."""
        if self.neg_ratio is None:
            return self.neg_lambda
        rec_g, neg_g = mean_across_ranks(torch.stack([l_rec.detach().float(), l_neg.detach().float()]))
        return adaptive_lambda(float(rec_g), float(neg_g), self.neg_ratio)

    def halve_lambda(self) -> str:
        """Halve the SPN weight (the guard's ``halve`` action): λ, or the ratio when λ is adaptive.

        Returns:
            What was halved, for the log.
        """
        if self.neg_ratio is not None:
            self.neg_ratio /= 2
            return f"neg_ratio halved to {self.neg_ratio:g}"
        self.neg_lambda /= 2
        return f"λ halved to {self.neg_lambda:g}"

    def followers(self) -> List[Any]:
        """The negatives: Eq. 1 after each optimizer step."""
        return [self.negatives]

    def replicated_modules(self) -> List[nn.Module]:
        """Target and loss networks, plus the negatives and the SPN VGG."""
        return super().replicated_modules() + [self.negatives, self.spn]

    def state_dict(self) -> Dict[str, Any]:
        """The network plus the negatives (with their update counters) and the SPN weight."""
        state = super().state_dict()
        state["negatives"] = cpu_state_dict(self.negatives.state_dict())
        state["neg_lambda"] = self.neg_lambda
        state["neg_ratio"] = self.neg_ratio
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the negatives too: resuming keeps the history)."""
        super().load_state_dict(state)
        self.negatives.load_state_dict(state["negatives"])
        self.neg_lambda = float(state.get("neg_lambda", self.neg_lambda))
        self.neg_ratio = state.get("neg_ratio", self.neg_ratio)
