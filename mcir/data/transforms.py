"""Paired crops and flips/rotations for numpy HWC images.

Randomness comes from a ``torch.Generator`` passed in, or else from torch's default generator. Inside a
DataLoader worker that default generator is seeded by the loader itself (from the loader's generator,
which :func:`mcir.data.dataloader.build_dataloader` re-seeds every epoch), so crops and flips are
reproducible without any state in the dataset. Python's ``random`` and numpy's global RNG are not used.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mcir.errors import DataError, OptionError

Images = Union[np.ndarray, Sequence[np.ndarray]]


def _as_list(imgs: Images) -> Tuple[List[np.ndarray], bool]:
    if isinstance(imgs, np.ndarray):
        return [imgs], True
    return list(imgs), False


def _randint(high: int, rng: Optional[torch.Generator]) -> int:
    """Uniform integer in ``[0, high]`` (inclusive)."""
    return int(torch.randint(0, high + 1, (1,), generator=rng).item())


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale``.

    Args:
        img: HWC (or HW) image.
        scale: The multiple.

    Returns:
        A view of ``img``.
    """
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale, ...]


def crop_gt_to_lq(img_gt: np.ndarray, img_lq: np.ndarray, scale: int, gt_path: str = "") -> np.ndarray:
    """Crop a GT image to exactly ``scale`` times its LQ image (``[0:h_lq*scale, 0:w_lq*scale]``).

    Args:
        img_gt: GT image, HWC.
        img_lq: LQ image, HWC.
        scale: Upscaling factor.
        gt_path: GT file, for the error message.

    Returns:
        The cropped GT (a view).
    """
    h_lq, w_lq = img_lq.shape[:2]
    h_gt, w_gt = img_gt.shape[:2]
    if h_gt // scale != h_lq or w_gt // scale != w_lq:
        raise DataError(
            f"{gt_path}: GT size {h_gt}x{w_gt} does not match LQ size {h_lq}x{w_lq} at scale {scale} "
            f"(want GT {h_lq * scale}x{w_lq * scale} up to {scale - 1} extra pixels)"
        )
    return img_gt[: h_lq * scale, : w_lq * scale, ...]


def random_crop(img: np.ndarray, patch_size: int, path: str = "", rng: Optional[torch.Generator] = None) -> np.ndarray:
    """Crop a square patch at a random position.

    Args:
        img: HWC image.
        patch_size: Patch side.
        path: Image file, for the error message.
        rng: Generator; None uses torch's default one.

    Returns:
        The patch (a view).
    """
    h, w = img.shape[:2]
    if h < patch_size or w < patch_size:
        raise DataError(f"{path}: image {h}x{w} is smaller than the patch size {patch_size}")
    top = _randint(h - patch_size, rng)
    left = _randint(w - patch_size, rng)
    return img[top : top + patch_size, left : left + patch_size, ...]


def paired_random_crop(
    img_gts: Images,
    img_lqs: Images,
    gt_patch_size: int,
    scale: int,
    gt_path: str = "",
    rng: Optional[torch.Generator] = None,
) -> Tuple[Images, Images]:
    """Crop aligned patches: an LQ patch of ``gt_patch_size // scale`` and the GT patch ``scale`` times it.

    Args:
        img_gts: GT image or list of GT images (HWC), all the same size.
        img_lqs: LQ image or list of LQ images (HWC), ``scale`` times smaller than the GT.
        gt_patch_size: GT patch side; must be a multiple of ``scale``.
        scale: Upscaling factor.
        gt_path: GT file, for error messages.
        rng: Generator; None uses torch's default one.

    Returns:
        ``(gt_patches, lq_patches)``, each an array or a list like the inputs.
    """
    gts, gt_single = _as_list(img_gts)
    lqs, lq_single = _as_list(img_lqs)
    if gt_patch_size % scale != 0:
        raise OptionError(f"gt_size {gt_patch_size} is not a multiple of scale {scale}", key="gt_size")
    h_lq, w_lq = lqs[0].shape[:2]
    h_gt, w_gt = gts[0].shape[:2]
    lq_patch_size = gt_patch_size // scale
    if h_gt != h_lq * scale or w_gt != w_lq * scale:
        raise DataError(
            f"{gt_path}: GT size {h_gt}x{w_gt} is not {scale}x the LQ size {h_lq}x{w_lq}"
        )
    if h_lq < lq_patch_size or w_lq < lq_patch_size:
        raise DataError(f"{gt_path}: gt_size {gt_patch_size} is larger than the GT image {h_gt}x{w_gt}")
    top = _randint(h_lq - lq_patch_size, rng)
    left = _randint(w_lq - lq_patch_size, rng)
    lqs = [v[top : top + lq_patch_size, left : left + lq_patch_size, ...] for v in lqs]
    top_gt, left_gt = top * scale, left * scale
    gts = [v[top_gt : top_gt + gt_patch_size, left_gt : left_gt + gt_patch_size, ...] for v in gts]
    return (gts[0] if gt_single else gts), (lqs[0] if lq_single else lqs)


def augment(
    imgs: Images, hflip: bool = True, rotation: bool = True, rng: Optional[torch.Generator] = None
) -> Images:
    """Apply the same random horizontal flip, vertical flip and 90-degree transpose to all images.

    Each of the three happens with probability 0.5; vertical flip and transpose need ``rotation``.
    Together they give all 8 dihedral transforms.

    Args:
        imgs: An HWC image or a list of them (e.g. ``[gt, lq]``).
        hflip: Allow the horizontal flip.
        rotation: Allow the vertical flip and transpose.
        rng: Generator; None uses torch's default one.

    Returns:
        Transformed image(s), same form as ``imgs`` (views; may be non-contiguous).
    """
    items, single = _as_list(imgs)
    # Always draw three numbers so the stream advances the same whatever the flags.
    draws = torch.rand(3, generator=rng).tolist()
    do_h = hflip and draws[0] < 0.5
    do_v = rotation and draws[1] < 0.5
    do_t = rotation and draws[2] < 0.5
    out = []
    for img in items:
        if do_h:
            img = img[:, ::-1, ...]
        if do_v:
            img = img[::-1, ...]
        if do_t:
            img = img.transpose(1, 0, *range(2, img.ndim))
        out.append(img)
    return out[0] if single else out
