"""SyntheticDegradationDataset: clean images degraded on the fly (noise, JPEG, blur, haze, rain, bicubic).

Randomness, so that results repeat:

* training: each sample seeds a ``np.random.Generator`` with one number drawn from torch's default
  generator, which the DataLoader seeds per worker and per epoch (see :mod:`mcir.data.dataloader`) and the
  trainer saves with its state, so degradations follow the same rules as crops and flips and resume exactly;
* validation/testing: each image gets its own generator seeded by ``(seed, hash of its name)``, so the
  degraded images are the same in every run, for every worker count and whatever else is in the folder.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from mcir.constraints import NonNegativeInt, PositiveInt
from mcir.data.dataset_common import (
    Color,
    Phase,
    backend_config,
    check_folder,
    check_patch_options,
    folder_images,
    header_size,
    listed_images,
    to_color,
)
from mcir.data.degradation_pipeline import build_pipeline
from mcir.data.file_backends import build_backend
from mcir.data.meta_info import read_meta_info
from mcir.data.transforms import augment, mod_crop, random_crop
from mcir.errors import DataError, OptionError
from mcir.registry import DATASET_REGISTRY
from mcir.utils.img_util import img2float, img2tensor, imfrombytes


def name_seed(seed: int, name: str) -> np.random.Generator:
    """The test-time generator of one image: seeded by ``seed`` and a stable hash of its name.

    Args:
        seed: The dataset's ``seed`` option.
        name: The image's name without extension (``baby``, or ``sub/baby`` from a meta_info file).

    Returns:
        A fresh generator.
    """
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng([int(seed), int.from_bytes(digest, "little")])


@DATASET_REGISTRY.register()
class SyntheticDegradationDataset(Dataset):
    """Clean images as GT and the same images degraded on the fly as LQ.

    Images come from a folder, a meta_info list (``meta_info_file``) or a BasicSR-layout LMDB
    (``io_backend: {type: lmdb}`` or a root ending in ``.lmdb``). Training crops a random ``gt_size``
    patch and flips it (like PairedImageDataset) before degrading; validation/testing degrades whole
    images cropped to a multiple of ``scale``.

    Args:
        dataroot_gt: Folder (or ``.lmdb``) of clean images.
        degradations: Steps applied in order, each ``{type: <name>, <param>: value}``; a number parameter
            may be a ``[low, high]`` range drawn per image, a choice parameter a list drawn from. Names:
            ``gaussian_noise`` (sigma, clip), ``jpeg`` (quality), ``motion_blur`` (kernel_size, angle, kind),
            ``haze`` (beta, airlight, depth), ``rain`` (density, length, angle, width, intensity),
            ``bicubic`` (scale, quantize).
        phase: ``train`` (random crop, flips, random degradations) or ``val`` / ``test`` (seeded per image).
        scale: GT -> LQ size ratio; must equal the product of the ``bicubic`` steps' scales.
        io_backend: ``{'type': 'disk'}`` or ``{'type': 'lmdb'}``; None picks LMDB for a ``.lmdb`` root.
        meta_info_file: Text file listing the image names (BasicSR format) to use instead of the whole folder.
        gt_size: GT patch size for training (a multiple of ``scale``); None trains on whole images.
        use_hflip: Random horizontal flips in training.
        use_rot: Random vertical flips and transposes in training.
        name: Dataset name for messages.
        color: None or ``rgb`` (3 channels), ``gray`` (1 channel), ``y`` (BT.601 luma); applied before
            degrading, so e.g. JPEG then compresses the single channel.
        seed: Base seed of the validation/test degradations.
    """

    def __init__(
        self,
        dataroot_gt: str,
        degradations: List[Dict[str, Any]],
        phase: Phase = "train",
        scale: PositiveInt = 1,
        io_backend: Optional[Mapping[str, Any]] = None,
        meta_info_file: Optional[str] = None,
        gt_size: Optional[PositiveInt] = None,
        use_hflip: bool = False,
        use_rot: bool = False,
        name: str = "",
        color: Optional[Color] = None,
        seed: NonNegativeInt = 0,
    ):
        super().__init__()
        self._check_options(phase, scale, gt_size, color, seed)
        self.pipeline = build_pipeline(degradations, key="degradations")
        if len(self.pipeline) == 0:
            raise OptionError("needs at least one degradation", key="degradations")
        if self.pipeline.scale != scale:
            raise OptionError(
                f"the bicubic steps downscale by {self.pipeline.scale} but scale is {scale}; make them agree",
                key="degradations",
            )
        self.name = name
        self.phase = phase
        self.scale = int(scale)
        self.gt_size = gt_size
        self.use_hflip = use_hflip
        self.use_rot = use_rot
        self.color = color
        self.seed = int(seed)
        self.root = check_folder(dataroot_gt, "dataroot_gt")
        backend_cfg = backend_config(io_backend, {"gt": self.root})
        self.backend_kind = backend_cfg["type"]
        self.items = self._list_images(meta_info_file)
        self.backend = build_backend(backend_cfg)
        if phase == "train" and gt_size:
            self._check_patch_fits(meta_info_file)

    @staticmethod
    def _check_options(phase: str, scale: int, gt_size: Optional[int], color: Optional[str], seed: int) -> None:
        check_patch_options(phase, scale, gt_size, color)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise OptionError(f"seed must be an integer, got {seed!r}", key="seed")

    def _list_images(self, meta_info_file: Optional[str]) -> List[Tuple[str, str]]:
        """``(path or LMDB key, name without extension)`` of every image, in a stable order."""
        if self.backend_kind == "lmdb":
            meta = meta_info_file or os.path.join(self.root, "meta_info.txt")
            return [(e.key, e.key) for e in read_meta_info(meta)]
        names = listed_images(meta_info_file, self.root) if meta_info_file else folder_images(self.root)
        return [(os.path.join(self.root, n), os.path.splitext(n)[0]) for n in names]

    def _check_patch_fits(self, meta_info_file: Optional[str]) -> None:
        """Fail at start-up, naming the image, when one is smaller than ``gt_size`` (headers only)."""
        if self.backend_kind == "lmdb":
            meta = meta_info_file or os.path.join(self.root, "meta_info.txt")
            sizes = [(f"{self.root}:{e.key}", e.shape[:2]) for e in read_meta_info(meta) if e.shape]
        else:
            sizes = [(path, header_size(path)) for path, _ in self.items]
        for where, (h, w) in sizes:
            if min(h, w) < self.gt_size:
                raise DataError(f"{where}: gt_size {self.gt_size} is larger than the image {h}x{w}")

    def _read(self, path_or_key: str) -> np.ndarray:
        if self.backend_kind == "lmdb":
            return imfrombytes(self.backend.get(path_or_key, "gt"), path=f"{self.root}:{path_or_key}")
        return imfrombytes(self.backend.get(path_or_key), path=path_or_key)

    def rng_for(self, index: int) -> np.random.Generator:
        """The generator that degrades sample ``index`` now (see the module docstring).

        Args:
            index: Sample index.

        Returns:
            In training a generator seeded from torch's default generator (advancing it by one draw);
            otherwise the image's fixed generator.
        """
        if self.phase == "train":
            return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        return name_seed(self.seed, self.items[index][1])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        """Load image ``index`` and degrade it.

        Args:
            index: Sample index.

        Returns:
            ``{'lq': (C,h,w), 'gt': (C,H,W)}`` float32 RGB (or 1-channel) tensors, GT in [0, 1], LQ as the
            degradations leave it (unclipped Gaussian noise goes beyond [0, 1]); ``lq_path`` and ``gt_path``
            are both the clean image's path (its LMDB key in LMDB mode).
        """
        path, _ = self.items[index]
        img = self._read(path)
        if self.phase == "train":
            if self.gt_size:
                img = random_crop(img, self.gt_size, path=path)
            img = augment(img, self.use_hflip, self.use_rot)
        img = mod_crop(img, self.scale)
        if min(img.shape[:2]) < self.scale:
            raise DataError(f"{path}: image {img.shape[0]}x{img.shape[1]} is smaller than scale {self.scale}")
        gt = to_color(img2float(np.ascontiguousarray(img)), self.color)
        lq = self.pipeline(gt, self.rng_for(index))
        t_gt, t_lq = img2tensor([gt, np.ascontiguousarray(lq, dtype=np.float32)], bgr2rgb=True, float32=True)
        return {"lq": t_lq, "gt": t_gt, "lq_path": path, "gt_path": path}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, phase={self.phase}, images={len(self)}, "
            f"scale={self.scale}, backend={self.backend_kind}, degradations={self.pipeline!r})"
        )
