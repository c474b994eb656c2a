"""LPIPS (Zhang et al. 2018) perceptual distance through the ``lpips`` package; lower is better.

The linear heads (``v0.1``) ship inside the ``lpips`` package; the AlexNet/VGG16 backbone is torchvision's
ImageNet network, read from the torch.hub cache, downloaded, or loaded from ``backbone_weights: <file>``
(the same torchvision ``.pth`` files SPN's ``vgg_weights`` takes). Images come as the evaluator hands them,
HWC in [0, 255] BGR (uint8); they are cropped by ``crop_border`` and fed to the network as RGB in [-1, 1]. The
network runs on the CPU in float32, so values do not depend on where the restoration network ran.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from mcir.errors import CheckpointError, DataError, OptionError
from mcir.metrics.psnr_ssim import reorder_image
from mcir.metrics.traits import metric_traits
from mcir.registry import METRIC_REGISTRY

__all__ = ["BACKBONE_URLS", "build_lpips", "calculate_lpips", "lpips_input"]

#: torchvision ImageNet weights of each backbone (file names as torch.hub caches them).
BACKBONE_URLS: Dict[str, str] = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def _backbone_state(net: str, backbone_weights: str) -> Tuple[Optional[Mapping[str, torch.Tensor]], str]:
    """The torchvision state_dict named by ``backbone_weights`` (None for ``'random'``) and its description."""
    url = BACKBONE_URLS[net]
    file_name = url.rsplit("/", 1)[1]
    if backbone_weights == "random":
        warnings.warn(f"LPIPS: backbone_weights='random', the {net} backbone is random (use only for tests)",
                      stacklevel=4)
        return None, "random"
    if backbone_weights == "imagenet":
        try:
            return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False,
                                                      weights_only=True), file_name
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
            cache = Path(torch.hub.get_dir()) / "checkpoints"
            raise OptionError(
                f"cannot get the LPIPS {net} backbone {file_name} ({type(exc).__name__}); download {url} and set "
                f"backbone_weights: /path/to/{file_name}, or put it in {cache}",
                key="backbone_weights",
            ) from exc
    path = Path(str(backbone_weights)).expanduser()
    if not path.is_file():
        raise OptionError(f"file not found: {backbone_weights} (takes 'imagenet', 'random' or a torchvision "
                          f"{file_name}-style .pth file)", key="backbone_weights")
    try:
        return torch.load(path, map_location="cpu", weights_only=True), str(path)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise CheckpointError(f"cannot read LPIPS backbone weights {path}: {exc}") from exc


def _load_backbone(trunk: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy torchvision ``features.N.*`` weights into the lpips trunk (``sliceK.N.*``), checking every one."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source} is not a torchvision state_dict")
    own = trunk.state_dict()
    wanted = {key: "features." + key.split(".", 1)[1] for key in own}
    missing = [tv for key, tv in wanted.items() if tv not in state or tuple(state[tv].shape) != tuple(own[key].shape)]
    if missing:
        raise CheckpointError(f"{source} does not fit the LPIPS backbone (missing or wrong shape: "
                              f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''})")
    trunk.load_state_dict({key: state[tv] for key, tv in wanted.items()})


def build_lpips(net: str = "alex", backbone_weights: str = "imagenet", version: str = "0.1") -> nn.Module:
    """The LPIPS network (eval mode, frozen, CPU).

    Args:
        net: Backbone, ``'alex'`` or ``'vgg'``.
        backbone_weights: ``'imagenet'`` (torch.hub cache or download), a torchvision ``.pth`` file, or
            ``'random'`` (tests only; warns).
        version: Linear-head version of the ``lpips`` package (``'0.1'``).

    Returns:
        ``lpips.LPIPS`` taking two RGB ``(N, 3, H, W)`` tensors in [-1, 1].
    """
    if net not in BACKBONE_URLS:
        raise OptionError(f"must be one of {', '.join(BACKBONE_URLS)}, got {net!r}", key="net")
    if version not in ("0.0", "0.1"):
        raise OptionError(f"must be '0.0' or '0.1', got {version!r}", key="version")
    try:
        import lpips
    except ImportError as exc:
        raise OptionError("the LPIPS metric needs the lpips package: pip install lpips", key="type") from exc
    state, source = _backbone_state(net, str(backbone_weights))
    with warnings.catch_warnings():
        # lpips asks torchvision for its backbone with the deprecated `pretrained=` argument.
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips.LPIPS(net=net, version=version, pnet_rand=True, verbose=False)
    if state is not None:
        _load_backbone(model.net, state, source)
    model.requires_grad_(False)
    return model.eval()


def lpips_input(img: np.ndarray, crop_border: int = 0, input_order: str = "HWC") -> torch.Tensor:
    """An evaluator image as LPIPS input: cropped, RGB, ``(1, 3, H, W)`` float32 in [-1, 1].

    Args:
        img: HWC (or CHW) image in [0, 255], BGR if 3 channels; grey images are repeated to 3 channels.
        crop_border: Pixels removed from each side.
        input_order: ``'HWC'`` or ``'CHW'``.

    Returns:
        The tensor.
    """
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise OptionError(f"crop_border must be an integer >= 0, got {crop_border!r}", key="crop_border")
    img = reorder_image(np.asarray(img), input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] != 3:
        raise DataError(f"LPIPS needs a grey or 3-channel image, got shape {img.shape}")
    rgb = np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(rgb / np.float32(127.5) - 1.0).unsqueeze(0)


def _prepare_lpips(
    crop_border: int = 0, input_order: str = "HWC", net: str = "alex", backbone_weights: str = "imagenet",
    version: str = "0.1",
) -> Callable[[np.ndarray, np.ndarray], float]:
    """Scorer holding one LPIPS network (built once per evaluation)."""
    model = build_lpips(net, backbone_weights, version)

    def score(img: np.ndarray, img2: np.ndarray) -> float:
        a, b = lpips_input(img, crop_border, input_order), lpips_input(img2, crop_border, input_order)
        if a.shape != b.shape:
            raise DataError(f"image shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
        with torch.inference_mode():
            return float(model(a, b).item())

    return score


@METRIC_REGISTRY.register()
@metric_traits(better="lower", reference=True, prepare=_prepare_lpips)
def calculate_lpips(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    input_order: str = "HWC",
    net: str = "alex",
    backbone_weights: str = "imagenet",
    version: str = "0.1",
    **kwargs: Any,
) -> float:
    """LPIPS distance of one pair (builds the network on every call; evaluations build it once).

    Args:
        img: Image in [0, 255], BGR if 3 channels; HWC or CHW.
        img2: Reference image of the same shape.
        crop_border: Pixels removed from each side.
        input_order: ``'HWC'`` or ``'CHW'``.
        net: Backbone, ``'alex'`` (default, the paper's recommendation) or ``'vgg'``.
        backbone_weights: ``'imagenet'``, a torchvision ``.pth`` file (``alexnet-owt-7be5be79.pth`` /
            ``vgg16-397923af.pth``) or ``'random'`` (tests only).
        version: Linear-head version (``'0.1'``).
        **kwargs: Ignored (option keys such as ``better``).

    Returns:
        The distance (0 for identical images; lower is better).
    """
    return _prepare_lpips(crop_border, input_order, net, backbone_weights, version)(img, img2)
