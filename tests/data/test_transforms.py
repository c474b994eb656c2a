"""Tests for paired cropping and flip/rotation augmentation."""

import numpy as np
import pytest
import skimage.data
import torch

from mcir.data.imresize import imresize
from mcir.data.transforms import augment, crop_gt_to_lq, mod_crop, paired_random_crop, random_crop
from mcir.errors import DataError, OptionError


def _coord_pair(h_lq: int, w_lq: int, scale: int):
    """LQ whose pixels encode their (row, col), and GT = LQ nearest-upsampled: aligned crops stay equal."""
    rows, cols = np.meshgrid(np.arange(h_lq), np.arange(w_lq), indexing="ij")
    lq = np.stack([rows, cols, rows * 0], axis=2).astype(np.uint16)
    gt = lq.repeat(scale, axis=0).repeat(scale, axis=1)
    return gt, lq


def _upsample(lq: np.ndarray, scale: int) -> np.ndarray:
    return lq.repeat(scale, axis=0).repeat(scale, axis=1)


def test_paired_crop_alignment_on_coordinate_images():
    gt, lq = _coord_pair(40, 30, 4)
    gen = torch.Generator().manual_seed(0)
    tops = set()
    for _ in range(20):
        gt_p, lq_p = paired_random_crop(gt, lq, 32, 4, "x.png", rng=gen)
        assert gt_p.shape == (32, 32, 3) and lq_p.shape == (8, 8, 3)
        np.testing.assert_array_equal(gt_p, _upsample(lq_p, 4))
        tops.add(int(lq_p[0, 0, 0]))
    assert len(tops) > 5  # positions really vary


def test_paired_crop_of_bicubic_pair_matches_resized_patch():
    gt = np.ascontiguousarray(skimage.data.astronaut()[:256, :192, ::-1])
    lq = imresize(gt, 1 / 4)
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        gt_p, lq_p = paired_random_crop([gt], [lq], 64, 4, "astronaut", rng=gen)
        # Interior LQ pixels (2 px away from the patch edge) only see GT pixels inside the patch.
        redone = imresize(np.ascontiguousarray(gt_p[0]), 1 / 4)
        np.testing.assert_array_equal(redone[2:-2, 2:-2], lq_p[0][2:-2, 2:-2])
        # One LQ pixel of misalignment would break that equality.
        assert not np.array_equal(redone[2:-3, 2:-2], lq_p[0][3:-2, 2:-2])


def test_paired_crop_is_reproducible_from_the_generator():
    gt, lq = _coord_pair(50, 50, 2)
    a = paired_random_crop(gt, lq, 16, 2, rng=torch.Generator().manual_seed(9))
    b = paired_random_crop(gt, lq, 16, 2, rng=torch.Generator().manual_seed(9))
    np.testing.assert_array_equal(a[1], b[1])
    torch.manual_seed(9)
    c = paired_random_crop(gt, lq, 16, 2)  # default generator, as inside a DataLoader worker
    np.testing.assert_array_equal(a[1], c[1])


def test_paired_crop_errors_name_the_gt_file():
    gt, lq = _coord_pair(10, 10, 4)
    with pytest.raises(DataError, match=r"a/b\.png: GT size 40x36 is not 4x the LQ size 10x10"):
        paired_random_crop(gt[:, :36], lq, 16, 4, "a/b.png")
    with pytest.raises(DataError, match=r"a/b\.png: gt_size 48 is larger than the GT image 40x40"):
        paired_random_crop(gt, lq, 48, 4, "a/b.png")
    with pytest.raises(OptionError, match="multiple"):
        paired_random_crop(gt, lq, 18, 4, "a/b.png")
    with pytest.raises(DataError, match="smaller than the patch size"):
        random_crop(gt, 41, "a/b.png")


def test_augment_keeps_gt_and_lq_consistent_and_covers_all_eight_transforms():
    gt, lq = _coord_pair(6, 4, 3)
    gen = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(80):
        gt_a, lq_a = augment([gt, lq], hflip=True, rotation=True, rng=gen)
        np.testing.assert_array_equal(gt_a, _upsample(lq_a, 3))
        seen.add(lq_a[:, :, :2].tobytes() + bytes(lq_a.shape[:2]))
    assert len(seen) == 8


def test_augment_flags_and_single_image():
    img = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        np.testing.assert_array_equal(augment(img, hflip=False, rotation=False, rng=gen), img)
    outs = [augment(img, hflip=True, rotation=False, rng=gen) for _ in range(30)]
    assert all(o.shape == img.shape for o in outs)  # no transpose without rotation
    assert any((o == img[:, ::-1]).all() for o in outs) and any((o == img).all() for o in outs)
    assert isinstance(outs[0], np.ndarray)


def test_mod_crop_and_crop_gt_to_lq():
    img = np.zeros((203, 150, 3), np.uint8)
    assert mod_crop(img, 4).shape == (200, 148, 3)
    assert crop_gt_to_lq(img, np.zeros((50, 37, 3)), 4).shape == (200, 148, 3)
    with pytest.raises(DataError, match="g.png: GT size 203x150 does not match LQ size 51x37"):
        crop_gt_to_lq(img, np.zeros((51, 37, 3)), 4, "g.png")
    with pytest.raises(DataError, match="does not match"):
        crop_gt_to_lq(img, np.zeros((25, 18, 3)), 4, "g.png")  # LQ made at the wrong scale
