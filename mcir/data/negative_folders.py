"""Folders of other methods' restorations (CCR's negatives), paired with a dataset's (LQ, GT) pairs by name."""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mcir.data.dataset_common import NO_IMAGES, check_folder
from mcir.data.file_backends import DiskBackend
from mcir.data.pairing import list_images, split_ext
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import imfrombytes

OPTION = "dataroot_neg"


class NegativeFolders:
    """``dataroot_neg: {name: folder}``: per pair, the file of each negative with the LQ's (else the GT's) stem.

    A negative is the restoration of the pair's LQ image by another method, so its file carries the LQ name
    (C2PNet's layout: the hazy file name), or the GT name; any image extension, sub-folders as in the LQ root.

    Args:
        roots: ``{name: folder}`` (the option's value).
        pairs: ``(lq_name, gt_name)`` per sample, relative to their roots (or LMDB keys).
    """

    def __init__(self, roots: Mapping[str, str], pairs: Sequence[Tuple[str, str]]):
        if not isinstance(roots, Mapping) or not roots:
            raise OptionError("must map negative names to folders, e.g. {DCP: path/to/DCP_outputs}", key=OPTION)
        self.names: List[str] = [str(n) for n in roots]
        self.paths: List[Dict[str, str]] = [{} for _ in pairs]
        for name, root in roots.items():
            key = f"{OPTION}.{name}"
            folder = check_folder(root, key)
            by_stem: Dict[str, str] = {}
            for file in list_images(folder):
                by_stem.setdefault(split_ext(file)[0], file)
            if not by_stem:
                raise DataError(f"{folder}: {NO_IMAGES} ({key})")
            for i, (lq, gt) in enumerate(pairs):
                stems = [split_ext(lq)[0], split_ext(gt)[0]]
                found = next((by_stem[s] for s in stems if s in by_stem), None)
                if found is None:
                    raise DataError(f"{folder}: no image named {stems[0]} or {stems[1]} (any extension) for the "
                                    f"pair of {lq} ({key})")
                self.paths[i][str(name)] = f"{folder}/{found}"
        self.backend = DiskBackend()

    def read(self, index: int, h: int, w: int, scale_slack: int) -> Dict[str, np.ndarray]:
        """Decode sample ``index``'s negatives, each cropped to ``h`` x ``w`` (the aligned GT's size).

        Args:
            index: Sample index.
            h: GT height.
            w: GT width.
            scale_slack: Extra pixels a negative may have beyond ``h`` / ``w`` (``scale - 1``, like the GT).

        Returns:
            ``{name: HWC BGR array}`` in option order.
        """
        out = {}
        for name, path in self.paths[index].items():
            img = imfrombytes(self.backend.get(path), path=path)
            hn, wn = img.shape[:2]
            if not (h <= hn <= h + scale_slack and w <= wn <= w + scale_slack):
                raise DataError(f"{path}: size {hn}x{wn} does not match the GT size {h}x{w} ({OPTION}.{name})")
            out[name] = img[:h, :w, ...]
        return out


def check_negative_option(roots: Optional[Mapping[str, str]], lq_from_gt: Optional[str]) -> None:
    """Reject ``dataroot_neg`` where it cannot work (LQ made from the GT: no stored LQ names to pair with).

    Args:
        roots: The ``dataroot_neg`` option.
        lq_from_gt: The ``lq_from_gt`` option.
    """
    if roots and lq_from_gt:
        raise OptionError("needs stored LQ images (dataroot_lq), not lq_from_gt: negatives are restorations of "
                          "the LQ files; use frozen networks in the loss instead", key=OPTION)
