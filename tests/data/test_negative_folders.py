"""dataroot_neg: other methods' restorations paired by name and cropped / flipped exactly like the GT."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mcir.data.paired_dataset import PairedImageDataset
from mcir.errors import DataError, OptionError


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _layout(root: Path, scale: int = 2, names=("a", "b", "c"), size: int = 40) -> dict:
    """GT = random texture; LQ = another random image; negative ``inv`` = 255 - GT, ``dark`` = GT // 2.

    Any misalignment between a negative and its GT (wrong crop, flip, rotation or pairing) breaks
    ``inv == 1 - gt`` almost everywhere, because the texture is random.
    """
    rng = np.random.default_rng(0)
    for n in names:
        gt = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
        _write(root / "gt" / f"{n}.png", gt)
        _write(root / "lq" / f"{n}x{scale}.png", rng.integers(0, 256, (size // scale, (size + 8) // scale, 3),
                                                               dtype=np.uint8))
        _write(root / "inv" / f"{n}x{scale}.png", 255 - gt)  # named after the LQ file
        _write(root / "dark" / f"{n}.png", gt // 2)  # named after the GT file
    return {"dataroot_gt": str(root / "gt"), "dataroot_lq": str(root / "lq"), "filename_tmpl": f"{{}}x{scale}",
            "scale": scale, "dataroot_neg": {"inv": str(root / "inv"), "dark": str(root / "dark")}}


def test_negatives_follow_the_gt_through_crop_flip_and_rotation(tmp_path):
    opts = _layout(tmp_path)
    ds = PairedImageDataset(**opts, phase="train", gt_size=16, use_hflip=True, use_rot=True)
    plain = PairedImageDataset(**{k: v for k, v in opts.items() if k != "dataroot_neg"}, phase="train",
                               gt_size=16, use_hflip=True, use_rot=True)
    transposed = 0
    for seed in range(12):  # enough draws to hit flips and transposes
        torch.manual_seed(seed)
        s = ds[seed % len(ds)]
        torch.manual_seed(seed)
        p = plain[seed % len(ds)]
        # The negatives do not change the crop or flips the pair gets.
        assert torch.equal(s["gt"], p["gt"]) and torch.equal(s["lq"], p["lq"])
        assert list(s["negs"]) == ["inv", "dark"]
        assert s["negs"]["inv"].shape == s["gt"].shape == (3, 16, 16)
        torch.testing.assert_close(s["negs"]["inv"], 1 - s["gt"], atol=1e-6, rtol=0)
        torch.testing.assert_close(s["negs"]["dark"], torch.floor(s["gt"] * 255 / 2) / 255, atol=1e-6, rtol=0)
        whole = torch.from_numpy(cv2.imread(opts["dataroot_gt"] + f"/{s['name']}.png")[:, :, ::-1].copy())
        transposed += not any(torch.equal(s["gt"][0], c) for c in _windows(whole[..., 0].float() / 255, 16))
    assert transposed > 0  # some draws really were transformed, so the test saw flips/rotations


def _windows(img: torch.Tensor, k: int):
    """Every un-flipped k x k window of ``img`` (to tell whether a patch was flipped / rotated)."""
    for top in range(img.shape[0] - k + 1):
        for left in range(img.shape[1] - k + 1):
            yield img[top : top + k, left : left + k]


def test_negatives_are_paired_by_name_not_by_order(tmp_path):
    opts = _layout(tmp_path)
    # An extra, earlier-sorted file in the negative folder must not shift the pairing.
    _write(tmp_path / "inv" / "_extra.png", np.zeros((40, 48, 3), np.uint8))
    ds = PairedImageDataset(**opts, phase="val")
    for i in range(len(ds)):
        s = ds[i]
        torch.testing.assert_close(s["negs"]["inv"], 1 - s["gt"], atol=1e-6, rtol=0)
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["negs"]["dark"].shape == (2, 3, 40, 48)


@pytest.mark.parametrize(
    "change, error, words",
    [
        ({"dataroot_neg": {"inv": "/no/such/folder"}}, DataError, ["dataroot_neg.inv", "does not exist"]),
        ({"dataroot_neg": ["x"]}, OptionError, ["dataroot_neg"]),
        ({"dataroot_neg": {}}, OptionError, ["dataroot_neg"]),
    ],
)
def test_bad_negative_options_are_one_line_errors(tmp_path, change, error, words):
    opts = {**_layout(tmp_path), **change}
    with pytest.raises(error) as info:
        PairedImageDataset(**opts, phase="train", gt_size=16)
    assert all(w in str(info.value) for w in words) and "\n" not in str(info.value)


def test_a_missing_name_or_size_or_lq_from_gt_is_an_error_naming_the_key(tmp_path):
    opts = _layout(tmp_path)
    (tmp_path / "dark" / "b.png").unlink()
    with pytest.raises(DataError, match=r"dataroot_neg\.dark") as info:
        PairedImageDataset(**opts, phase="val")
    assert "bx2" in str(info.value)
    _write(tmp_path / "dark" / "b.png", np.zeros((20, 24, 3), np.uint8))  # LQ-sized, not GT-sized
    ds = PairedImageDataset(**opts, phase="val")
    with pytest.raises(DataError, match=r"dataroot_neg\.dark"):
        ds[1]
    with pytest.raises(OptionError, match="dataroot_neg"):
        PairedImageDataset(dataroot_gt=opts["dataroot_gt"], lq_from_gt="bicubic", scale=2,
                           dataroot_neg=opts["dataroot_neg"])
