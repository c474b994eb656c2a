"""Eq. 2–4 of MCIR: the SPN term pushes the output away from the negatives' outputs in VGG feature space.

``L = L_rec − λ·L_neg`` with ``L_neg = (1/N)·Σ_i Σ_l c_l·mean|φ_l(out) − φ_l(neg_i)|`` (VGG16 relu1_2 /
relu2_2 / relu3_3, c = 0.2 / 0.3 / 0.5, ImageNet-normalised [0, 1] RGB input). The sign lives in
:func:`spn_term` only; :func:`adaptive_lambda` is the optional "λ·L_neg = ratio·L_rec" rule.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Dict, Literal, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from mcir.constraints import NonNegativeFloat
from mcir.errors import OptionError
from mcir.losses.multi_l1 import mean_abs_to_many
from mcir.losses.vgg_features import VGGFeatureExtractor, VGGType
from mcir.registry import LOSS_REGISTRY

# Paper defaults (MCIR, AAAI 2024): VGG16 relu1_2 / relu2_2 / relu3_3.
DEFAULT_LAYER_WEIGHTS: Mapping[str, float] = {"relu1_2": 0.2, "relu2_2": 0.3, "relu3_3": 0.5}

_CHARBONNIER_EPS = 1e-6
_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _l1(diff: Tensor) -> Tensor:
    """Absolute difference."""
    return diff.abs()


def _l2(diff: Tensor) -> Tensor:
    """Squared difference."""
    return diff * diff


def _charbonnier(diff: Tensor) -> Tensor:
    """Smooth absolute difference ``sqrt(d^2 + eps^2)``."""
    return torch.sqrt(diff * diff + _CHARBONNIER_EPS**2)


_CRITERIA: Dict[str, Callable[[Tensor], Tensor]] = {
    "l1": _l1,
    "l2": _l2,
    "mse": _l2,
    "charbonnier": _charbonnier,
}


def spn_term(l_neg: Tensor, lam: float) -> Tensor:
    """The SPN term added to the reconstruction loss: ``−λ·L_neg`` (minimising it maximises the distance).

    Args:
        l_neg: ``L_neg`` from :meth:`SPNLoss.distance` (non-negative).
        lam: λ (non-negative).

    Returns:
        The signed term.
    """
    return -lam * l_neg


def adaptive_lambda(l_rec: float, l_neg: float, ratio: float) -> float:
    """λ such that ``λ·L_neg = ratio·|L_rec|`` (the authors keep that ratio in 0.01–0.1).

    Args:
        l_rec: The reconstruction loss (its magnitude: losses such as PSNRLoss are negative).
        l_neg: The SPN distance.
        ratio: The wanted ``λ·L_neg / |L_rec|``.

    Returns:
        λ (0 when the negatives equal the output, e.g. at the start with ``init: target``: no push then).
    """
    return ratio * abs(l_rec) / l_neg if l_neg > 1e-12 else 0.0


@LOSS_REGISTRY.register()
class SPNLoss(nn.Module):
    """Model-contrastive (negative-only) loss of MCIR, Eq. 4.

    ``L_neg = (1/N) * sum_i sum_l c_l * D(phi_l(out), phi_l(neg_i))`` (:meth:`distance`); ``forward`` returns
    :func:`spn_term` of it with λ = ``loss_weight``, to be added to the reconstruction loss.

    Args:
        loss_weight: lambda; the returned term is ``-loss_weight * distance``.
        vgg_type: ``'vgg16'`` or ``'vgg19'``.
        layer_weights: ``{layer_name: c_l}``; ``None`` means the paper's relu1_2/2_2/3_3 = 0.2/0.3/0.5.
            Layers with weight 0 are not computed.
        use_input_norm: Normalise inputs with the ImageNet mean/std inside the VGG.
        range_norm: Inputs are in [-1, 1]; map them to [0, 1] first.
        criterion: ``'l1'``, ``'l2'`` (alias ``'mse'``) or ``'charbonnier'``.
        vgg_weights: ``'imagenet'``, a .pth path or ``'random'`` (see :class:`VGGFeatureExtractor`).
        reduction: ``'mean'`` (Eq. 4: mean over feature elements) or ``'sum'`` (sum over feature
            elements, still averaged over the negatives).
    """

    def __init__(
        self,
        loss_weight: NonNegativeFloat = 1e-4,
        vgg_type: VGGType = "vgg16",
        layer_weights: Optional[Mapping[str, NonNegativeFloat]] = None,
        use_input_norm: bool = True,
        range_norm: bool = False,
        criterion: Literal["l1", "l2", "mse", "charbonnier"] = "l1",
        vgg_weights: Union[str, Path] = "imagenet",
        reduction: Literal["mean", "sum"] = "mean",
    ):
        super().__init__()
        if criterion not in _CRITERIA:
            raise OptionError(
                f"unknown criterion '{criterion}' (choose from {', '.join(_CRITERIA)})", key="criterion"
            )
        if reduction not in ("mean", "sum"):
            raise OptionError(f"unknown reduction '{reduction}' (choose from mean, sum)", key="reduction")
        weights = dict(DEFAULT_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        self.layer_weights = {k: float(v) for k, v in weights.items() if float(v) != 0.0}
        if not self.layer_weights:
            raise OptionError("needs at least one layer with a non-zero weight", key="layer_weights")
        self.loss_weight = float(loss_weight)
        self.criterion = criterion
        self.reduction = reduction
        self._crit = _CRITERIA[criterion]
        try:
            self.vgg = VGGFeatureExtractor(
                layer_name_list=list(self.layer_weights),
                vgg_type=vgg_type,
                use_input_norm=use_input_norm,
                range_norm=range_norm,
                vgg_weights=vgg_weights,
            )
        except OptionError as exc:
            # Layer names come from this loss's ``layer_weights`` option, so name that key.
            if exc.key != "layer_name_list":
                raise
            raise OptionError(exc.message, key="layer_weights") from exc
        # What distance() calls: the VGG, or a compiled module sharing its weights (compile_vgg); not registered.
        object.__setattr__(self, "_features", self.vgg)

    def compile_vgg(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Compute the VGG features through ``wrap(self.vgg)`` (e.g. a compiled module sharing its weights)."""
        object.__setattr__(self, "_features", wrap(self.vgg))

    @staticmethod
    def _stack_negatives(output: Tensor, negatives: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Return detached negatives as one (N, B, C, H, W) tensor matching ``output``."""
        if isinstance(negatives, Tensor):
            neg = negatives.unsqueeze(0) if negatives.dim() == output.dim() else negatives
        else:
            if len(negatives) == 0:
                raise ValueError("SPNLoss needs at least one negative output")
            neg = torch.stack([n.detach() for n in negatives])
        if neg.dim() != output.dim() + 1 or neg.shape[1:] != output.shape:
            raise ValueError(
                f"SPNLoss: negatives of shape {tuple(neg.shape)} do not match output {tuple(output.shape)} "
                "(expected (N, B, C, H, W) or a list of (B, C, H, W))"
            )
        neg = neg.detach()
        # Low-precision negatives (a bf16 NegativeBank) keep their dtype: their VGG then runs in it too.
        return neg if neg.dtype in _LOW_PRECISION else neg.to(output.dtype)

    def distance(self, output: Tensor, negatives: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Eq. 4: weighted feature distance between ``output`` and the negatives, averaged over them.

        phi(output) is computed once per step (with gradients), and the VGG of all N negatives runs in
        one batched call over N*B images without autograd: the negatives are constants, so keeping
        their activations or back-propagating through them would only cost time and memory.
        bfloat16 / float16 negatives have their VGG features computed under autocast in that dtype
        (φ(output) and its gradient keep ``output``'s precision).

        Per layer, ``f_out`` (B, ...) is broadcast against ``f_neg`` (N, B, ...) and averaged over all
        elements. All negatives have the same number of elements M, so this mean is
        ``(1/(N*M)) * sum_i sum_e = (1/N) * sum_i mean_e(...)``, i.e. exactly the per-negative
        means of Eq. 4 averaged over i. With ``reduction='sum'`` the sum over all elements is divided
        by N for the same reason.

        Args:
            output: Target network output (B, C, H, W).
            negatives: Negative outputs, a (N, B, C, H, W) tensor or N tensors of (B, C, H, W).
                A single (B, C, H, W) tensor counts as N = 1.

        Returns:
            Scalar distance (non-negative); gradients flow to ``output`` only.
        """
        neg = self._stack_negatives(output, negatives)
        n, b = neg.shape[0], output.shape[0]
        feats_out = self._features(output)
        cast = torch.autocast(neg.device.type, dtype=neg.dtype) if neg.dtype in _LOW_PRECISION else nullcontext()
        with torch.no_grad(), cast:
            feats_neg = self._features(neg.flatten(0, 1))
        # At least float32: under autocast the VGG features are bf16/fp16, the weighted sum must not be.
        total = output.new_zeros((), dtype=torch.promote_types(output.dtype, torch.float32))
        for name, weight in self.layer_weights.items():
            f_neg = feats_neg[name].unflatten(0, (n, b))
            if self.criterion == "l1" and self.reduction == "mean":
                layer = mean_abs_to_many(feats_out[name], f_neg)  # fused: no N-times-larger tensor kept
            else:
                err = self._crit(feats_out[name].unsqueeze(0) - f_neg)
                layer = err.mean(dtype=total.dtype) if self.reduction == "mean" else err.sum(dtype=total.dtype) / n
            total = total + weight * layer
        return total

    def forward(self, output: Tensor, negatives: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """Signed, weighted term to add to the total loss: ``-loss_weight * distance(output, negatives)``.

        Args:
            output: Target network output (B, C, H, W).
            negatives: Negative outputs (see :meth:`distance`).

        Returns:
            Scalar loss term (non-positive).
        """
        return spn_term(self.distance(output, negatives), self.loss_weight)

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        return (
            f"loss_weight={self.loss_weight}, layer_weights={self.layer_weights}, "
            f"criterion={self.criterion!r}, reduction={self.reduction!r}"
        )
