"""Sample-contrastive peers of SPN: CR (AECR-Net) and a PCL-style loss, on a shared VGG ratio.

Both are ratio losses on frozen VGG features: for each layer ``l`` with weight ``w_l``,
``w_l · mean_j D(φ_l(a), φ_l(p_j)) / (Σ_k ω_k · D(φ_l(a), φ_l(n_k)) + eps)`` where ``a`` is the network
output (anchor), ``p_j`` the positives, ``n_k`` the negatives, ``D`` the mean absolute difference and
``ω_k`` = 1/K. Minimising it pulls the output towards the positives and pushes it from the negatives.
MCIR's own term (negatives = the model's history) is :class:`mcir.method.eq2_4_spn.SPNLoss`; these and
:class:`mcir.losses.ccr_loss.CCRLoss` (curricular weights over other methods' restorations) are the
sample-contrastive methods it is compared with (the paper's Table 5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Literal, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mcir.constraints import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from mcir.errors import OptionError
from mcir.losses.loss_util import check_reduction
from mcir.losses.vgg_features import VGGFeatureExtractor, VGGType
from mcir.registry import LOSS_REGISTRY

# AECR-Net (Wu et al., CVPR 2021): VGG19 relu1_1 ... relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1.
CR_LAYER_WEIGHTS: Mapping[str, float] = {
    "relu1_1": 1 / 32,
    "relu2_1": 1 / 16,
    "relu3_1": 1 / 8,
    "relu4_1": 1 / 4,
    "relu5_1": 1.0,
}
RATIO_EPS = 1e-7


def match_size(img: Tensor, like: Tensor) -> Tensor:
    """``img`` resized (bicubic) to the spatial size of ``like`` when they differ (SR inputs), else as is."""
    if img.shape[-2:] == like.shape[-2:]:
        return img
    return F.interpolate(img, size=like.shape[-2:], mode="bicubic", align_corners=False)


class RatioContrastLoss(nn.Module):
    """VGG-feature ratio loss shared by :class:`ContrastLoss`, :class:`PCLLoss` and ``CCRLoss`` (module docstring).

    Args:
        loss_weight: Factor applied to the loss.
        vgg_type: ``vgg16`` or ``vgg19``.
        layer_weights: ``{layer: w_l}``; None means CR's five VGG19 layers (:data:`CR_LAYER_WEIGHTS`).
        use_input_norm: ImageNet mean/std normalisation inside the VGG.
        vgg_weights: ``imagenet``, a .pth path, or ``random`` (tests only).
        reduction: ``mean`` (each distance D is the mean absolute feature difference, AECR-Net's L1Loss) or
            ``sum`` (D sums over the feature elements; the ratio then only differs through ``eps``).
    """

    def __init__(
        self,
        loss_weight: float,
        vgg_type: str,
        layer_weights: Optional[Mapping[str, float]],
        use_input_norm: bool,
        vgg_weights: Union[str, Path],
        reduction: str = "mean",
    ):
        super().__init__()
        weights = CR_LAYER_WEIGHTS if layer_weights is None else layer_weights
        self.layer_weights = {k: float(v) for k, v in weights.items() if float(v) != 0.0}
        if not self.layer_weights:
            raise OptionError("needs at least one layer with a non-zero weight", key="layer_weights")
        if check_reduction(reduction) == "none":
            raise OptionError("must be mean or sum for a ratio loss, got 'none'", key="reduction")
        self.loss_weight = float(loss_weight)
        self.reduction = reduction
        try:
            self.vgg = VGGFeatureExtractor(list(self.layer_weights), vgg_type=vgg_type,
                                           use_input_norm=use_input_norm, vgg_weights=vgg_weights)
        except OptionError as exc:
            if exc.key != "layer_name_list":
                raise
            raise OptionError(exc.message, key="layer_weights") from exc

    def ratio(
        self, anchor: Tensor, positives: List[Tensor], negatives: List[Tensor], omega: Optional[Tensor] = None
    ) -> Tensor:
        """The weighted ratio loss of ``anchor`` against the given positives and negatives.

        Args:
            anchor: Network output (B, C, H, W), with gradients.
            positives: Tensors shaped like ``anchor`` (constants).
            negatives: Tensors shaped like ``anchor`` (constants).
            omega: Weight of each negative (K,); None means 1/K each.

        Returns:
            Scalar loss (already multiplied by ``loss_weight``).
        """
        n_pos, n_neg = len(positives), len(negatives)
        omega = anchor.new_full((n_neg,), 1.0 / n_neg) if omega is None else omega.to(anchor.device, anchor.dtype)
        f_a = self.vgg(anchor)
        with torch.no_grad():
            f_c = self.vgg(torch.cat([p.detach() for p in positives] + [n.detach() for n in negatives]))
        b = anchor.shape[0]
        total = anchor.new_zeros(())
        for name, weight in self.layer_weights.items():
            consts = f_c[name].unflatten(0, (n_pos + n_neg, b))
            err = (f_a[name].unsqueeze(0) - consts).abs().flatten(1)
            dist = err.mean(1) if self.reduction == "mean" else err.sum(1)  # one D per constant
            d_pos = dist[:n_pos].mean()
            d_neg = (omega * dist[n_pos:]).sum()
            total = total + weight * d_pos / (d_neg + RATIO_EPS)
        return self.loss_weight * total


@LOSS_REGISTRY.register()
class ContrastLoss(RatioContrastLoss):
    """CR of AECR-Net (Wu et al., CVPR 2021): anchor = output, positive = GT, negative = the degraded input.

    ``L = loss_weight · Σ_l w_l · D(φ_l(out), φ_l(gt)) / (D(φ_l(out), φ_l(lq)) + 1e-7)`` on VGG19
    relu1_1 … relu5_1 with weights 1/32, 1/16, 1/8, 1/4, 1 (AECR-Net's defaults, which feed the VGG
    unnormalised [0, 1] images: ``use_input_norm: false``). For SR the input is bicubic-upsampled to the
    output size first.

    Args:
        loss_weight: λ of the CR term (AECR-Net: 0.1).
        vgg_type: ``vgg19`` (AECR-Net) or ``vgg16``.
        layer_weights: ``{layer: w_l}``; None means AECR-Net's five layers.
        use_input_norm: ImageNet mean/std normalisation inside the VGG.
        vgg_weights: ``imagenet``, a .pth path, or ``random`` (tests only).
        reduction: ``mean`` (AECR-Net) or ``sum`` over feature elements (see :class:`RatioContrastLoss`).
    """

    def __init__(
        self,
        loss_weight: NonNegativeFloat = 0.1,
        vgg_type: VGGType = "vgg19",
        layer_weights: Optional[Mapping[str, NonNegativeFloat]] = None,
        use_input_norm: bool = False,
        vgg_weights: Union[str, Path] = "imagenet",
        reduction: Literal["mean", "sum"] = "mean",
    ):
        super().__init__(loss_weight, vgg_type, layer_weights, use_input_norm, vgg_weights, reduction)

    def forward(self, output: Tensor, gt: Tensor, lq: Tensor) -> Tensor:
        """CR term for a batch.

        Args:
            output: Network output (B, C, H, W).
            gt: Ground truth (B, C, H, W).
            lq: Degraded input (B, C, h, w); resized to the output size when smaller.

        Returns:
            Scalar loss.
        """
        return self.ratio(output, [gt], [match_size(lq, output)])


def gaussian_blur(img: Tensor, kernel_size: int, sigma: float) -> Tensor:
    """Depthwise Gaussian blur with reflect padding (same size as ``img``)."""
    half = kernel_size // 2
    x = torch.arange(kernel_size, dtype=img.dtype, device=img.device) - half
    k1 = torch.exp(-(x**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    kernel = (k1[:, None] * k1[None, :]).expand(img.shape[1], 1, kernel_size, kernel_size)
    padded = F.pad(img, (half, half, half, half), mode="reflect")
    return F.conv2d(padded, kernel, groups=img.shape[1])


@LOSS_REGISTRY.register()
class PCLLoss(RatioContrastLoss):
    """PCL-style contrastive loss (Wu, Jiang, Liu, TNNLS 2023) with its hard negatives and positives.

    Negatives: ``num_blur`` Gaussian-blurred copies of the GT (odd kernel size drawn in ``kernel_range``,
    σ in ``sigma_range``, fresh every step) plus the input upsampled to the output size. Positives: the GT
    plus ``num_sharpen`` unsharp-masked copies of it (``gt + amount·(gt − blur(gt))``, clamped to [0, 1]).
    The loss is the L1 ratio of the module docstring on the same VGG features SPN uses.

    What differs from the original PCL: it embeds images with a discriminator trained jointly with the
    generator and uses an InfoNCE objective; here the embedding is the frozen VGG (no extra network to
    train) and the objective is the L1 ratio of CR, so PCL's hard-sample generation is what is compared.
    Random draws use torch's global generator, which mcir's training state saves (resume stays exact).

    Args:
        loss_weight: Factor applied to the loss.
        num_blur: Number of blurred-GT negatives.
        num_sharpen: Number of sharpened-GT positives (in addition to the GT).
        kernel_range: Inclusive range of the (odd) Gaussian kernel size.
        sigma_range: Range of the Gaussian σ.
        sharpen_amount: Unsharp-mask amount.
        use_input_negative: Add the upsampled input as a negative.
        vgg_type: ``vgg16`` or ``vgg19``.
        layer_weights: ``{layer: w_l}``; None means CR's five VGG19 layers.
        use_input_norm: ImageNet mean/std normalisation inside the VGG.
        vgg_weights: ``imagenet``, a .pth path, or ``random`` (tests only).
        reduction: ``mean`` or ``sum`` over feature elements (see :class:`RatioContrastLoss`).
    """

    def __init__(
        self,
        loss_weight: NonNegativeFloat = 0.1,
        num_blur: NonNegativeInt = 3,
        num_sharpen: NonNegativeInt = 1,
        kernel_range: Tuple[PositiveInt, PositiveInt] = (3, 11),
        sigma_range: Tuple[PositiveFloat, PositiveFloat] = (0.1, 2.0),
        sharpen_amount: NonNegativeFloat = 1.0,
        use_input_negative: bool = True,
        vgg_type: VGGType = "vgg19",
        layer_weights: Optional[Mapping[str, NonNegativeFloat]] = None,
        use_input_norm: bool = False,
        vgg_weights: Union[str, Path] = "imagenet",
        reduction: Literal["mean", "sum"] = "mean",
    ):
        super().__init__(loss_weight, vgg_type, layer_weights, use_input_norm, vgg_weights, reduction)
        k_lo, k_hi = (int(v) for v in kernel_range)
        s_lo, s_hi = (float(v) for v in sigma_range)
        if not 3 <= k_lo <= k_hi:
            raise OptionError(f"must be [low, high] with 3 <= low <= high, got {list(kernel_range)}", key="kernel_range")
        if not 0 < s_lo <= s_hi:
            raise OptionError(f"must be [low, high] with 0 < low <= high, got {list(sigma_range)}", key="sigma_range")
        if num_blur < 0 or num_sharpen < 0 or (num_blur == 0 and not use_input_negative):
            raise OptionError("needs at least one negative (num_blur > 0 or use_input_negative)", key="num_blur")
        self.num_blur, self.num_sharpen = int(num_blur), int(num_sharpen)
        self.odd_sizes = [k for k in range(k_lo, k_hi + 1) if k % 2 == 1] or [k_lo | 1]
        self.sigma_range = (s_lo, s_hi)
        self.sharpen_amount = float(sharpen_amount)
        self.use_input_negative = bool(use_input_negative)

    def _draw(self) -> Dict[str, float]:
        """One random (kernel size, σ) pair from torch's global generator."""
        r = torch.rand(2).tolist()
        size = self.odd_sizes[min(int(r[0] * len(self.odd_sizes)), len(self.odd_sizes) - 1)]
        sigma = self.sigma_range[0] + r[1] * (self.sigma_range[1] - self.sigma_range[0])
        return {"kernel_size": size, "sigma": sigma}

    def samples(self, output: Tensor, gt: Tensor, lq: Tensor) -> Dict[str, List[Tensor]]:
        """The positives and negatives of one step (exposed for inspection and tests)."""
        with torch.no_grad():
            negatives = [gaussian_blur(gt, **self._draw()) for _ in range(self.num_blur)]
            if self.use_input_negative:
                negatives.append(match_size(lq, output))
            positives = [gt]
            for _ in range(self.num_sharpen):
                blurred = gaussian_blur(gt, **self._draw())
                positives.append((gt + self.sharpen_amount * (gt - blurred)).clamp(0, 1))
        return {"positives": positives, "negatives": negatives}

    def forward(self, output: Tensor, gt: Tensor, lq: Tensor) -> Tensor:
        """PCL-style term for a batch (arguments as in :meth:`ContrastLoss.forward`)."""
        s = self.samples(output, gt, lq)
        return self.ratio(output, s["positives"], s["negatives"])


__all__ = ["CR_LAYER_WEIGHTS", "ContrastLoss", "PCLLoss", "RatioContrastLoss", "gaussian_blur", "match_size"]
