"""Image I/O and numpy <-> tensor conversion (OpenCV BGR, HWC; tensors RGB, CHW, float in [0, 1])."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch

from mcir.errors import DataError
from mcir.utils.atomic import atomic_write_bytes

PathLike = Union[str, os.PathLike]
_INT_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def img2float(img: np.ndarray) -> np.ndarray:
    """Scale a uint8/uint16 image to float32 in [0, 1]; float images are only cast to float32.

    Args:
        img: Image array of any shape.

    Returns:
        float32 array of the same shape.
    """
    if img.dtype in _INT_MAX:
        return img.astype(np.float32) / np.float32(_INT_MAX[img.dtype])
    return img.astype(np.float32, copy=False)


def imfrombytes(content: bytes, float32: bool = False, path: str = "") -> np.ndarray:
    """Decode an encoded image (PNG, JPEG, BMP, TIFF ...) to a BGR HWC array.

    The bit depth is kept (uint8 or uint16); grayscale becomes HxWx1 and an alpha channel is dropped,
    so the result always has 1 or 3 channels.

    Args:
        content: Encoded image bytes.
        float32: Return float32 in [0, 1] (divided by 255 or 65535) instead of the stored integers.
        path: Where the bytes came from, for the error message.

    Returns:
        The image, HxWx1 or HxWx3.
    """
    img = None
    if content:
        try:
            img = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            img = None
    if img is None or img.size == 0:
        raise DataError(f"{path or '<bytes>'}: cannot decode image")
    if img.ndim == 2:
        img = img[:, :, None]
    elif img.shape[2] == 2:  # gray + alpha
        img = np.ascontiguousarray(img[:, :, :1])
    elif img.shape[2] == 4:  # BGRA
        img = np.ascontiguousarray(img[:, :, :3])
    if img.dtype not in _INT_MAX and img.dtype != np.float32:
        raise DataError(f"{path or '<bytes>'}: unsupported pixel type {img.dtype} (use 8/16-bit images)")
    return img2float(img) if float32 else img


def imread(path: PathLike, float32: bool = False) -> np.ndarray:
    """Read an image file as BGR HWC (uint8/uint16, or float32 in [0, 1]).

    Args:
        path: Image file.
        float32: See :func:`imfrombytes`.

    Returns:
        The image, HxWx1 or HxWx3.
    """
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read image ({exc.strerror or exc})") from exc
    return imfrombytes(content, float32=float32, path=str(path))


def imwrite(img: np.ndarray, path: PathLike, auto_mkdir: bool = True, params: Optional[Sequence[int]] = None) -> None:
    """Write a BGR HWC image atomically: encode, write a temporary file beside ``path``, then rename.

    Args:
        img: uint8/uint16 image, HxW, HxWx1 or HxWx3.
        path: Output file; its extension picks the format.
        auto_mkdir: Create the parent folder if missing.
        params: Extra OpenCV encoder flags, e.g. ``[cv2.IMWRITE_PNG_COMPRESSION, 3]``.
    """
    path = Path(path)
    ext = path.suffix
    try:
        ok, buf = cv2.imencode(ext, img, list(params or []))
    except cv2.error as exc:
        raise DataError(f"{path}: cannot encode image ({exc.err or exc})") from exc
    if not ok:
        raise DataError(f"{path}: cannot encode image as '{ext}'")
    if not auto_mkdir and not path.parent.is_dir():
        raise DataError(f"{path}: folder does not exist")
    atomic_write_bytes(buf.tobytes(), path)


def _one_img2tensor(img: np.ndarray, bgr2rgb: bool, float32: bool) -> torch.Tensor:
    if img.ndim == 2:
        img = img[:, :, None]
    if bgr2rgb and img.shape[2] == 3:
        img = img[:, :, ::-1]
    if float32:
        img = img2float(img)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def img2tensor(
    imgs: Union[np.ndarray, Sequence[np.ndarray]], bgr2rgb: bool = True, float32: bool = True
) -> Union[torch.Tensor, List[torch.Tensor]]:
    """Convert HWC numpy image(s) to CHW tensor(s).

    Args:
        imgs: One image or a list of images (HxW, HxWx1 or HxWx3).
        bgr2rgb: Swap BGR to RGB for 3-channel images.
        float32: Return float32; uint8/uint16 inputs are scaled to [0, 1], float inputs are kept as they are.

    Returns:
        A tensor for an array input, a list of tensors for a list input.
    """
    if isinstance(imgs, np.ndarray):
        return _one_img2tensor(imgs, bgr2rgb, float32)
    return [_one_img2tensor(img, bgr2rgb, float32) for img in imgs]


def _one_tensor2img(tensor: torch.Tensor, rgb2bgr: bool, out_type: type, min_max: Tuple[float, float]) -> np.ndarray:
    if not torch.is_tensor(tensor):
        raise TypeError(f"tensor2img expects a tensor, got {type(tensor).__name__}")
    t = tensor.detach()
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"tensor2img takes one image, got a batch of {t.shape[0]}; pass a list instead")
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise ValueError(f"tensor2img expects (1,C,H,W), (C,H,W) or (H,W), got shape {tuple(tensor.shape)}")
    lo, hi = float(min_max[0]), float(min_max[1])
    t = (t.float().cpu().clamp(lo, hi) - lo) / (hi - lo)
    img = t.permute(1, 2, 0).numpy()
    if rgb2bgr and img.shape[2] == 3:
        img = img[:, :, ::-1]
    out = np.dtype(out_type)
    if out in _INT_MAX:
        img = (img * _INT_MAX[out]).round()
    return np.ascontiguousarray(img.astype(out))


def tensor2img(
    tensor: Union[torch.Tensor, Sequence[torch.Tensor]],
    rgb2bgr: bool = True,
    out_type: type = np.uint8,
    min_max: Tuple[float, float] = (0, 1),
) -> Union[np.ndarray, List[np.ndarray]]:
    """Convert tensor(s) to HWC numpy image(s), clamped to ``min_max`` and rescaled to the output type.

    uint8 output is ``(x * 255).round()`` of the clamped, [0, 1]-normalised value (BasicSR's rounding).

    Args:
        tensor: A (1,C,H,W), (C,H,W) or (H,W) tensor, or a list of them.
        rgb2bgr: Swap RGB to BGR for 3-channel images.
        out_type: ``np.uint8``, ``np.uint16`` (scaled by 65535) or ``np.float32`` (kept in [0, 1]).
        min_max: The value range mapped to [0, 1].

    Returns:
        HxWxC array (C = 1 or 3), or a list of them for a list input.
    """
    if isinstance(tensor, (list, tuple)):
        return [_one_tensor2img(t, rgb2bgr, out_type, min_max) for t in tensor]
    return _one_tensor2img(tensor, rgb2bgr, out_type, min_max)


def tensor2uint8(tensor: torch.Tensor) -> torch.Tensor:
    """Quantise a [0, 1] image tensor to 8-bit levels, keeping it a tensor (any shape, same device).

    Args:
        tensor: Float tensor, nominally in [0, 1].

    Returns:
        Float tensor of the same dtype with integer values in [0, 255]: ``(clamp(x, 0, 1) * 255).round()``.
    """
    return (tensor.clamp(0, 1) * 255.0).round()


def batch2uint8_imgs(batch: torch.Tensor) -> List[np.ndarray]:
    """Quantise an ``(N, C, H, W)`` batch in [0, 1] to HWC uint8 arrays, BGR when C is 3 (for OpenCV).

    The pixels equal :func:`tensor2img` of each image (clamp to [0, 1], ``* 255``, round half to even, all in
    float32), computed in NumPy on one buffer per image: no torch thread pool, so it stays fast when called
    from worker threads next to a running network.

    Args:
        batch: Float tensor, nominally in [0, 1], on any device.

    Returns:
        ``N`` contiguous HxWxC uint8 arrays.
    """
    arr = batch.detach().float().cpu().numpy()
    imgs = []
    for img in arr:
        hwc = img.transpose(1, 2, 0)
        buf = np.clip(hwc[..., ::-1] if hwc.shape[2] == 3 else hwc, 0.0, 1.0)
        np.multiply(buf, np.float32(255.0), out=buf)
        np.rint(buf, out=buf)
        imgs.append(np.ascontiguousarray(buf.astype(np.uint8)))
    return imgs


def bgr2y(img: np.ndarray) -> np.ndarray:
    """Luma (Y of ITU-R BT.601 YCbCr, studio range) of a BGR image, like MATLAB's ``rgb2ycbcr``.

    Args:
        img: BGR image, HxWx3, uint8 or float in [0, 1].

    Returns:
        HxWx1 float32 in [16/255, 235/255].
    """
    x = img2float(img)
    y = x[:, :, 0] * 24.966 + x[:, :, 1] * 128.553 + x[:, :, 2] * 65.481 + 16.0
    return (y / 255.0).astype(np.float32)[:, :, None]
