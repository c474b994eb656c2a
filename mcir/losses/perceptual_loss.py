"""Perceptual (VGG feature) and style (Gram matrix) loss, BasicSR's option names, mcir's VGG extractor."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Literal, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from mcir.constraints import NonNegativeFloat
from mcir.errors import OptionError
from mcir.losses.vgg_features import VGGFeatureExtractor, VGGType
from mcir.registry import LOSS_REGISTRY

_CRITERIA = ("l1", "l2", "fro")


def gram_matrix(feat: Tensor) -> Tensor:
    """Channel Gram matrix normalised by the feature size.

    Args:
        feat: (N, C, H, W) activations.

    Returns:
        (N, C, C) ``F F^T / (C H W)`` with ``F`` the (N, C, H*W) flattened activations.
    """
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


@LOSS_REGISTRY.register()
class PerceptualLoss(nn.Module):
    """Weighted VGG-feature distance (perceptual) plus Gram-matrix distance (style).

    ``perceptual = perceptual_weight * sum_l w_l * D(phi_l(x), phi_l(gt))`` and
    ``style = style_weight * sum_l w_l * D(G(phi_l(x)), G(phi_l(gt)))``. ``forward`` returns their sum
    (the enabled ones), so the loss can be used wherever a single loss module is expected;
    :meth:`components` returns the two terms separately, as BasicSR's ``PerceptualLoss.forward`` does.
    The VGG is the frozen :class:`VGGFeatureExtractor` the SPN loss uses; features of ``gt`` are computed
    without autograd.

    Args:
        layer_weights: ``{layer_name: w_l}``, e.g. ``{'conv5_4': 1.0}`` (``conv*`` taps are before the ReLU).
            Layers with weight 0 are skipped.
        vgg_type: ``'vgg16'`` or ``'vgg19'``.
        use_input_norm: Normalise inputs with the ImageNet mean/std inside the VGG.
        range_norm: Inputs are in [-1, 1]; map them to [0, 1] first.
        perceptual_weight: Weight of the feature term (0 disables it).
        style_weight: Weight of the Gram-matrix term (0 disables it).
        criterion: ``'l1'`` (mean absolute), ``'l2'`` (mean squared) or ``'fro'`` (Frobenius norm of the
            whole difference tensor).
        vgg_weights: ``'imagenet'``, a .pth path or ``'random'`` (tests only).
        reduction: ``'mean'`` or ``'sum'`` over elements for ``l1`` / ``l2`` (``fro`` is always a norm).
    """

    def __init__(
        self,
        layer_weights: Mapping[str, NonNegativeFloat],
        vgg_type: VGGType = "vgg19",
        use_input_norm: bool = True,
        range_norm: bool = False,
        perceptual_weight: NonNegativeFloat = 1.0,
        style_weight: NonNegativeFloat = 0.0,
        criterion: Literal["l1", "l2", "fro"] = "l1",
        vgg_weights: Union[str, Path] = "imagenet",
        reduction: Literal["mean", "sum"] = "mean",
    ):
        super().__init__()
        if criterion not in _CRITERIA:
            raise OptionError(f"unknown criterion '{criterion}' (choose from {', '.join(_CRITERIA)})", key="criterion")
        if reduction not in ("mean", "sum"):
            raise OptionError(f"unknown reduction '{reduction}' (choose from mean, sum)", key="reduction")
        if not isinstance(layer_weights, Mapping):
            raise OptionError(f"needs a mapping {{layer_name: weight}}, got {layer_weights!r}", key="layer_weights")
        self.layer_weights = {k: float(v) for k, v in layer_weights.items() if float(v) != 0.0}
        if not self.layer_weights:
            raise OptionError("needs at least one layer with a non-zero weight", key="layer_weights")
        for key, value in (("perceptual_weight", perceptual_weight), ("style_weight", style_weight)):
            if value < 0:
                raise OptionError(f"must be >= 0, got {value!r}", key=key)
        if perceptual_weight == 0 and style_weight == 0:
            raise OptionError("perceptual_weight and style_weight are both 0: the loss would be constant",
                              key="perceptual_weight")
        self.perceptual_weight, self.style_weight = float(perceptual_weight), float(style_weight)
        self.criterion, self.reduction = criterion, reduction
        self._distance = self._make_distance(criterion, reduction)
        try:
            self.vgg = VGGFeatureExtractor(
                layer_name_list=list(self.layer_weights), vgg_type=vgg_type, use_input_norm=use_input_norm,
                range_norm=range_norm, vgg_weights=vgg_weights,
            )
        except OptionError as exc:
            if exc.key != "layer_name_list":
                raise
            raise OptionError(exc.message, key="layer_weights") from exc

    @staticmethod
    def _make_distance(criterion: str, reduction: str) -> Callable[[Tensor, Tensor], Tensor]:
        """Distance between two feature (or Gram) tensors for the chosen criterion."""
        if criterion == "fro":
            return lambda a, b: torch.linalg.vector_norm(a - b)
        elementwise = (lambda d: d.abs()) if criterion == "l1" else (lambda d: d * d)
        if reduction == "mean":
            return lambda a, b: elementwise(a - b).mean()
        return lambda a, b: elementwise(a - b).sum()

    def components(self, x: Tensor, gt: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """The perceptual and style terms separately (None for a disabled term).

        Args:
            x: Prediction (N, 3, H, W).
            gt: Ground truth of the same shape (no gradient flows into it).

        Returns:
            ``(perceptual, style)``, each a scalar tensor or None.
        """
        if x.shape != gt.shape:
            raise OptionError(f"PerceptualLoss: prediction shape {tuple(x.shape)} != target shape {tuple(gt.shape)}")
        feats_x: Dict[str, Tensor] = self.vgg(x)
        with torch.no_grad():
            feats_gt: Dict[str, Tensor] = self.vgg(gt.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = sum(w * self._distance(feats_x[k], feats_gt[k]) for k, w in self.layer_weights.items())
            percep = percep * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(w * self._distance(gram_matrix(feats_x[k]), gram_matrix(feats_gt[k]))
                        for k, w in self.layer_weights.items())
            style = style * self.style_weight
        return percep, style

    def forward(self, x: Tensor, gt: Tensor) -> Tensor:
        """Sum of the enabled terms.

        Args:
            x: Prediction (N, 3, H, W).
            gt: Ground truth of the same shape.

        Returns:
            Scalar loss.
        """
        percep, style = self.components(x, gt)
        if percep is None:
            return style
        return percep if style is None else percep + style

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        return (f"layer_weights={self.layer_weights}, perceptual_weight={self.perceptual_weight}, "
                f"style_weight={self.style_weight}, criterion={self.criterion!r}, reduction={self.reduction!r}")
