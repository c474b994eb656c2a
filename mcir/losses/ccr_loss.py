"""CCR: curricular contrastive regularization (Zheng et al., CVPR 2023), a Table 5 peer of SPN."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Literal, Mapping, Optional, Union

import torch
from torch import Tensor, nn

from mcir.constraints import Decay, NonNegativeFloat
from mcir.errors import CheckpointError, OptionError
from mcir.losses.contrastive_loss import RatioContrastLoss, match_size
from mcir.losses.vgg_features import VGGType
from mcir.registry import LOSS_REGISTRY

# Keys of a ``negatives.<name>`` section that are not arguments of the network.
_OWN_KEYS = ("psnr", "weights", "param_key", "strict")
PSNR_CAP_DB = 100.0  # PSNR of identical images (the official metrics.psnr returns 100 for them)


def batch_psnr(img: Tensor, gt: Tensor) -> Tensor:
    """Mean over the batch of each image's PSNR (dB) against the GT, both clamped to [0, 1], no gradient.

    Args:
        img: (B, C, H, W) images.
        gt: (B, C, H, W) ground truth.

    Returns:
        Scalar tensor, at most :data:`PSNR_CAP_DB`.
    """
    with torch.no_grad():
        diff = img.detach().float().clamp(0, 1) - gt.detach().float().clamp(0, 1)
        mse = diff.pow(2).flatten(1).mean(1).clamp_min(10 ** (-PSNR_CAP_DB / 10))
        return (-10 * torch.log10(mse)).mean()


def curriculum_weights(anchor_psnr: Tensor, negative_psnr: Tensor, lam: float, input_weight: Optional[float]) -> Tensor:
    """CCR's weights of K method negatives (and the input), normalised to sum to one.

    A negative the anchor already beats (``anchor_psnr > negative_psnr``, "easy") weighs ``1 + lam``; one it
    does not beat yet ("hard", ties included) weighs ``1 - lam``; the input, when ``input_weight`` is not
    None, weighs ``input_weight`` (officially K) and comes last.

    Args:
        anchor_psnr: Scalar PSNR of the anchor (the network output).
        negative_psnr: (K,) PSNR of each method negative.
        lam: Curriculum λ (official 0.25).
        input_weight: Raw weight of the input negative, or None when the input is not a negative.

    Returns:
        (K,) or (K + 1,) weights summing to one.
    """
    easy = anchor_psnr > negative_psnr
    raw = torch.where(easy, 1.0 + lam, 1.0 - lam).to(torch.float32)
    if input_weight is not None:
        raw = torch.cat([raw, raw.new_tensor([float(input_weight)])])
    return raw / raw.sum()


def _frozen_network(name: str, spec: Mapping[str, Any]) -> nn.Module:
    """Build the network of ``negatives.<name>`` from mcir's arch registry, load its weights and freeze it."""
    from mcir.archs import build_network
    from mcir.core.checkpoint_io import load_network_weights

    key = f"negatives.{name}"
    net = build_network({k: v for k, v in spec.items() if k not in _OWN_KEYS}, key=key)
    weights = spec.get("weights")
    if weights is None:
        if any(True for _ in net.parameters()):
            raise OptionError("is required for a network with parameters", key=f"{key}.weights")
    elif not Path(str(weights)).is_file():
        raise OptionError(f"file not found: {weights}", key=f"{key}.weights")
    else:
        try:
            load_network_weights(net, str(weights), spec.get("param_key", "params"), bool(spec.get("strict", True)))
        except CheckpointError as exc:
            raise OptionError(str(exc), key=f"{key}.weights") from exc
    net.requires_grad_(False)
    return net.eval()


@LOSS_REGISTRY.register()
class CCRLoss(RatioContrastLoss):
    """Curricular contrastive regularization of C2PNet (Zheng et al., CVPR 2023).

    ``L = loss_weight · Σ_l w_l · D(φ_l(out), φ_l(gt)) / (Σ_k ω_k · D(φ_l(out), φ_l(n_k))
    + ω_in · D(φ_l(out), φ_l(lq)) + 1e-7)``, D the mean absolute difference over the batch's features, φ_l
    VGG19 relu1_1 … relu5_1 with CR's weights w_l = 1/32, 1/16, 1/8, 1/4, 1, fed unnormalised [0, 1] images,
    the GT the positive. The negatives n_k are
    restorations of the same input by OTHER methods, from folders (``batch['negs']``, dataset option
    ``dataroot_neg``) or from frozen networks run on ``lq`` each step (``type`` + ``weights``). Their raw
    weights are ``1 + λ`` for an "easy" negative (the output's PSNR is above the negative's) and ``1 − λ`` for a
    "hard" one, the input's is K (the number of method negatives); all are divided by their sum
    (:func:`curriculum_weights`).

    Facts taken from the official code (github.com/YuZheng9/C2PNet, HEAD b09e79c):

    - ``C2R.py``: VGG19 slices = features[0:2], [2:7], [7:12], [12:21], [21:30] (relu1_1 … relu5_1), layer
      weights [1/32, 1/16, 1/8, 1/4, 1], ``nn.L1Loss`` (mean) distances to detached positive/negative features,
      ratio ``d_ap / (Σ_i w_i·d_an_i + w_inp·d_inp + 1e-7)`` summed over layers; no ImageNet normalisation.
    - ``main.py`` ``curriculum_weight``: thresholds ITS [17, 19, 31, 32, 36, 40], OTS [17.43, 18.12, 30.86,
      31.98, 32.98, 33.57] dB, one per negative; weight ``1 + λ`` if the difficulty exceeds the threshold (strict
      ``>``) else ``1 − λ``; the input gets ``len(thresholds)`` = 6; all divided by their sum. The difficulty is
      the best validation PSNR so far (0 at the start, so every negative starts "hard"); the weights are
      recomputed after each evaluation (every 5000 steps) whose PSNR and SSIM both beat the best.
    - ``option.py``: λ = ``cl_lambda`` = 0.25, loss weight ``loss_weight`` = 0.2 (L = L1 + 0.2·CCR).
    - ``create_lmdb.py``: the six negatives are the outputs of DCP, AOD-Net, GCANet, GridDehazeNet, FFA-Net and
      a second FFA-Net ("FFANEW") on each ITS hazy image, stored under the hazy file name (folders
      ``pred_DCP17_its``, ``pred_AOD_19_its``, ``pred_GCA31_its``, ``pred_GDN_its``, ``pred_FFA_its``,
      ``pred_FFANEW_its``), paired in that order with the thresholds above.
    - ``data_utils.py`` (``DatasetLMDB.aug_data``): negatives get the same random crop, h-flip and rotation as
      the hazy/clear pair. ``main.py`` passes the network input as the input negative (unnormalised in the
      README's training commands, which do not set ``--norm``).

    What differs here:

    - The difficulty (the anchor's PSNR) is the PSNR of this batch's output (detached, clamped, mean of the
      per-image PSNRs), recomputed every step, not the best validation PSNR so far: the loss sees no
      validation, and staying stateless keeps resumed runs exact. So a negative can go back from easy to hard.
      (The official code is itself loose here: its ``test()`` returns inside the loop, so its "validation PSNR"
      is the first test image's, and its OTS branch compares with ``'OTS_test'`` while the set is called
      ``'ots_test'``, so OTS runs use the ITS thresholds.)
    - A negative's threshold is its ``psnr`` option when given (the official constants); without it, its PSNR
      on this batch's crops is used, which the official code does not do.
    - Frozen-network negatives are computed on the training crop each step, not precomputed on whole images, so
      near crop borders they can differ from a crop of the whole-image restoration.
    - The paper's own text was not available offline; its rule is taken from the code above. Grouping names
      ("easy" / "hard") are this module's; the official code has exactly these two weights.

    Args:
        negatives: ``{name: spec}`` in a fixed order. A spec without ``type`` is read from
            ``batch['negs'][name]`` (folders); with ``type`` it is a frozen network built from mcir's arch
            registry (other keys are its arguments) with ``weights`` (required when it has parameters),
            ``param_key`` (default ``params``) and ``strict`` (default true). Either kind may set ``psnr``, the
            negative's fixed difficulty threshold in dB.
        loss_weight: Factor of the term (official 0.2).
        curriculum_lambda: λ (official 0.25), in [0, 1).
        use_input_negative: The degraded input (bicubic-upsampled to the output size for SR) is a negative.
        input_weight: Raw weight of the input negative; None means K (official).
        vgg_type: ``vgg19`` (official) or ``vgg16``.
        layer_weights: ``{layer: w_l}``; None means CR's five VGG19 layers.
        use_input_norm: ImageNet mean/std normalisation inside the VGG (official: false).
        vgg_weights: ``imagenet``, a .pth path, or ``random`` (tests only).
        reduction: ``mean`` (official) or ``sum`` over feature elements.
    """

    def __init__(
        self,
        negatives: Mapping[str, Optional[Mapping[str, Any]]],
        loss_weight: NonNegativeFloat = 0.2,
        curriculum_lambda: Decay = 0.25,
        use_input_negative: bool = True,
        input_weight: Optional[NonNegativeFloat] = None,
        vgg_type: VGGType = "vgg19",
        layer_weights: Optional[Mapping[str, NonNegativeFloat]] = None,
        use_input_norm: bool = False,
        vgg_weights: Union[str, Path] = "imagenet",
        reduction: Literal["mean", "sum"] = "mean",
    ):
        if not isinstance(negatives, Mapping) or not negatives:
            raise OptionError("needs at least one {name: spec} (a folder or a frozen network)", key="negatives")
        if not 0 <= float(curriculum_lambda) < 1:
            raise OptionError(f"must be in [0, 1), got {curriculum_lambda}", key="curriculum_lambda")
        if input_weight is not None and float(input_weight) < 0:
            raise OptionError(f"must be >= 0, got {input_weight}", key="input_weight")
        super().__init__(loss_weight, vgg_type, layer_weights, use_input_norm, vgg_weights, reduction)
        self.lam = float(curriculum_lambda)
        self.use_input_negative = bool(use_input_negative)
        self.input_weight = float(len(negatives) if input_weight is None else input_weight)
        self.names: List[str] = []
        self.fixed_psnr: Dict[str, Optional[float]] = {}
        self.networks = nn.ModuleDict()
        for name, spec in negatives.items():
            name = str(name)
            if not name or "." in name:
                raise OptionError(f"negative names must be non-empty without '.', got {name!r}", key="negatives")
            if spec is not None and not isinstance(spec, Mapping):
                raise OptionError(f"must be null, {{psnr: <dB>}} or a network section, got {spec!r}",
                                  key=f"negatives.{name}")
            spec = dict(spec or {})
            psnr = spec.get("psnr")
            if psnr is not None and (isinstance(psnr, bool) or not isinstance(psnr, (int, float))):
                raise OptionError(f"must be a number of dB or null, got {psnr!r}", key=f"negatives.{name}.psnr")
            if "type" in spec:
                self.networks[name] = _frozen_network(name, spec)
            elif set(spec) - {"psnr"}:
                extra = sorted(set(spec) - {"psnr"})
                raise OptionError(f"{extra} need a network 'type' (a folder negative takes only psnr)",
                                  key=f"negatives.{name}")
            self.names.append(name)
            self.fixed_psnr[name] = None if psnr is None else float(psnr)

    def train(self, mode: bool = True) -> "CCRLoss":
        """Switch mode; the frozen negative networks always stay in eval mode."""
        super().train(mode)
        self.networks.eval()
        return self

    def negatives(self, output: Tensor, lq: Tensor, negs: Optional[Mapping[str, Tensor]]) -> List[Tensor]:
        """The K method negatives of this batch, in option order, shaped and typed like ``output``.

        Args:
            output: Network output (B, C, H, W).
            lq: Degraded input batch (what the frozen networks restore).
            negs: Folder negatives ``{name: (B, C, H, W)}`` from the batch, or None.

        Returns:
            K detached tensors.
        """
        given = dict(negs or {})
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise OptionError(f"the training data's dataroot_neg has {unknown}, which are not listed here "
                              "(list every folder negative, with psnr or null)", key="negatives")
        out = []
        for name in self.names:
            if name in self.networks:
                with torch.no_grad():
                    neg = self.networks[name](lq)
            elif name in given:
                neg = given[name]
            else:
                raise OptionError(
                    f"has no 'type' and the batch has no negs['{name}']: set the training dataset's "
                    f"dataroot_neg.{name} to a folder of its restorations", key=f"negatives.{name}")
            if tuple(neg.shape) != tuple(output.shape):
                raise OptionError(f"negative of shape {tuple(neg.shape)} does not match the output "
                                  f"{tuple(output.shape)}", key=f"negatives.{name}")
            out.append(neg.detach().to(output.device, output.dtype))
        return out

    def weights(self, output: Tensor, gt: Tensor, negatives: List[Tensor]) -> Tensor:
        """Curricular weights of this batch's negatives (method negatives first, then the input).

        Args:
            output: Network output (the anchor).
            gt: Ground truth.
            negatives: The K method negatives (from :meth:`negatives`).

        Returns:
            (K,) or (K + 1,) weights summing to one.
        """
        anchor = batch_psnr(output, gt)
        psnr = torch.stack([
            anchor.new_tensor(fixed) if fixed is not None else batch_psnr(neg, gt)
            for fixed, neg in zip(self.fixed_psnr.values(), negatives)
        ])
        return curriculum_weights(anchor, psnr, self.lam, self.input_weight if self.use_input_negative else None)

    def forward(self, output: Tensor, gt: Tensor, lq: Tensor, negs: Optional[Mapping[str, Tensor]] = None) -> Tensor:
        """CCR term for a batch.

        Args:
            output: Network output (B, C, H, W).
            gt: Ground truth (B, C, H, W), the positive.
            lq: Degraded input; resized to the output size when smaller (SR).
            negs: Folder negatives ``{name: (B, C, H, W)}`` (``batch['negs']``), needed for specs without type.

        Returns:
            Scalar loss.
        """
        method_negs = self.negatives(output, lq, negs)
        omega = self.weights(output, gt, method_negs)
        consts = method_negs + ([match_size(lq, output)] if self.use_input_negative else [])
        return self.ratio(output, [gt], consts, omega)

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        return (f"negatives={self.names}, fixed_psnr={self.fixed_psnr}, curriculum_lambda={self.lam}, "
                f"input_weight={self.input_weight if self.use_input_negative else None}, "
                f"loss_weight={self.loss_weight}")


__all__ = ["CCRLoss", "batch_psnr", "curriculum_weights"]
