"""Restore image files: find the inputs, adapt bit depth and channels to the network, write PNGs atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from mcir.errors import DataError
from mcir.utils.img_util import img2tensor, tensor2img

#: Extensions read in folder mode (case-insensitive); a single file is decoded whatever its name.
INPUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# ITU-R BT.601 luma, the weights of OpenCV's RGB -> gray conversion.
_LUMA_RGB = (0.299, 0.587, 0.114)

RestoreFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Job:
    """One input image and where its result goes.

    Args:
        src: Input file.
        dst: Output PNG.
    """

    src: Path
    dst: Path


def find_inputs(
    input_path: Path, output_dir: Path, recursive: bool = False, suffix: str = ""
) -> Tuple[List[Job], List[Path]]:
    """The images to restore and the files skipped because their extension is not an image's.

    Folder mode mirrors sub-folders (with ``recursive``) below ``output_dir`` and skips hidden files and
    ``output_dir`` itself when it lies inside the input folder. Outputs are ``<stem><suffix>.png``.

    Args:
        input_path: An image file or a folder.
        output_dir: Output folder.
        recursive: Descend into sub-folders.
        suffix: Appended to each output file's stem.

    Returns:
        ``(jobs, skipped)`` in sorted path order.

    Raises:
        DataError: Missing input, two inputs mapping to one output, or an output that would overwrite its input.
    """
    if not input_path.exists():
        raise DataError(f"{input_path}: no such file or folder")
    jobs: List[Job] = []
    skipped: List[Path] = []
    if input_path.is_file():
        jobs.append(Job(input_path, output_dir / f"{input_path.stem}{suffix}.png"))
    else:
        out_resolved = output_dir.resolve()
        files = sorted(input_path.rglob("*") if recursive else input_path.iterdir())
        for f in files:
            rel = f.relative_to(input_path)
            if any(part.startswith(".") for part in rel.parts) or not f.is_file():
                continue
            if out_resolved in f.resolve().parents:
                continue  # our own outputs from an earlier run
            if f.suffix.lower() not in INPUT_EXTENSIONS:
                skipped.append(f)
                continue
            jobs.append(Job(f, output_dir / rel.parent / f"{f.stem}{suffix}.png"))
    seen = {}
    for job in jobs:
        if job.dst.resolve() == job.src.resolve():
            raise DataError(f"{job.dst}: would overwrite its input; choose another --output or a --suffix")
        if job.dst in seen:
            raise DataError(f"{seen[job.dst]} and {job.src} would both be written to {job.dst}; use --suffix or "
                            "restore them separately")
        seen[job.dst] = job.src
    return jobs, skipped


def restore_array(
    restore: RestoreFn, img: np.ndarray, net_in_ch: int, device: torch.device
) -> np.ndarray:
    """Restore one decoded image, keeping its bit depth and its gray/colour kind.

    A gray image given to a 3-channel network is replicated to 3 channels and the result converted back
    to gray (BT.601 luma); a colour image given to a 1-channel network is restored channel by channel.

    Args:
        restore: Maps an (N, C, H, W) float batch in [0, 1] on ``device`` to the restored batch.
        img: HxWx1 or HxWx3 BGR image, uint8, uint16 or float32 in [0, 1].
        net_in_ch: Input channels the network takes (1 or 3).
        device: Where the network runs.

    Returns:
        The restored HxWxC image (same C as the input): uint8 for uint8 input, uint16 otherwise.
    """
    x = img2tensor(img, bgr2rgb=True, float32=True)[None].to(device)
    out = restore_channels(restore, x, net_in_ch)
    out_type = np.uint8 if img.dtype == np.uint8 else np.uint16
    return tensor2img(out[0].float().cpu(), rgb2bgr=True, out_type=out_type)


def restore_channels(restore: RestoreFn, x: torch.Tensor, net_in_ch: int) -> torch.Tensor:
    """Restore an RGB or gray batch with a 1- or 3-channel network, keeping the batch's channel count.

    A gray batch given to a 3-channel network is replicated to 3 channels and the result converted back
    to gray (BT.601 luma); a colour batch given to a 1-channel network is restored channel by channel.

    Args:
        restore: Maps an (N, C, H, W) float batch in [0, 1] to the restored batch.
        x: (N, 1 or 3, H, W) float batch in [0, 1] (RGB order), on the network's device.
        net_in_ch: Input channels the network takes (1 or 3).

    Returns:
        The restored batch (not clamped) with ``x``'s channel count.
    """
    n, channels = x.shape[:2]
    if net_in_ch not in (1, 3) or channels not in (1, 3):
        raise DataError(f"cannot feed a {channels}-channel image to a network with {net_in_ch} input channels")
    if channels == net_in_ch:
        return restore(x)
    if channels == 1:
        out = restore(x.expand(-1, 3, -1, -1).contiguous())
        weights = torch.tensor(_LUMA_RGB, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
        return (out * weights).sum(1, keepdim=True)
    out = restore(x.reshape(n * 3, 1, *x.shape[2:]))
    return out.reshape(n, 3, *out.shape[2:])


def network_input_channels(net: nn.Module, declared: Optional[int] = None) -> int:
    """Input channels of ``net``: the declared ``num_in_ch``, else its first convolution's, else 3.

    Args:
        net: The network.
        declared: ``num_in_ch`` from the options, when known.

    Returns:
        The channel count.
    """
    if declared is not None:
        return int(declared)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    return 3


def has_alpha(path: Path) -> bool:
    """Whether the file's header declares transparency (read without decoding the pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    except (OSError, ValueError):
        return False
