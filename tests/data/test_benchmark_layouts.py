"""PairedImageDataset on the public folder layouts, rebuilt in temp folders from real images in ../shared/data."""

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mcir.data import build_dataset
from mcir.data.paired_dataset import PairedImageDataset
from mcir.engine.evaluator import Evaluator
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import imread, img2tensor, imwrite

REPO = Path(__file__).resolve().parents[2]
PSNR = {"psnr": {"type": "calculate_psnr", "crop_border": 0}}


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def _ds(lq, gt, **kw):
    kw.setdefault("phase", "val")
    return PairedImageDataset(str(gt), str(lq), **kw)


def _as_bgr(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray((t.permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8))


def _create_lmdb(src: Path, out: Path, *extra: str) -> None:
    spec = importlib.util.spec_from_file_location("create_lmdb", REPO / "scripts" / "create_lmdb.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--input", str(src), "--output", str(out), "--n-thread", "1", *extra]) == 0


@pytest.fixture()
def reside(shared_data, tmp_path):
    """RESIDE/SOTS layout: hazy/<id>_<k>.png, gt/<id>.png; 1401's GT gets a 10-pixel frame (640x480) to be cropped."""
    sots = shared_data / "dehaze" / "SOTS-indoor"
    root = tmp_path / "SOTS" / "indoor"
    _link(sots / "hazy" / "1401_2.png", root / "hazy" / "1401_2.png")
    _link(sots / "hazy" / "1401_2.png", root / "hazy" / "1401_5.png")  # a second haze level of scene 1401
    _link(sots / "hazy" / "1404_6.png", root / "hazy" / "1404_6.png")
    framed = cv2.copyMakeBorder(imread(sots / "GT" / "1401_2.png"), 10, 10, 10, 10, cv2.BORDER_CONSTANT, value=255)
    imwrite(framed, root / "gt" / "1401.png")
    _link(sots / "GT" / "1404_6.png", root / "gt" / "1404.png")
    return root, sots


def test_reside_many_hazy_per_gt_centre_crops_the_framed_gt(reside):
    root, sots = reside
    ds = _ds(root / "hazy", root / "gt")
    assert ds.rule == "id_prefix" and len(ds) == 3
    assert [Path(p).name for _, p in ds.pairs] == ["1401_2.png", "1401_5.png", "1404_6.png"]
    assert ds.sample_names == ["1401_2", "1401_5", "1404_6"]
    item = ds[1]
    assert item["gt"].shape == item["lq"].shape == (3, 460, 620)
    np.testing.assert_array_equal(_as_bgr(item["gt"]), imread(sots / "GT" / "1401_2.png"))
    train = _ds(root / "hazy", root / "gt", phase="train", gt_size=256, use_hflip=True)
    assert train[0]["gt"].shape == (3, 256, 256)
    with pytest.raises(DataError, match=r"hazy/1401_2\.png: gt_size 512 is larger than the LQ image 460x620"):
        _ds(root / "hazy", root / "gt", phase="train", gt_size=512)


def test_evaluation_keeps_one_result_per_hazy_image(reside):
    root, _ = reside
    loader = torch.utils.data.DataLoader(_ds(root / "hazy", root / "gt"), batch_size=1)
    result = Evaluator(PSNR).evaluate(lambda x: x, loader)
    assert list(result["images"]) == ["1401_2", "1401_5", "1404_6"]
    assert result["images"]["1401_2"]["psnr"] == result["images"]["1401_5"]["psnr"]


def test_missing_gt_names_the_hazy_image(reside):
    root, _ = reside
    os.remove(root / "gt" / "1404.png")
    with pytest.raises(DataError, match=r"^no GT for .*hazy/1404_6\.png \(looked for .*gt/1404\.png\)$"):
        _ds(root / "hazy", root / "gt")


def test_dehazeformer_sots_and_rain100h_pair_by_same_name(shared_data):
    sots = _ds(shared_data / "dehaze/SOTS-indoor/hazy", shared_data / "dehaze/SOTS-indoor/GT")
    rain = _ds(shared_data / "derain/Rain100H/rain", shared_data / "derain/Rain100H/norain")
    assert (sots.rule, len(sots), rain.rule, len(rain)) == ("same_name", 20, "same_name", 20)
    assert all(Path(g).name == Path(q).name for g, q in rain.pairs)


def test_rain100l_pairs_rain_with_norain(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain100L"
    ds = _ds(src / "rain", src / "norain")
    assert ds.rule == "rain_prefix" and len(ds) == 7
    assert all(Path(q).name == Path(g).name[2:] for g, q in ds.pairs)
    for name in ("rain-001.png", "rain-003.png", "rain-017.png"):
        _link(src / "rain" / "rain-001.png", tmp_path / "rain" / name)
    for name in ("norain-001.png", "norain-003.png"):
        _link(src / "norain" / name, tmp_path / "norain" / name)
    with pytest.raises(DataError, match=r"^no GT for .*/rain/rain-017\.png \(looked for .*/norain/norain-017\.png\)$"):
        _ds(tmp_path / "rain", tmp_path / "norain")


def test_jorder_rain200_and_one_folder_training_layouts(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain100L"
    for i, n in enumerate(("001", "003"), 1):
        _link(src / "rain" / f"rain-{n}.png", tmp_path / "Rain200L" / "rain" / "X2" / f"norain-{i}x2.png")
        _link(src / "norain" / f"norain-{n}.png", tmp_path / "Rain200L" / "norain" / f"norain-{i}.png")
        _link(src / "rain" / f"rain-{n}.png", tmp_path / "RainTrainL" / f"rain-{i}.png")
        _link(src / "norain" / f"norain-{n}.png", tmp_path / "RainTrainL" / f"norain-{i}.png")
        _link(src / "rain" / f"rain-{n}.png", tmp_path / "RainTrainL" / f"rainstreak-{i}.png")
    jorder = _ds(tmp_path / "Rain200L/rain/X2", tmp_path / "Rain200L/norain")
    assert jorder.rule == "rain_prefix" and [Path(q).name for _, q in jorder.pairs] == [
        "norain-1x2.png",
        "norain-2x2.png",
    ]
    np.testing.assert_array_equal(_as_bgr(jorder[1]["lq"]), imread(src / "rain" / "rain-003.png"))
    one = _ds(tmp_path / "RainTrainL", tmp_path / "RainTrainL")
    assert one.rule == "rain_prefix" and [(Path(g).name, Path(q).name) for g, q in one.pairs] == [
        ("norain-1.png", "rain-1.png"),
        ("norain-2.png", "rain-2.png"),
    ]


def test_ddn_rain1400_jpgs_fourteen_versions_per_clean_image(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain12"
    for gt_id, n in ((901, "001"), (902, "002")):
        cv2.imwrite(str(_mk(tmp_path / "ground_truth" / f"{gt_id}.jpg")), imread(src / "norain" / f"norain-{n}.png"))
        for k in (1, 2, 14):
            _link(src / "rain" / f"rain-{n}.png", tmp_path / "rainy_image" / f"{gt_id}_{k}.png")
    ds = _ds(tmp_path / "rainy_image", tmp_path / "ground_truth", pairing="ddn")
    assert ds.rule == "id_prefix" and len(ds) == 6
    assert [Path(g).name for g, _ in ds.pairs] == ["901.jpg"] * 3 + ["902.jpg"] * 3
    assert _ds(tmp_path / "rainy_image", tmp_path / "ground_truth").rule == "id_prefix"


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_spa_data_test_and_training_layouts(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain12"
    for i, n in enumerate(("001", "002")):
        _link(src / "rain" / f"rain-{n}.png", tmp_path / "real_test_1000" / "rain" / f"{i:03d}.png")
        _link(src / "norain" / f"norain-{n}.png", tmp_path / "real_test_1000" / "gt" / f"{i:03d}gt.png")
        _link(src / "norain" / f"norain-{n}.png", tmp_path / "real_world_gt" / "012" / f"012_{i}_1.png")
        for frame in (3, 4):
            _link(
                src / "rain" / f"rain-{n}.png",
                tmp_path / "real_world" / "012" / f"012-{frame}" / f"012-{frame}_{i}_1.png",
            )
    test = _ds(tmp_path / "real_test_1000/rain", tmp_path / "real_test_1000/gt")
    assert test.rule == "spa" and [Path(g).name for g, _ in test.pairs] == ["000gt.png", "001gt.png"]
    assert test.sample_names == ["000", "001"]
    train = _ds(tmp_path / "real_world", tmp_path / "real_world_gt")
    assert train.rule == "spa" and len(train) == 4
    assert train.sample_names == [
        "012/012-3/012-3_0_1",
        "012/012-4/012-4_0_1",
        "012/012-3/012-3_1_1",
        "012/012-4/012-4_1_1",
    ]
    np.testing.assert_array_equal(_as_bgr(train[3]["gt"]), imread(src / "norain" / "norain-002.png"))


def test_gopro_split_folder_and_basicsr_trees(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain12"  # stand-ins: the pairing only depends on the names
    for scene, n in (("GOPR0384_11_00", "001"), ("GOPR0396_11_00", "002")):
        for kind, folder in (("blur", "rain"), ("blur_gamma", "rain"), ("sharp", "norain")):
            real = src / folder / f"{folder}-{n}.png"
            _link(real, tmp_path / "GOPRO_Large" / "test" / scene / kind / "000001.png")
            if kind != "blur_gamma":
                _link(real, tmp_path / "basicsr" / kind / scene / "000001.png")
    split = tmp_path / "GOPRO_Large" / "test"
    ds = _ds(split, split)
    assert ds.rule == "gopro" and ds.sample_names == ["GOPR0384_11_00/000001", "GOPR0396_11_00/000001"]
    assert ds[0]["lq_path"].endswith("GOPR0384_11_00/blur/000001.png")
    tree = _ds(tmp_path / "basicsr/blur", tmp_path / "basicsr/sharp")
    assert tree.rule == "same_name" and tree.sample_names == ds.sample_names
    assert torch.equal(tree[1]["gt"], ds[1]["gt"]) and torch.equal(tree[1]["lq"], ds[1]["lq"])


def test_did_side_by_side_images_split_into_rainy_and_clean_halves(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain12"
    for i, n in enumerate(("001", "002"), 1):
        rainy, clean = imread(src / "rain" / f"rain-{n}.png"), imread(src / "norain" / f"norain-{n}.png")
        imwrite(np.concatenate([rainy, clean], axis=1), tmp_path / "DID-MDN-test" / f"{i}.png")
    folder = tmp_path / "DID-MDN-test"
    ds = _ds(folder, folder, pairing="did")
    item = ds[1]
    np.testing.assert_array_equal(_as_bgr(item["lq"]), imread(src / "rain" / "rain-002.png"))
    np.testing.assert_array_equal(_as_bgr(item["gt"]), imread(src / "norain" / "norain-002.png"))
    train = _ds(folder, folder, pairing="did", phase="train", gt_size=64)
    assert train[0]["lq"].shape == (3, 64, 64)
    with pytest.raises(DataError, match="no pairing rule matched every file"):
        _ds(folder, folder)


def test_forced_and_unknown_pairing_options(shared_data):
    rain = shared_data / "derain" / "Rain100H"
    with pytest.raises(DataError, match=r"Rain100H/rain/10\.png does not follow the 'rain_prefix' layout"):
        _ds(rain / "rain", rain / "norain", pairing="rain_prefix")
    cfg = {
        "type": "PairedImageDataset",
        "dataroot_gt": str(rain / "norain"),
        "dataroot_lq": str(rain / "rain"),
        "phase": "val",
        "pairing": "rain_prefx",
    }
    with pytest.raises(OptionError, match="did you mean 'rain_prefix'") as err:
        build_dataset(cfg, "datasets.val")
    assert err.value.key == "datasets.val.pairing"


@pytest.mark.parametrize("layout", ["reside", "rain100l"])
def test_lmdb_and_folder_backends_give_identical_samples(layout, reside, shared_data, tmp_path):
    if layout == "reside":
        lq, gt = reside[0] / "hazy", reside[0] / "gt"
    else:
        lq, gt = shared_data / "derain/Rain100L/rain", shared_data / "derain/Rain100L/norain"
    _create_lmdb(lq, tmp_path / "lq.lmdb")
    _create_lmdb(gt, tmp_path / "gt.lmdb")
    folder = _ds(lq, gt)
    db = _ds(tmp_path / "lq.lmdb", tmp_path / "gt.lmdb")
    assert db.backend_kind == "lmdb" and db.rule == folder.rule and len(db) == len(folder)
    assert db.sample_names == folder.sample_names
    for i in range(len(folder)):
        a, b = folder[i], db[i]
        assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"]) and a["name"] == b["name"]
    torch.manual_seed(3)
    a = _ds(lq, gt, phase="train", gt_size=96, use_rot=True)[0]
    torch.manual_seed(3)
    b = _ds(tmp_path / "lq.lmdb", tmp_path / "gt.lmdb", phase="train", gt_size=96, use_rot=True)[0]
    assert torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])


def test_lmdb_of_a_gopro_split_folder_serves_lq_and_gt_from_one_database(shared_data, tmp_path):
    src = shared_data / "derain" / "Rain12"
    for kind, folder in (("blur", "rain"), ("sharp", "norain")):
        _link(src / folder / f"{folder}-001.png", tmp_path / "test" / "GOPR0384_11_00" / kind / "000001.png")
    _create_lmdb(tmp_path / "test", tmp_path / "test.lmdb", "--recursive")
    lines = (tmp_path / "test.lmdb" / "meta_info.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["GOPR0384_11_00/blur/000001.png", "GOPR0384_11_00/sharp/000001.png"]
    db = _ds(tmp_path / "test.lmdb", tmp_path / "test.lmdb")
    folder = _ds(tmp_path / "test", tmp_path / "test")
    assert db.rule == "gopro" and db.pairs == [("GOPR0384_11_00/sharp/000001", "GOPR0384_11_00/blur/000001")]
    assert torch.equal(db[0]["lq"], folder[0]["lq"]) and torch.equal(
        db[0]["gt"], img2tensor(imread(src / "norain/norain-001.png"))
    )
