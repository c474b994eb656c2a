"""The restoration model: a network and its training losses (the engine runs the optimizer step)."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from mcir.registry import MODEL_REGISTRY

Logs = Dict[str, torch.Tensor]


@MODEL_REGISTRY.register()
@MODEL_REGISTRY.register(name="SRModel")
class RestorationModel:
    """``net_g`` and its loss ``L_rec``: a pixel term plus optional perceptual and sample-contrastive terms.

    Also used for super-resolution (BasicSR's ``SRModel``). A model defines its networks, :meth:`forward`
    and :meth:`compute_losses`; :class:`~mcir.engine.train_step.TrainStep` turns them into optimizer steps.

    Args:
        net_g: The restoration network.
        pixel_loss: Reconstruction loss ``loss(output, gt)`` (None for a model that is only evaluated).
        perceptual_loss: Extra term ``loss(output, gt)`` (e.g. ``PerceptualLoss``), or None.
        contrast_loss: Sample-contrastive term ``loss(output, gt, lq)`` (``ContrastLoss``, ``PCLLoss``, ``CCRLoss``;
            called with ``negs=`` too when the batch carries precomputed negatives), or None.
    """

    #: Whether the model keeps negative models (MCIR); the option schema adds their keys for such models.
    has_negatives = False

    def __init__(
        self,
        net_g: nn.Module,
        pixel_loss: Optional[nn.Module] = None,
        perceptual_loss: Optional[nn.Module] = None,
        contrast_loss: Optional[nn.Module] = None,
    ):
        self.net_g = net_g
        self.pixel_loss = pixel_loss
        self.perceptual_loss = perceptual_loss
        self.contrast_loss = contrast_loss

    def to(self, device: torch.device) -> "RestorationModel":
        """Move every network and loss module to ``device``; returns self."""
        for module in self.modules():
            module.to(device)
        return self

    def modules(self) -> List[nn.Module]:
        """The network and the loss modules that exist."""
        return [m for m in (self.net_g, self.pixel_loss, self.perceptual_loss, self.contrast_loss) if m is not None]

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """The restoration of ``lq``."""
        return self.net_g(lq)

    def compute_losses(
        self,
        lq: torch.Tensor,
        gt: torch.Tensor,
        output: torch.Tensor,
        iteration: int,
        negs: Optional[Mapping[str, torch.Tensor]] = None,
    ) -> Tuple[torch.Tensor, Logs]:
        """Total loss and the detached terms to log.

        Args:
            lq: Degraded input batch.
            gt: Ground-truth batch.
            output: The network's output on ``lq``.
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
            extra = {} if negs is None else {"negs": negs}  # only a batch with folder negatives (CCR) has them
            l_contrast = self.contrast_loss(output, gt, lq, **extra)
            total = total + l_contrast
            logs["l_contrast"] = l_contrast.detach()
        return total, logs

    def followers(self) -> List[Any]:
        """Objects with ``update(net_g, iteration)`` run after each optimizer step (none here; MCIR: negatives)."""
        return []

    def replicated_modules(self) -> List[nn.Module]:
        """Modules that must hold the same values on every rank (a random-initialised VGG must match too)."""
        return [self.net_g] + [m for m in (self.perceptual_loss, self.contrast_loss) if m is not None]

    def state_dict(self) -> Dict[str, Any]:
        """The model's training state: the network."""
        return {"net_g": cpu_state_dict(self.net_g.state_dict())}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.net_g.load_state_dict(state["net_g"])


def cpu_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Detached CPU copies of a state dict's tensors (safe to keep or save while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}
