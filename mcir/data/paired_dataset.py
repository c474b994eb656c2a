"""PairedImageDataset: (LQ, GT) image pairs from folders, a meta_info list or LMDB, or LQ made from GT.

Training crops and flips draw from torch's default generator (see :mod:`mcir.data.transforms`), which
each DataLoader worker gets seeded by the loader; the dataset itself keeps no RNG state.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple

import numpy as np
from torch.utils.data import Dataset

from mcir.constraints import PositiveInt
from mcir.data.dataset_common import (
    Color,
    NO_IMAGES,
    Phase,
    backend_config,
    check_folder,
    check_patch_options,
    folder_images,
    header_size,
    listed_images,
    to_color,
)
from mcir.data.file_backends import build_backend
from mcir.data.imresize import imresize, modcrop
from mcir.data.meta_info import read_meta_info
from mcir.data.negative_folders import NegativeFolders, check_negative_option
from mcir.data.pairing import Pairing, check_pairing_option, find_pairs, list_images
from mcir.data.pairing_rules import PAIRING_CHOICES
from mcir.data.transforms import augment, crop_gt_to_lq, paired_random_crop, random_crop
from mcir.errors import DataError, OptionError
from mcir.registry import DATASET_REGISTRY
from mcir.utils.img_util import img2float, imfrombytes, img2tensor

_LQ_FROM_GT = (None, "bicubic")


def _center_crop(img: np.ndarray, h: int, w: int, path: str) -> np.ndarray:
    """Crop the centre ``h x w`` of ``img`` (a RESIDE GT larger than its hazy image, as FFA-Net crops it)."""
    h_img, w_img = img.shape[:2]
    if h_img < h or w_img < w:
        raise DataError(f"{path}: GT size {h_img}x{w_img} is smaller than the LQ size {h}x{w}")
    top, left = (h_img - h) // 2, (w_img - w) // 2
    return img[top : top + h, left : left + w, ...]


def _split_side_by_side(img: np.ndarray, path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(lq, gt)``: the left and right halves of a side-by-side pair image (DID-Data)."""
    w = img.shape[1]
    if w % 2:
        raise DataError(f"{path}: a side-by-side pair image needs an even width, got {w}")
    return img[:, : w // 2], img[:, w // 2 :]


@DATASET_REGISTRY.register()
class PairedImageDataset(Dataset):
    """Paired LQ/GT images for restoration (BasicSR option names).

    Pairs come from folders (searched recursively; see :mod:`mcir.data.pairing` for the benchmark layouts
    recognised, e.g. ``filename_tmpl: '{}x4'`` pairs ``babyx4.png`` with ``baby.png``, RESIDE
    ``1400_1.png`` pairs with ``1400.png``), from a meta_info file (its names select GT images, each paired
    with its LQ file(s) by the same rules), or from LMDB (``io_backend: {type: lmdb}``, or both roots ending
    in ``.lmdb``; keys from each database's ``meta_info.txt``, paired by the same rules). With several LQ
    images per GT (RESIDE, DDN, SPA) the dataset has one sample per LQ image. With
    ``lq_from_gt: bicubic`` the LQ image is MATLAB-bicubic ``imresize(modcrop(gt, scale), 1 / scale)`` of
    the uint8 GT.

    Args:
        dataroot_gt: GT folder or ``.lmdb``.
        dataroot_lq: LQ folder or ``.lmdb`` (may equal ``dataroot_gt`` for GoPro / DID / one-folder layouts);
            omit with ``lq_from_gt``.
        phase: ``train`` (random crop + flips) or ``val`` / ``test`` (whole images).
        scale: LQ -> GT upscaling factor (1 for same-size restoration).
        io_backend: ``{'type': 'disk'}`` or ``{'type': 'lmdb'}``; None picks LMDB when the roots end in ``.lmdb``.
        meta_info_file: Text file listing GT names (first token of each line); selects the GT images, each paired
            with its LQ file(s) by the pairing rule (LMDB: replaces the GT database's own meta_info.txt).
        filename_tmpl: LQ name template applied to the GT stem, e.g. ``{}x4``.
        gt_size: GT patch size for training (a multiple of ``scale``); None trains on whole images.
        use_hflip: Random horizontal flips in training.
        use_rot: Random vertical flips and transposes in training.
        lq_from_gt: ``bicubic`` to make the LQ from the GT on the fly.
        name: Dataset name for messages.
        color: None or ``rgb`` (3 channels; gray images are repeated), ``gray`` (1 channel), ``y`` (luma only).
        pairing: ``auto`` (the first rule that pairs every file) or a rule name: ``filename_tmpl``,
            ``same_name``, ``id_prefix`` (alias ``reside``, ``ddn``), ``rain_prefix``, ``spa``, ``gopro``,
            ``scale_suffix``, ``did``.
        dataroot_neg: ``{name: folder}`` of other methods' restorations of the LQ images (CCR's negatives,
            see :class:`mcir.data.negative_folders.NegativeFolders`): each file is paired by the LQ's (else the
            GT's) name, must have the GT's size, and gets the GT's crop, flips and rotation. Samples then hold
            ``negs: {name: (C, H, W)}``. Needs ``dataroot_lq``.
    """

    def __init__(
        self,
        dataroot_gt: str,
        dataroot_lq: Optional[str] = None,
        phase: Phase = "train",
        scale: PositiveInt = 1,
        io_backend: Optional[Mapping[str, Any]] = None,
        meta_info_file: Optional[str] = None,
        filename_tmpl: str = "{}",
        gt_size: Optional[PositiveInt] = None,
        use_hflip: bool = False,
        use_rot: bool = False,
        lq_from_gt: Optional[Literal["bicubic"]] = None,
        name: str = "",
        color: Optional[Color] = None,
        pairing: Literal[PAIRING_CHOICES] = "auto",
        dataroot_neg: Optional[Mapping[str, str]] = None,
    ):
        super().__init__()
        self._check_options(dataroot_lq, phase, scale, filename_tmpl, gt_size, lq_from_gt, color)
        check_negative_option(dataroot_neg, lq_from_gt)
        check_pairing_option(pairing)
        self.name = name
        self.phase = phase
        self.scale = int(scale)
        self.gt_size = gt_size
        self.use_hflip = use_hflip
        self.use_rot = use_rot
        self.lq_from_gt = lq_from_gt
        self.color = color
        self.filename_tmpl = filename_tmpl
        self.dataroot_gt = check_folder(dataroot_gt, "dataroot_gt")
        self.dataroot_lq = None if lq_from_gt else check_folder(dataroot_lq, "dataroot_lq")

        roots = {"lq": self.dataroot_lq, "gt": self.dataroot_gt} if self.dataroot_lq else {"gt": self.dataroot_gt}
        backend_cfg = backend_config(io_backend, roots)
        kind = self.backend_kind = backend_cfg["type"]
        self.pairing: Optional[Pairing] = None
        if kind == "lmdb":
            gt_meta = meta_info_file or os.path.join(self.dataroot_gt, "meta_info.txt")
            gt_names = [e.key for e in read_meta_info(gt_meta)]
        elif meta_info_file:
            gt_names = listed_images(meta_info_file, self.dataroot_gt, "GT image")
        elif self.dataroot_lq is None:
            gt_names = folder_images(self.dataroot_gt)
        else:
            gt_names = list_images(self.dataroot_gt)
            if not gt_names:
                raise DataError(f"{self.dataroot_gt}: {NO_IMAGES}")
        if self.dataroot_lq is None:
            self.pairs = [(self._gt_path(n), self._gt_path(n)) for n in gt_names]
            self.sample_names = [os.path.splitext(n)[0] if kind != "lmdb" else n for n in gt_names]
        else:
            self.pairing = self._pair(gt_names, pairing, listed=bool(meta_info_file))
            self.pairs = [(self._gt_path(g), self._lq_path(q)) for q, g in self.pairing.pairs]
            self.sample_names = list(self.pairing.sample_names)
        self.backend = build_backend(backend_cfg)
        self.negatives: Optional[NegativeFolders] = None
        if dataroot_neg is not None:
            pairs = self.pairing.pairs if self.pairing else ()
            self.negatives = NegativeFolders(dataroot_neg, pairs)
        if phase == "train" and gt_size:
            self._check_patch_fits(meta_info_file)

    def _gt_path(self, name: str) -> str:
        return name if self.backend_kind == "lmdb" else os.path.join(self.dataroot_gt, name)

    def _lq_path(self, name: str) -> str:
        return name if self.backend_kind == "lmdb" else os.path.join(str(self.dataroot_lq), name)

    def _pair(self, gt_names: List[str], rule: str, listed: bool) -> Pairing:
        """Pair the LQ files with ``gt_names`` by ``rule`` (see :func:`mcir.data.pairing.find_pairs`)."""
        lq_root = str(self.dataroot_lq)
        lmdb = self.backend_kind == "lmdb"

        def lq_where(name: str) -> str:
            return f"{lq_root}:{name}" if lmdb else os.path.join(lq_root, name)

        def gt_where(name: str) -> str:
            return f"{self.dataroot_gt}:{name}" if lmdb else os.path.join(self.dataroot_gt, name)

        if lmdb:
            lq_names = [e.key for e in read_meta_info(os.path.join(lq_root, "meta_info.txt"))]
        else:
            lq_names = list_images(lq_root)
            if not lq_names:
                raise DataError(f"{lq_root}: {NO_IMAGES}")
        shared = os.path.realpath(lq_root) == os.path.realpath(self.dataroot_gt)
        return find_pairs(
            lq_names, gt_names, rule, self.filename_tmpl, shared_root=shared, gt_listed=listed,
            lq_where=lq_where, gt_where=gt_where,
        )

    @property
    def rule(self) -> str:
        """Name of the pairing rule in use (``gt_only`` with ``lq_from_gt``)."""
        return self.pairing.rule.name if self.pairing else "gt_only"

    def _check_patch_fits(self, meta_info_file: Optional[str]) -> None:
        """Fail at start-up, naming the image, when a training image is smaller than ``gt_size``.

        Reads only image headers (disk) or meta_info shapes (LMDB), so it stays cheap for large sets. The
        size that counts is the GT's, except for layouts that crop the GT to the LQ (then LQ x scale).
        """
        rule = self.pairing.rule if self.pairing else None
        by_lq = rule is not None and rule.center_crop_gt
        if self.backend_kind == "lmdb":
            root = self.dataroot_lq if by_lq else self.dataroot_gt
            meta = os.path.join(str(root), "meta_info.txt") if by_lq or not meta_info_file else meta_info_file
            used = {lq if by_lq else gt for gt, lq in self.pairs}
            sizes = [(f"{root}:{e.key}", e.shape[:2]) for e in read_meta_info(meta) if e.shape and e.key in used]
        else:
            paths = dict.fromkeys(lq if by_lq else gt for gt, lq in self.pairs)
            sizes = [(p, header_size(p)) for p in paths]
        kind = "LQ" if by_lq else "GT"
        for where, (h, w) in sizes:
            if rule is not None and rule.side_by_side:
                w //= 2
            if by_lq:
                h, w = h * self.scale, w * self.scale
            if min(h, w) < self.gt_size:
                raise DataError(f"{where}: gt_size {self.gt_size} is larger than the {kind} image {h}x{w}")

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
        check_patch_options(phase, scale, gt_size, color)
        if "{}" not in filename_tmpl:
            raise OptionError(f"filename_tmpl '{filename_tmpl}' has no '{{}}' for the GT stem", key="filename_tmpl")
        if lq_from_gt not in _LQ_FROM_GT:
            raise OptionError(f"unknown lq_from_gt '{lq_from_gt}' (choose bicubic)", key="lq_from_gt")
        if lq_from_gt and dataroot_lq:
            raise OptionError("set either dataroot_lq or lq_from_gt, not both", key="lq_from_gt")

    def _read(self, path_or_key: str, client: str) -> np.ndarray:
        if self.backend_kind == "lmdb":
            root = self.dataroot_gt if client == "gt" else self.dataroot_lq
            content = self.backend.get(path_or_key, client)
            return imfrombytes(content, path=f"{root}:{path_or_key}")
        return imfrombytes(self.backend.get(path_or_key), path=path_or_key)

    def read_pair(self, index: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Decode pair ``index`` as stored, the GT aligned with the LQ; no cropping to patches, no flips.

        Args:
            index: Sample index.

        Returns:
            ``(gt, lq)`` BGR HWC arrays (uint8 or uint16); the GT is cropped to ``scale`` x the LQ size
            (centred for layouts whose GT carries a frame, e.g. RESIDE); ``lq`` is None with ``lq_from_gt``.
        """
        gt_path, lq_path = self.pairs[index]
        rule = self.pairing.rule if self.pairing else None
        if rule is not None and rule.side_by_side:
            img_lq, img_gt = _split_side_by_side(self._read(gt_path, "gt"), self._where(gt_path))
        else:
            img_gt = self._read(gt_path, "gt")
            if self.lq_from_gt:
                return img_gt, None
            img_lq = self._read(lq_path, "lq")
        h_lq, w_lq = img_lq.shape[:2]
        if rule is not None and rule.center_crop_gt and self.scale == 1 and img_gt.shape[:2] != (h_lq, w_lq):
            img_gt = _center_crop(img_gt, h_lq, w_lq, self._where(gt_path))
        return crop_gt_to_lq(img_gt, img_lq, self.scale, self._where(gt_path)), img_lq

    def _where(self, gt_path: str) -> str:
        return f"{self.dataroot_gt}:{gt_path}" if self.backend_kind == "lmdb" else gt_path

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """Load pair ``index``.

        Args:
            index: Sample index.

        Returns:
            ``{'lq': (C,h,w), 'gt': (C,H,W)}`` float32 RGB tensors in [0, 1], plus ``lq_path``/``gt_path``
            (LMDB keys in LMDB mode) and ``name`` (unique per sample: the GT's relative stem, or the LQ's
            when several LQ images share a GT); with ``dataroot_neg`` also ``negs: {name: (C,H,W)}``.
        """
        gt_path, lq_path = self.pairs[index]
        img_gt, img_lq = self.read_pair(index)
        train = self.phase == "train"
        negs: Dict[str, np.ndarray] = {}
        if self.negatives is not None:
            negs = self.negatives.read(index, img_gt.shape[0], img_gt.shape[1], self.scale - 1)
        if img_lq is None:
            if train and self.gt_size:
                # Resizing only the patch is much cheaper than the whole image.
                img_gt = random_crop(img_gt, self.gt_size, path=gt_path)
            else:
                img_gt = modcrop(img_gt, self.scale)
            if min(img_gt.shape[:2]) < self.scale:
                raise DataError(f"{gt_path}: image {img_gt.shape[0]}x{img_gt.shape[1]} is smaller than scale")
            img_lq = imresize(np.ascontiguousarray(img_gt), 1.0 / self.scale)
        elif train and self.gt_size:
            # Negatives are cropped with the GT (same window; the RNG draws do not depend on how many).
            gts, img_lq = paired_random_crop([img_gt, *negs.values()], img_lq, self.gt_size, self.scale, gt_path)
            img_gt, negs = gts[0], dict(zip(negs, gts[1:]))
        if train:
            img_gt, img_lq, *flipped = augment([img_gt, img_lq, *negs.values()], self.use_hflip, self.use_rot)
            negs = dict(zip(negs, flipped))
        gt, lq = (to_color(img2float(img), self.color) for img in (img_gt, img_lq))
        t_gt, t_lq = img2tensor([gt, lq], bgr2rgb=True, float32=True)
        sample = {"lq": t_lq, "gt": t_gt, "lq_path": lq_path, "gt_path": gt_path, "name": self.sample_names[index]}
        if self.negatives is not None:
            sample["negs"] = {k: img2tensor(to_color(img2float(v), self.color), bgr2rgb=True, float32=True)
                              for k, v in negs.items()}
        return sample

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, phase={self.phase}, pairs={len(self)}, "
            f"scale={self.scale}, backend={self.backend_kind}, pairing={self.rule})"
        )
