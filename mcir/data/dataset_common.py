"""Set-up and per-image steps shared by the image datasets: option checks, roots, backends, colour modes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

import cv2
import numpy as np
from PIL import Image

from mcir.data.meta_info import is_image_file, read_meta_info
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import bgr2y

PHASES = ("train", "val", "test")
COLORS = (None, "rgb", "gray", "y")
#: The ``color`` option of the datasets (None: as the files are).
Color = Literal["rgb", "gray", "y"]
#: The ``phase`` a dataset is built for (set by the loader, not by options).
Phase = Literal["train", "val", "test"]
NO_IMAGES = "no images (png, jpg, jpeg, bmp, tif, tiff) in folder"


def check_patch_options(phase: str, scale: int, gt_size: Optional[int], color: Optional[str]) -> None:
    """Validate the options every image dataset takes: phase, scale, patch size and colour mode.

    Args:
        phase: ``train``, ``val`` or ``test``.
        scale: LQ -> GT size factor, an integer >= 1.
        gt_size: Training patch side (a multiple of ``scale``) or None.
        color: One of :data:`COLORS`.
    """
    if phase not in PHASES:
        raise OptionError(f"unknown phase '{phase}' (choose {', '.join(PHASES)})", key="phase")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise OptionError(f"scale must be an integer >= 1, got {scale!r}", key="scale")
    if gt_size is not None and (isinstance(gt_size, bool) or not isinstance(gt_size, int) or gt_size < 1):
        raise OptionError(f"gt_size must be a positive integer, got {gt_size!r}", key="gt_size")
    if gt_size is not None and gt_size % scale:
        raise OptionError(f"gt_size {gt_size} is not a multiple of scale {scale}", key="gt_size")
    if color not in COLORS:
        raise OptionError(f"unknown color '{color}' (choose rgb, gray or y)", key="color")


def check_folder(root: Optional[str], option: str) -> str:
    """The data root ``root`` without trailing slashes, once it is known to be a folder.

    Args:
        root: The option's value.
        option: The option's name (``dataroot_gt``), for messages.

    Returns:
        The root as a string.
    """
    if not root:
        raise OptionError("is required", key=option)
    root = str(root).rstrip("/\\") or str(root)  # "x.lmdb/" must still read as an LMDB root
    if not Path(root).is_dir():
        raise DataError(f"{root}: {option} folder does not exist")
    return root


def backend_config(io_backend: Optional[dict], roots: Dict[str, str]) -> Dict[str, Any]:
    """The file backend section for ``roots``: LMDB when asked for, or when every root ends in ``.lmdb``.

    Args:
        io_backend: The ``io_backend`` option (not mutated); None or without ``type`` picks by the roots.
        roots: ``{client key: root folder}`` in database order, e.g. ``{'lq': ..., 'gt': ...}``.

    Returns:
        The section for :func:`mcir.data.file_backends.build_backend`, ``type`` always set.
    """
    cfg = dict(io_backend or {})
    folders = list(roots.values())
    cfg["type"] = cfg.get("type") or ("lmdb" if all(r.endswith(".lmdb") for r in folders) else "disk")
    if cfg["type"] == "lmdb":
        for root in folders:
            if not root.endswith(".lmdb"):
                raise DataError(f"{root}: the lmdb io_backend needs a folder ending in .lmdb")
        cfg["db_paths"] = folders
        cfg["client_keys"] = list(roots)
    return cfg


def folder_images(root: str) -> List[str]:
    """Sorted names of the image files directly in ``root`` (not in sub-folders).

    Args:
        root: The folder.

    Returns:
        At least one name.
    """
    names = sorted(e.name for e in os.scandir(root) if e.is_file() and is_image_file(e.name))
    if not names:
        raise DataError(f"{root}: {NO_IMAGES}")
    return names


def listed_images(meta_info_file: str, root: str, what: str = "image") -> List[str]:
    """Names a meta_info file lists, each checked to exist under ``root``.

    Args:
        meta_info_file: The list (BasicSR format).
        root: Folder the names are relative to.
        what: What an entry is (``GT image``), for the message about a missing one.

    Returns:
        The names in file order.
    """
    names = [e.name for e in read_meta_info(meta_info_file)]
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            raise DataError(f"{meta_info_file}: {what} {path} does not exist")
    return names


def header_size(path: str) -> Tuple[int, int]:
    """``(height, width)`` from the file header without decoding the pixels.

    Args:
        path: Image file.

    Returns:
        Its height and width.
    """
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image header ({exc})") from exc


def to_color(img: np.ndarray, color: Optional[str]) -> np.ndarray:
    """Convert a float [0, 1] BGR/gray HWC image to a dataset's colour mode.

    Args:
        img: HWC image with 1 or 3 channels.
        color: None or ``rgb`` (3 channels; gray is repeated), ``gray`` (1 channel), ``y`` (BT.601 luma).

    Returns:
        The image in that mode, HWC.
    """
    if img.shape[2] == 1 and color != "gray":
        img = np.repeat(img, 3, axis=2)
    if color == "gray" and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)[:, :, None]
    if color == "y":
        return bgr2y(img)
    return img
