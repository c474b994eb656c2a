"""Tests for PairedImageDataset: pairing modes, phases, lq_from_gt, LMDB, colour modes and errors."""

import importlib.util
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import skimage.data
import torch

from mcir.data import LOADER_KEYS, build_dataset
from mcir.data.imresize import imresize, modcrop
from mcir.data.paired_dataset import PairedImageDataset
from mcir.options import build_checked
from mcir.registry import DATASET_REGISTRY
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import imread, img2tensor, imwrite

REPO = Path(__file__).resolve().parents[2]
SIZES = {"a": (96, 80), "b": (103, 90), "c": (64, 68)}


def _gt_images():
    src = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    return {
        stem: src[40 * i : 40 * i + h, 60 * i : 60 * i + w].copy() for i, (stem, (h, w)) in enumerate(SIZES.items())
    }


@pytest.fixture()
def sr_folders(tmp_path):
    """GT folder and an x4 bicubic LQ folder named ``<stem>x4.png``."""
    gts = _gt_images()
    for stem, img in gts.items():
        imwrite(img, tmp_path / "gt" / f"{stem}.png")
        imwrite(imresize(modcrop(img, 4), 1 / 4), tmp_path / "lq" / f"{stem}x4.png")
    (tmp_path / "gt" / "notes.txt").write_text("not an image")
    return tmp_path / "gt", tmp_path / "lq", gts


def _ds(gt, lq, **kw):
    kw.setdefault("scale", 4)
    kw.setdefault("filename_tmpl", "{}x4")
    return PairedImageDataset(str(gt), None if lq is None else str(lq), **kw)


def _as_uint8(t: torch.Tensor) -> np.ndarray:
    """CHW RGB float tensor -> HWC BGR uint8."""
    return np.ascontiguousarray((t.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8))


def test_registered_and_folder_pairing_with_template(sr_folders):
    gt, lq, gts = sr_folders
    assert "PairedImageDataset" in DATASET_REGISTRY
    ds = _ds(gt, lq, phase="val")
    assert len(ds) == 3
    names = [(Path(ds[i]["gt_path"]).name, Path(ds[i]["lq_path"]).name) for i in range(3)]
    assert names == [("a.png", "ax4.png"), ("b.png", "bx4.png"), ("c.png", "cx4.png")]


def test_val_returns_rgb_float_tensors_with_gt_cropped_to_scale_times_lq(sr_folders):
    gt, lq, gts = sr_folders
    item = _ds(gt, lq, phase="val")[1]
    assert item["gt"].shape == (3, 100, 88) and item["lq"].shape == (3, 25, 22)  # b.png is 103x90
    assert item["gt"].dtype == torch.float32 and 0 <= item["gt"].min() and item["gt"].max() <= 1
    torch.testing.assert_close(item["gt"], img2tensor(gts["b"][:100, :88]))
    np.testing.assert_array_equal(_as_uint8(item["lq"]), imread(lq / "bx4.png"))


def test_lq_from_gt_bicubic_equals_pregenerated_lr(sr_folders):
    gt, lq, _ = sr_folders
    made = _ds(gt, None, phase="val", lq_from_gt="bicubic")
    stored = _ds(gt, lq, phase="val")
    for i in range(len(made)):
        assert torch.equal(made[i]["lq"], stored[i]["lq"]) and torch.equal(made[i]["gt"], stored[i]["gt"])


def test_lq_from_gt_matches_official_set5_x4():
    set5 = REPO / "datasets" / "Set5"  # bundled copy of the official Set5 files
    if not (set5 / "LR_bicubic" / "X4").is_dir():
        pytest.skip("shared benchmark data not available")
    made = _ds(set5 / "HR", None, phase="test", lq_from_gt="bicubic")
    for i in range(len(made)):
        item = made[i]
        official = imread(set5 / "LR_bicubic" / "X4" / f"{Path(item['gt_path']).stem}x4.png")
        np.testing.assert_array_equal(_as_uint8(item["lq"]), official)


def test_train_crops_are_aligned_bicubic_pairs_after_augmentation(sr_folders):
    gt, lq, _ = sr_folders
    ds = _ds(gt, lq, phase="train", gt_size=32, use_hflip=True, use_rot=True)
    torch.manual_seed(0)
    for i in list(range(len(ds))) * 4:
        item = ds[i]
        assert item["gt"].shape == (3, 32, 32) and item["lq"].shape == (3, 8, 8)
        redone = imresize(_as_uint8(item["gt"]), 1 / 4).astype(int)
        interior = np.abs(redone - _as_uint8(item["lq"]))[2:-2, 2:-2]
        # Exact up to per-pass rounding, which a transpose reorders (at most 1 grey level).
        assert interior.max() <= 1


def test_train_lq_from_gt_resizes_the_gt_patch_exactly(sr_folders):
    gt, _, _ = sr_folders
    ds = _ds(gt, None, phase="train", gt_size=32, lq_from_gt="bicubic")
    torch.manual_seed(1)
    item = ds[0]
    np.testing.assert_array_equal(imresize(_as_uint8(item["gt"]), 1 / 4), _as_uint8(item["lq"]))
    torch.manual_seed(1)
    assert torch.equal(ds[0]["gt"], item["gt"])  # crops come from torch's RNG


def test_meta_info_mode_uses_listed_files_in_file_order(sr_folders, tmp_path):
    gt, lq, _ = sr_folders
    meta = tmp_path / "meta.txt"
    meta.write_text("c.png (64,68,3) 1\na.png (96,80,3) 1\n")
    ds = _ds(gt, lq, phase="val", meta_info_file=str(meta))
    assert [Path(ds[i]["lq_path"]).name for i in range(len(ds))] == ["cx4.png", "ax4.png"]
    meta.write_text("c.png (64,68,3) 1\na.png 96x80\n")
    with pytest.raises(DataError, match=r"meta\.txt:2: malformed"):
        _ds(gt, lq, phase="val", meta_info_file=str(meta))


def _load_create_lmdb():
    spec = importlib.util.spec_from_file_location("create_lmdb", REPO / "scripts" / "create_lmdb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lmdb_mode_gives_the_same_arrays_as_folder_mode(sr_folders, tmp_path):
    gt, lq, _ = sr_folders
    create_lmdb = _load_create_lmdb()
    assert create_lmdb.main(["--input", str(gt), "--output", str(tmp_path / "gt.lmdb")]) == 0
    assert create_lmdb.main(["--input", str(lq), "--output", str(tmp_path / "lq.lmdb"), "--n-thread", "2"]) == 0
    folder = _ds(gt, lq, phase="val")
    db = _ds(tmp_path / "gt.lmdb", tmp_path / "lq.lmdb", phase="val", io_backend={"type": "lmdb"})
    auto = _ds(f"{tmp_path}/gt.lmdb/", tmp_path / "lq.lmdb", phase="val")  # .lmdb roots pick the backend
    assert auto.backend_kind == "lmdb" and len(db) == len(folder) == 3
    for i in range(3):
        a, b = folder[i], db[i]
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
        assert b["gt_path"] == Path(a["gt_path"]).stem and b["lq_path"] == Path(a["lq_path"]).stem
    train = _ds(tmp_path / "gt.lmdb", tmp_path / "lq.lmdb", phase="train", gt_size=16)
    assert train[0]["gt"].shape == (3, 16, 16)


def test_reads_a_basicsr_lmdb_with_same_keys_and_no_level_in_meta(sr_folders, tmp_path):
    """BasicSR's DIV2K LMDBs: GT and LQ share keys (filename_tmpl is ignored); meta lines may lack the level."""
    _, _, gts = sr_folders
    for which in ("gt", "lq"):
        env = lmdb.open(str(tmp_path / f"{which}.lmdb"), map_size=1 << 24)
        lines = []
        with env.begin(write=True) as txn:
            for stem, img in gts.items():
                img = modcrop(img, 4) if which == "gt" else imresize(modcrop(img, 4), 1 / 4)
                txn.put(stem.encode("ascii"), cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1].tobytes())
                lines.append(f"{stem}.png ({img.shape[0]},{img.shape[1]},{img.shape[2]})\n")
        env.close()
        (tmp_path / f"{which}.lmdb" / "meta_info.txt").write_text("".join(lines))
    ds = _ds(tmp_path / "gt.lmdb", tmp_path / "lq.lmdb", phase="val", io_backend={"type": "lmdb"})
    item = ds[2]
    assert item["lq_path"] == "c" and item["lq"].shape == (3, 16, 17)
    torch.testing.assert_close(item["gt"], img2tensor(gts["c"]))


def test_lmdb_missing_lq_key_and_bad_roots(sr_folders, tmp_path):
    gt, lq, _ = sr_folders
    create_lmdb = _load_create_lmdb()
    create_lmdb.main(["--input", str(gt), "--output", str(tmp_path / "gt.lmdb")])
    (tmp_path / "few").mkdir()
    imwrite(imread(lq / "ax4.png"), tmp_path / "few" / "ax4.png")
    create_lmdb.main(["--input", str(tmp_path / "few"), "--output", str(tmp_path / "few.lmdb")])
    with pytest.raises(DataError, match=r"no LQ for .*gt\.lmdb:b \(looked for .*few\.lmdb:bx4\)"):
        _ds(tmp_path / "gt.lmdb", tmp_path / "few.lmdb", phase="val")
    with pytest.raises(DataError, match="ending in .lmdb"):
        _ds(tmp_path / "gt.lmdb", lq, phase="val", io_backend={"type": "lmdb"})


def test_colour_modes_and_gray_images(tmp_path):
    img = np.ascontiguousarray(skimage.data.astronaut()[:64, :64, ::-1])
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    imwrite(img, tmp_path / "gt" / "color.png")
    imwrite(gray, tmp_path / "gt" / "gray.png")
    rgb = _ds(tmp_path / "gt", None, phase="val", scale=2, lq_from_gt="bicubic")
    g = rgb[1]
    assert g["gt"].shape == (3, 64, 64) and torch.equal(g["gt"][0], g["gt"][2])  # gray repeated to 3 channels
    one = _ds(tmp_path / "gt", None, phase="val", scale=2, lq_from_gt="bicubic", color="gray")
    assert one[0]["gt"].shape == (1, 64, 64) and one[1]["lq"].shape == (1, 32, 32)
    torch.testing.assert_close(one[1]["gt"][0], torch.from_numpy(gray / 255.0).float())
    y = _ds(tmp_path / "gt", None, phase="val", scale=2, lq_from_gt="bicubic", color="y")[0]["gt"]
    assert y.shape == (1, 64, 64) and y.min() >= 16 / 255 - 1e-6 and y.max() <= 235 / 255 + 1e-6


def test_sixteen_bit_pairs_scale_by_65535(tmp_path):
    img = (np.ascontiguousarray(skimage.data.astronaut()[:32, :32, ::-1]).astype(np.uint16) * 257 + 3)
    imwrite(img, tmp_path / "gt" / "x.png")
    imwrite(img, tmp_path / "lq" / "x.png")
    item = PairedImageDataset(str(tmp_path / "gt"), str(tmp_path / "lq"), phase="val")[0]
    torch.testing.assert_close(item["gt"], torch.from_numpy(img[:, :, ::-1].transpose(2, 0, 1) / 65535.0).float())


def test_data_errors_name_the_file_or_folder(sr_folders, tmp_path):
    gt, lq, gts = sr_folders
    with pytest.raises(DataError, match="nowhere: dataroot_gt folder does not exist"):
        _ds(tmp_path / "nowhere", lq)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        _ds(tmp_path / "empty", lq)
    (lq / "cx4.png").unlink()
    with pytest.raises(DataError, match=r"no LQ for .*gt/c\.png \(looked for .*lq/cx4\.png\)"):
        _ds(gt, lq, phase="val")
    imwrite(imresize(modcrop(gts["c"], 4), 1 / 2), lq / "cx4.png")  # wrong scale
    with pytest.raises(DataError, match=r"gt/c\.png: GT size 64x68 does not match LQ size 32x34 at scale 4"):
        _ds(gt, lq, phase="val")[2]
    (lq / "bx4.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"lq/bx4\.png: cannot decode image"):
        _ds(gt, lq, phase="val")[1]
    # gt_size larger than an image is found at construction (image headers only), before any training
    with pytest.raises(DataError, match=r"gt/a\.png: gt_size 128 is larger than the GT image 96x80"):
        _ds(gt, lq, phase="train", gt_size=128)
    with pytest.raises(DataError, match=r"gt/a\.png: gt_size 128 is larger than the GT image 96x80"):
        _ds(gt, None, phase="train", gt_size=128, lq_from_gt="bicubic")


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"scale": 0}, "scale"),
        ({"gt_size": 30}, "gt_size"),
        ({"color": "lab"}, "color"),
        ({"filename_tmpl": "x4"}, "filename_tmpl"),
        ({"phase": "training"}, "phase"),
        ({"lq_from_gt": "nearest"}, "lq_from_gt"),
        ({"lq_from_gt": "bicubic"}, "lq_from_gt"),  # together with dataroot_lq
    ],
)
def test_bad_options_raise_optionerror_with_key(sr_folders, kw, key):
    gt, lq, _ = sr_folders
    with pytest.raises(OptionError) as err:
        _ds(gt, lq, **kw)
    assert err.value.key == key


def test_lq_root_is_required_without_lq_from_gt(sr_folders):
    with pytest.raises(OptionError) as err:
        PairedImageDataset(str(sr_folders[0]), None)
    assert err.value.key == "dataroot_lq"


def test_build_dataset_drops_loader_keys_and_checks_names(sr_folders):
    gt, lq, _ = sr_folders
    cfg = {"type": "PairedImageDataset", "dataroot_gt": str(gt), "dataroot_lq": str(lq), "scale": 4,
           "filename_tmpl": "{}x4", "phase": "val", "name": "tiny"}
    cfg.update({k: None for k in LOADER_KEYS})
    ds = build_dataset(dict(cfg), "datasets.val")
    assert isinstance(ds, PairedImageDataset) and len(ds) == 3 and ds.name == "tiny"
    plain = {k: v for k, v in cfg.items() if k not in LOADER_KEYS}
    with pytest.raises(OptionError) as err:  # hand-written sections are checked by the option schema
        build_checked(DATASET_REGISTRY, {**plain, "gt_szie": 32}, "datasets.train")
    assert err.value.key == "datasets.train.gt_szie"
    with pytest.raises(OptionError) as err:  # the dataset's own check, named under the section's key
        build_dataset({**cfg, "gt_size": 30}, "datasets.train")
    assert err.value.key == "datasets.train.gt_size"
    with pytest.raises(OptionError, match="dataroot_gt"):
        build_checked(DATASET_REGISTRY, {"type": "PairedImageDataset"}, "datasets.val")
    with pytest.raises(OptionError, match="type"):
        build_dataset({"dataroot_gt": str(gt)}, "datasets.val")


def test_build_dataset_unknown_type_names_the_key(sr_folders):
    with pytest.raises(OptionError) as err:
        build_checked(DATASET_REGISTRY, {"type": "PairedImageDatset", "dataroot_gt": str(sr_folders[0])}, "datasets.val")
    assert err.value.key == "datasets.val.type" and "did you mean PairedImageDataset" in str(err.value)
