"""PairedImageDataset: (LQ, GT) image pairs from folders, a meta_info list or LMDB, or LQ made from GT.

Training crops and flips draw from torch's default generator (see :mod:`mcir.data.transforms`), which
each DataLoader worker gets seeded by the loader; the dataset itself keeps no RNG state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from mcir.data.file_backends import build_backend
from mcir.data.imresize import imresize, modcrop
from mcir.data.meta_info import is_image_file, read_meta_info
from mcir.data.transforms import augment, crop_gt_to_lq, paired_random_crop, random_crop
from mcir.errors import DataError, OptionError
from mcir.registry import DATASET_REGISTRY
from mcir.utils.img_util import bgr2y, img2float, imfrombytes, img2tensor

_PHASES = ("train", "val", "test")
_COLORS = (None, "rgb", "gray", "y")
_LQ_FROM_GT = (None, "bicubic")


def _check_folder(root: Optional[str], option: str) -> str:
    if not root:
        raise OptionError("is required", key=option)
    root = str(root).rstrip("/\\") or str(root)  # "x.lmdb/" must still read as an LMDB root
    if not Path(root).is_dir():
        raise DataError(f"{root}: {option} folder does not exist")
    return root


def _header_size(path: str) -> Tuple[int, int]:
    """``(height, width)`` from the file header without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image header ({exc})") from exc


def _lq_name(gt_name: str, filename_tmpl: str) -> str:
    """LQ file name for a GT name relative to its root: ``sub/baby.png`` -> ``sub/babyx4.png``."""
    head, base = os.path.split(gt_name)
    stem, ext = os.path.splitext(base)
    return os.path.join(head, filename_tmpl.format(stem) + ext)


def _to_color(img: np.ndarray, color: Optional[str]) -> np.ndarray:
    """Convert a float [0, 1] BGR/gray HWC image to the dataset's colour mode."""
    if img.shape[2] == 1 and color != "gray":
        img = np.repeat(img, 3, axis=2)
    if color == "gray" and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)[:, :, None]
    if color == "y":
        return bgr2y(img)
    return img


@DATASET_REGISTRY.register()
class PairedImageDataset(Dataset):
    """Paired LQ/GT images for restoration (BasicSR option names).

    Pairs are found in one of three ways: folder mode (GT ``<stem><ext>`` pairs with
    ``filename_tmpl.format(stem) + ext`` in ``dataroot_lq``), meta_info mode (GT names listed in
    ``meta_info_file``, LQ names as in folder mode), or LMDB mode (``io_backend: {type: lmdb}``, or both
    roots ending in ``.lmdb``; keys from each database's ``meta_info.txt``). With ``lq_from_gt: bicubic``
    the LQ image is MATLAB-bicubic ``imresize(modcrop(gt, scale), 1 / scale)`` of the uint8 GT.

    Args:
        dataroot_gt: GT folder or ``.lmdb``.
        dataroot_lq: LQ folder or ``.lmdb``; omit with ``lq_from_gt``.
        phase: ``train`` (random crop + flips) or ``val`` / ``test`` (whole images).
        scale: LQ -> GT upscaling factor (1 for same-size restoration).
        io_backend: ``{'type': 'disk'}`` or ``{'type': 'lmdb'}``; None picks LMDB when the roots end in ``.lmdb``.
        meta_info_file: Text file listing GT names (first token of each line).
        filename_tmpl: LQ name template applied to the GT stem, e.g. ``{}x4``.
        gt_size: GT patch size for training (a multiple of ``scale``); None trains on whole images.
        use_hflip: Random horizontal flips in training.
        use_rot: Random vertical flips and transposes in training.
        lq_from_gt: ``bicubic`` to make the LQ from the GT on the fly.
        name: Dataset name for messages.
        color: None or ``rgb`` (3 channels; gray images are repeated), ``gray`` (1 channel), ``y`` (luma only).
    """

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str] = None,
        phase: str = "train",
        scale: int = 1,
        io_backend: Optional[dict] = None,
        meta_info_file: Optional[str] = None,
        filename_tmpl: str = "{}",
        gt_size: Optional[int] = None,
        use_hflip: bool = False,
        use_rot: bool = False,
        lq_from_gt: Optional[str] = None,
        name: str = "",
        color: Optional[str] = None,
    ):
        super().__init__()
        self._check_options(dataroot_lq, phase, scale, filename_tmpl, gt_size, lq_from_gt, color)
        self.name = name
        self.phase = phase
        self.scale = int(scale)
        self.gt_size = gt_size
        self.use_hflip = use_hflip
        self.use_rot = use_rot
        self.lq_from_gt = lq_from_gt
        self.color = color
        self.filename_tmpl = filename_tmpl
        self.dataroot_gt = _check_folder(dataroot_gt, "dataroot_gt")
        self.dataroot_lq = None if lq_from_gt else _check_folder(dataroot_lq, "dataroot_lq")

        backend_cfg = dict(io_backend or {})
        roots = [r for r in (self.dataroot_lq, self.dataroot_gt) if r]
        kind = backend_cfg.get("type") or ("lmdb" if all(r.endswith(".lmdb") for r in roots) else "disk")
        backend_cfg["type"] = kind
        if kind == "lmdb":
            for root in roots:
                if not root.endswith(".lmdb"):
                    raise DataError(f"{root}: the lmdb io_backend needs a folder ending in .lmdb")
            backend_cfg["db_paths"] = roots
            backend_cfg["client_keys"] = ["lq", "gt"] if self.dataroot_lq else ["gt"]
            self.pairs = self._pairs_from_lmdb(meta_info_file)
        elif meta_info_file:
            self.pairs = self._pairs_from_names(self._names_from_meta(meta_info_file), where=str(meta_info_file))
        else:
            self.pairs = self._pairs_from_names(self._names_from_folder(), where=self.dataroot_gt)
        self.backend_kind = kind
        self.backend = build_backend(backend_cfg)
        if phase == "train" and gt_size:
            self._check_patch_fits(meta_info_file)

    def _check_patch_fits(self, meta_info_file: Optional[str]) -> None:
        """Fail at start-up, naming the image, when a GT image is smaller than ``gt_size``.

        Reads only image headers (disk) or meta_info shapes (LMDB), so it stays cheap for large sets.
        """
        if self.backend_kind == "lmdb":
            meta = meta_info_file or os.path.join(self.dataroot_gt, "meta_info.txt")
            sizes = [(f"{self.dataroot_gt}:{e.key}", e.shape[:2]) for e in read_meta_info(meta) if e.shape]
        else:
            sizes = [(gt, _header_size(gt)) for gt, _ in self.pairs]
        for where, (h, w) in sizes:
            if min(h, w) < self.gt_size:
                raise DataError(f"{where}: gt_size {self.gt_size} is larger than the GT image {h}x{w}")

    @staticmethod
    def _check_options(
        dataroot_lq: Optional[str],
        phase: str,
        scale: int,
        filename_tmpl: str,
        gt_size: Optional[int],
        lq_from_gt: Optional[str],
        color: Optional[str],
    ) -> None:
        if phase not in _PHASES:
            raise OptionError(f"unknown phase '{phase}' (choose {', '.join(_PHASES)})", key="phase")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise OptionError(f"scale must be an integer >= 1, got {scale!r}", key="scale")
        if "{}" not in filename_tmpl:
            raise OptionError(f"filename_tmpl '{filename_tmpl}' has no '{{}}' for the GT stem", key="filename_tmpl")
        if gt_size is not None and (isinstance(gt_size, bool) or not isinstance(gt_size, int) or gt_size < 1):
            raise OptionError(f"gt_size must be a positive integer, got {gt_size!r}", key="gt_size")
        if gt_size is not None and gt_size % scale:
            raise OptionError(f"gt_size {gt_size} is not a multiple of scale {scale}", key="gt_size")
        if lq_from_gt not in _LQ_FROM_GT:
            raise OptionError(f"unknown lq_from_gt '{lq_from_gt}' (choose bicubic)", key="lq_from_gt")
        if lq_from_gt and dataroot_lq:
            raise OptionError("set either dataroot_lq or lq_from_gt, not both", key="lq_from_gt")
        if color not in _COLORS:
            raise OptionError(f"unknown color '{color}' (choose rgb, gray or y)", key="color")

    def _names_from_folder(self) -> List[str]:
        names = sorted(e.name for e in os.scandir(self.dataroot_gt) if e.is_file() and is_image_file(e.name))
        if not names:
            raise DataError(f"{self.dataroot_gt}: no images (png, jpg, jpeg, bmp, tif, tiff) in folder")
        return names

    @staticmethod
    def _names_from_meta(meta_info_file: str) -> List[str]:
        return [entry.name for entry in read_meta_info(meta_info_file)]

    def _pairs_from_names(self, names: List[str], where: str) -> List[Tuple[str, str]]:
        """``(gt_path, lq_path)`` for GT names relative to ``dataroot_gt``; checks that both files exist."""
        pairs = []
        for gt_name in names:
            gt_path = os.path.join(self.dataroot_gt, gt_name)
            if not os.path.isfile(gt_path):
                raise DataError(f"{where}: GT image {gt_path} does not exist")
            if self.dataroot_lq is None:
                pairs.append((gt_path, gt_path))
                continue
            lq_path = os.path.join(self.dataroot_lq, _lq_name(gt_name, self.filename_tmpl))
            if not os.path.isfile(lq_path):
                raise DataError(f"no LQ for {gt_path} (looked for {lq_path})")
            pairs.append((gt_path, lq_path))
        return pairs

    def _pairs_from_lmdb(self, meta_info_file: Optional[str]) -> List[Tuple[str, str]]:
        """``(gt_key, lq_key)`` from the databases' meta_info.txt files."""
        gt_meta = meta_info_file or os.path.join(self.dataroot_gt, "meta_info.txt")
        gt_keys = [entry.key for entry in read_meta_info(gt_meta)]
        if self.dataroot_lq is None:
            return [(k, k) for k in gt_keys]
        lq_keys = {entry.key for entry in read_meta_info(os.path.join(self.dataroot_lq, "meta_info.txt"))}
        pairs = []
        for key in gt_keys:
            lq_key = self.filename_tmpl.format(key)
            # BasicSR ignores filename_tmpl for LMDB, so same-key pairs stay valid.
            if lq_key not in lq_keys and key in lq_keys:
                lq_key = key
            if lq_key not in lq_keys:
                raise DataError(f"no LQ for {self.dataroot_gt}:{key} (looked for {self.dataroot_lq}:{lq_key})")
            pairs.append((key, lq_key))
        return pairs

    def _read(self, path_or_key: str, client: str) -> np.ndarray:
        if self.backend_kind == "lmdb":
            root = self.dataroot_gt if client == "gt" else self.dataroot_lq
            content = self.backend.get(path_or_key, client)
            return imfrombytes(content, path=f"{root}:{path_or_key}")
        return imfrombytes(self.backend.get(path_or_key), path=path_or_key)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """Load pair ``index``.

        Args:
            index: Sample index.

        Returns:
            ``{'lq': (C,h,w), 'gt': (C,H,W)}`` float32 RGB tensors in [0, 1], plus ``lq_path``/``gt_path``
            (LMDB keys in LMDB mode).
        """
        gt_path, lq_path = self.pairs[index]
        img_gt = self._read(gt_path, "gt")
        train = self.phase == "train"
        if self.lq_from_gt:
            if train and self.gt_size:
                # Resizing only the patch is much cheaper than the whole image.
                img_gt = random_crop(img_gt, self.gt_size, path=gt_path)
            else:
                img_gt = modcrop(img_gt, self.scale)
            if min(img_gt.shape[:2]) < self.scale:
                raise DataError(f"{gt_path}: image {img_gt.shape[0]}x{img_gt.shape[1]} is smaller than scale")
            img_lq = imresize(np.ascontiguousarray(img_gt), 1.0 / self.scale)
        else:
            img_lq = self._read(lq_path, "lq")
            img_gt = crop_gt_to_lq(img_gt, img_lq, self.scale, gt_path)
            if train and self.gt_size:
                img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.gt_size, self.scale, gt_path)
        if train:
            img_gt, img_lq = augment([img_gt, img_lq], self.use_hflip, self.use_rot)
        gt, lq = (_to_color(img2float(img), self.color) for img in (img_gt, img_lq))
        t_gt, t_lq = img2tensor([gt, lq], bgr2rgb=True, float32=True)
        return {"lq": t_lq, "gt": t_gt, "lq_path": lq_path, "gt_path": gt_path}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, phase={self.phase}, pairs={len(self)}, "
            f"scale={self.scale}, backend={self.backend_kind})"
        )

