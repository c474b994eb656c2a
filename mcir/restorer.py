"""The Python API: ``Restorer`` restores NumPy arrays, PIL images, tensors and image folders with a network."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from mcir.cli.file_restore import find_inputs, has_alpha, network_input_channels, restore_array, restore_channels
from mcir.core.compile import maybe_compile
from mcir.core.inference import check_tile_args, infer
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import img2tensor, imread, imwrite, tensor2img

#: How the arguments are named in error messages (infer.py passes its ``--`` names).
API_NAMES: Mapping[str, str] = {"arch": "arch", "weights": "weights", "scale": "scale", "arch_options": "arch_options"}
_INT_TYPES = (np.uint8, np.uint16)


def resolve_device(device: Union[str, torch.device], key: str = "device") -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda``, ``cuda:1`` or a ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise OptionError(f"not a device: {device!r} (use auto, cpu or cuda)", key=key) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        use = "--device cpu" if key.startswith("--") else "device='cpu'"
        raise OptionError(f"CUDA is not available; use {use}", key=key)
    return dev


def arch_section(arch: str, scale: Optional[int] = None, arch_options: Optional[Mapping[str, Any]] = None,
                 names: Mapping[str, str] = API_NAMES) -> Dict[str, Any]:
    """A ``network_g`` section from an arch name, its arguments and ``scale``, validated like an option file's."""
    from mcir.components import load_components
    from mcir.options.spec import Typed
    from mcir.options.validate import validate_typed
    from mcir.registry import ARCH_REGISTRY

    load_components()
    cfg: Dict[str, Any] = {**dict(arch_options or {}), "type": arch}
    if scale is not None:
        if "upscale" in (ARCH_REGISTRY.option_params(arch) or {}):
            if "upscale" in cfg and cfg["upscale"] != scale:
                raise OptionError(f"{names['scale']} {scale} contradicts {names['arch_options']} upscale={cfg['upscale']}",
                                  key=names["scale"])
            cfg["upscale"] = scale
        elif scale != 1:
            raise OptionError(f"'{arch}' has no 'upscale' argument; it only works at scale 1", key=names["scale"])
    return validate_typed(Typed(registry=lambda: ARCH_REGISTRY), cfg, names["arch"], None)


def require_weights(cfg: Mapping[str, Any], weights: Optional[str], file: Optional[str], key: str) -> None:
    """Refuse a trainable arch without weights (random weights restore nothing)."""
    from mcir.registry import ARCH_REGISTRY

    trainable = getattr(ARCH_REGISTRY.get(cfg["type"]), "requires_training", True)
    if trainable and not weights:
        raise OptionError(f"'{cfg['type']}' needs trained weights (random weights restore nothing)", file, key)


def network_from_arch(arch: str, weights: Optional[str] = None, scale: Optional[int] = None,
                      arch_options: Optional[Mapping[str, Any]] = None, param_key: Optional[str] = None,
                      names: Mapping[str, str] = API_NAMES) -> Tuple[nn.Module, Mapping[str, Any]]:
    """A registered arch with its weights loaded (``param_key``, default ``params_ema`` then ``params``).

    Returns:
        ``(network on the CPU, network_g section)``.
    """
    from mcir.build import build_network

    cfg = arch_section(arch, scale, arch_options, names)
    require_weights(cfg, weights, None, names["weights"])
    path = {"pretrain_network_g": str(weights), "param_key_g": param_key or "params_ema"} if weights else None
    return build_network(cfg, path, names["arch"]), cfg


def network_from_options(path: str, weights: Optional[str] = None, overrides: Sequence[str] = (),
                         param_key: Optional[str] = None, scale: Optional[int] = None,
                         names: Mapping[str, str] = API_NAMES) -> Tuple[nn.Module, Mapping[str, Any], Mapping[str, Any]]:
    """``network_g`` of a test option file with ``path.pretrain_network_g`` (or ``weights``) loaded.

    Returns:
        ``(network on the CPU, network_g section, the loaded options)``.
    """
    from mcir.build import build_network
    from mcir.options import load_options

    # weights / param_key go through the options like any override: the loaded options stay as loaded.
    extra = [f"path.pretrain_network_g={json.dumps(str(weights))}"] if weights else []
    extra += [f"path.param_key_g={json.dumps(param_key)}"] if param_key else []
    opt = load_options(str(path), [*overrides, *extra], is_train=False)
    if scale is not None and scale != opt["scale"]:
        raise OptionError(f"{names['scale']} {scale} contradicts the option file's scale {opt['scale']}",
                          key=names["scale"])
    require_weights(opt["network_g"], opt["path"]["pretrain_network_g"], str(path), "path.pretrain_network_g")
    return build_network(opt["network_g"], opt["path"], str(path)), opt["network_g"], opt


class Restorer:
    """Restore images with a trained network: ``Restorer(arch="EDSR", weights="W.pth", scale=4)(image)``.

    ``r(image)`` takes and returns the same kind of image:

    * a NumPy array, HxWx3 in **RGB** order (as PIL, imageio and matplotlib give it; OpenCV's ``imread`` gives
      BGR: reverse it with ``img[..., ::-1]``), or HxW / HxWx1 gray; uint8, uint16 or float in [0, 1]. The
      result has the same dtype and channel layout (16-bit in, 16-bit out; gray in, gray out);
    * a PIL image: ``RGB``, ``L``, ``I;16`` and ``I`` keep their mode; ``P``, ``CMYK``, ... come back as
      ``RGB``, ``1`` as ``L``, and an alpha channel is dropped with a warning;
    * a torch tensor (C, H, W) or (N, C, H, W), float in [0, 1]: the result is a tensor of the same dtype on
      the same device, clamped to [0, 1].

    A gray image given to a 3-channel network is replicated to 3 channels and the result converted back to
    gray (BT.601 luma); a colour image given to a 1-channel network is restored channel by channel.

    Args:
        arch: Registered architecture name (``EDSR``, ``SwinIR``, ``Bicubic`` ...).
        weights: Weights file (BasicSR layout; ``params_ema``, then ``params``, unless ``param_key``).
        scale: Upscale factor (the arch's ``upscale`` argument).
        tile: Restore tile by tile with this side in input pixels (bounds memory); None: whole images.
        tile_overlap: Overlap between tiles.
        self_ensemble: Average the 8 flips/rotations (8x slower).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1`` or a ``torch.device``.
        arch_options: Further arguments of the arch (``{"num_feat": 64}``), checked like an option file's.
        param_key: Key of the weights in the file.
        compile: Run the network through ``torch.compile`` (the plain network, with a warning, on failure).
    """

    def __init__(self, arch: str, weights: Optional[str] = None, scale: Optional[int] = None,
                 tile: Optional[int] = None, tile_overlap: int = 32, self_ensemble: bool = False,
                 device: Union[str, torch.device] = "auto", arch_options: Optional[Mapping[str, Any]] = None,
                 param_key: Optional[str] = None, compile: bool = False):
        dev = resolve_device(device)
        net, cfg = network_from_arch(arch, weights, scale, arch_options, param_key)
        self._setup(net, cfg.get("num_in_ch"), tile, tile_overlap, self_ensemble, dev, compile)

    @classmethod
    def from_options(cls, path: str, weights: Optional[str] = None, overrides: Sequence[str] = (),
                     tile: Any = "options", tile_overlap: Any = "options", self_ensemble: Any = "options",
                     device: Union[str, torch.device] = "auto", param_key: Optional[str] = None,
                     compile: Any = "options") -> "Restorer":
        """A restorer for the ``network_g`` and weights of a test option file.

        Args:
            path: Option file (``network_g``, ``path.pretrain_network_g``, ``val.tile`` ...).
            weights: Weights file instead of ``path.pretrain_network_g``.
            overrides: ``key=value`` overrides, as ``--set`` takes them.
            tile, tile_overlap, self_ensemble, compile: Default ``"options"``: the ``val`` section's values.
            device: As for :class:`Restorer`.
            param_key: Key of the weights in the file instead of ``path.param_key_g``.

        Returns:
            The restorer.
        """
        dev = resolve_device(device)
        net, cfg, opt = network_from_options(path, weights, overrides, param_key)
        val = opt["val"]
        pick = {k: val[k] if v == "options" else v for k, v in (("tile", tile), ("tile_overlap", tile_overlap),
                                                               ("self_ensemble", self_ensemble), ("compile", compile))}
        restorer = cls.__new__(cls)
        restorer._setup(net, cfg.get("num_in_ch"), pick["tile"], pick["tile_overlap"], pick["self_ensemble"], dev,
                        pick["compile"])
        return restorer

    @classmethod
    def from_network(cls, network: nn.Module, tile: Optional[int] = None, tile_overlap: int = 32,
                     self_ensemble: bool = False, device: Union[str, torch.device] = "auto",
                     in_channels: Optional[int] = None, compile: bool = False) -> "Restorer":
        """A restorer around a network you built (moved to ``device``; ``upscale`` / ``size_multiple`` are read
        from it; ``in_channels`` defaults to its first convolution's)."""
        restorer = cls.__new__(cls)
        restorer._setup(network, in_channels, tile, tile_overlap, self_ensemble, resolve_device(device), compile)
        return restorer

    def _setup(self, net: nn.Module, in_ch: Optional[int], tile: Optional[int], tile_overlap: int,
               self_ensemble: bool, device: torch.device, compile: bool) -> None:
        if tile is not None:
            check_tile_args(tile, tile_overlap, int(getattr(net, "size_multiple", 1)))
        elif isinstance(tile_overlap, bool) or not isinstance(tile_overlap, int) or tile_overlap < 0:
            raise OptionError(f"must be an integer >= 0, got {tile_overlap!r}", key="tile_overlap")
        self.network = net.to(device).eval()
        self.device = device
        self.scale = int(getattr(net, "upscale", 1))
        self.tile, self.tile_overlap, self.self_ensemble = tile, tile_overlap, bool(self_ensemble)
        self.in_channels = network_input_channels(net, in_ch)
        self._run = maybe_compile(self.network, bool(compile), "the restoration network")

    def _restore(self, x: torch.Tensor) -> torch.Tensor:
        return infer(self._run, x, tile=self.tile, tile_overlap=self.tile_overlap, self_ensemble=self.self_ensemble,
                     device=self.device)

    # ---- one image ------------------------------------------------------------------------------
    def __call__(self, image: Any) -> Any:
        """Restore a NumPy array (RGB), a PIL image or a tensor; the result is of the same kind (see the class)."""
        if isinstance(image, torch.Tensor):
            return self.restore_tensor(image)
        if isinstance(image, np.ndarray):
            return self.restore_array(image)
        if type(image).__module__.startswith("PIL."):
            return self.restore_pil(image)
        raise DataError(f"expected a NumPy array, a PIL image or a torch tensor, got {type(image).__name__}")

    def restore_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(C, H, W) or (N, C, H, W) float in [0, 1] -> the same layout, dtype and device, clamped to [0, 1]."""
        if not x.is_floating_point():
            raise DataError(f"expected a float tensor in [0, 1], got {x.dtype} (divide integer images by 255 or 65535)")
        if x.dim() not in (3, 4) or min(x.shape[-2:]) == 0:
            raise DataError(f"expected a (C, H, W) or (N, C, H, W) image tensor, got shape {tuple(x.shape)}")
        batch = x if x.dim() == 4 else x[None]
        out = restore_channels(self._restore, batch.to(self.device, torch.float32), self.in_channels)
        out = out.clamp_(0, 1).to(x.device, x.dtype)
        return out if x.dim() == 4 else out[0]

    def restore_array(self, img: np.ndarray) -> np.ndarray:
        """HxWx3 RGB, HxWx1 or HxW array (uint8, uint16 or float in [0, 1]) -> same layout and dtype."""
        if img.dtype not in _INT_TYPES and not np.issubdtype(img.dtype, np.floating):
            raise DataError(f"expected a uint8, uint16 or float array, got {img.dtype}")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)) or 0 in img.shape:
            hint = " (drop the alpha channel: img[..., :3])" if img.ndim == 3 and img.shape[2] == 4 else ""
            raise DataError(f"expected an HxWx3 (RGB), HxWx1 or HxW image, got shape {img.shape}{hint}")
        x = img2tensor(img, bgr2rgb=False, float32=True)[None].to(self.device)
        out = restore_channels(self._restore, x, self.in_channels)
        out_type = img.dtype.type if img.dtype in _INT_TYPES else np.float32
        result = tensor2img(out[0], rgb2bgr=False, out_type=out_type)
        if img.ndim == 2:
            result = result[:, :, 0]
        return result if img.dtype in _INT_TYPES else result.astype(img.dtype, copy=False)

    def restore_pil(self, img: Any) -> Any:
        """A PIL image -> a PIL image (its mode kept where sensible, see the class)."""
        from mcir.utils.pil_image import array_to_pil, pil_to_array

        arr, mode, dropped = pil_to_array(img)
        if dropped:
            warnings.warn(f"PIL image of mode '{img.mode}': alpha channel dropped", UserWarning, stacklevel=3)
        return array_to_pil(self.restore_array(arr), mode)

    # ---- files ----------------------------------------------------------------------------------
    def restore_folder(self, input_path: Union[str, Path], output_dir: Union[str, Path], recursive: bool = False,
                       suffix: str = "", on_warning: Optional[Callable[[str], None]] = None,
                       progress: bool = False) -> Dict[str, List[str]]:
        """Restore an image file or every image of a folder into ``output_dir`` as PNGs, as ``mcir-infer`` does.

        Outputs are ``<stem><suffix>.png`` (sub-folders mirrored with ``recursive``), 16-bit for 16-bit input,
        gray for gray input, written atomically. Non-images and undecodable files of a folder are skipped with
        a warning; a single file that is not an image is an error.

        Args:
            input_path: An image file or a folder (png, jpg, bmp, tif, webp).
            output_dir: Output folder (created).
            recursive: Also restore the images in sub-folders.
            suffix: Appended to each output file's stem.
            on_warning: Receives each warning line (default: :func:`warnings.warn`).
            progress: Show a progress bar on a terminal.

        Returns:
            ``{"written": [paths], "skipped": [paths]}``.
        """
        from tqdm import tqdm

        warn = on_warning or (lambda msg: warnings.warn(msg, UserWarning, stacklevel=3))
        input_path, output_dir = Path(input_path), Path(output_dir)
        single = input_path.is_file()
        jobs, skipped = find_inputs(input_path, output_dir, recursive, suffix)
        for path in skipped:
            warn(f"skipped {path}: not an image file (extensions: png, jpg, jpeg, bmp, tif, tiff, webp)")
        if not jobs:
            raise DataError(f"{input_path}: no images found{'' if recursive else ' (use --recursive for sub-folders)'}")
        written: List[str] = []
        bar = tqdm(jobs, unit="img", disable=None if progress else True, dynamic_ncols=True)
        for job in bar:
            bar.set_postfix_str(job.src.name, refresh=False)
            try:
                img = imread(job.src)
            except DataError as exc:
                if single:
                    raise DataError(f"{job.src}: not an image (cannot decode it)") from exc
                warn(f"skipped {job.src}: cannot decode it as an image")
                skipped.append(job.src)
                continue
            if has_alpha(job.src):
                warn(f"{job.src}: alpha channel dropped")
            imwrite(restore_array(self._restore, img, self.in_channels, self.device), job.dst)
            written.append(str(job.dst))
        if not written:
            raise DataError(f"{input_path}: none of the {len(jobs)} image files could be decoded")
        return {"written": written, "skipped": [str(p) for p in skipped]}
