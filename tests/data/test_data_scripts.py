"""Tests for scripts/create_lmdb.py and scripts/extract_subimages.py."""

import re
import subprocess
import sys
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
import skimage.data

from mcir.utils.img_util import imfrombytes, imread, imwrite

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def create_lmdb(load_script):
    return load_script("create_lmdb")


@pytest.fixture(scope="module")
def extract_subimages(load_script):
    return load_script("extract_subimages")


@pytest.fixture()
def images(tmp_path):
    src = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    folder = tmp_path / "imgs"
    imgs = {"b_color.png": src[:40, :56], "a_gray.png": cv2.cvtColor(src[:30, :20], cv2.COLOR_BGR2GRAY)[:, :, None]}
    for name, img in imgs.items():
        imwrite(img, folder / name)
    cv2.imwrite(str(folder / "c_photo.JPG"), src[100:132, 100:148])
    imgs["c_photo.JPG"] = imread(folder / "c_photo.JPG")
    return folder, imgs


def test_create_lmdb_writes_basicsr_layout(create_lmdb, images, tmp_path):
    folder, imgs = images
    out = tmp_path / "db.lmdb"
    args = ["--input", str(folder), "--output", str(out), "--compress-level", "3", "--batch", "2"]
    assert create_lmdb.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["data.mdb", "lock.mdb", "meta_info.txt"]
    assert not out.with_name("db.lmdb.tmp").exists()
    lines = (out / "meta_info.txt").read_text().splitlines()
    assert lines == ["a_gray.png (30,20,1) 3", "b_color.png (40,56,3) 3", "c_photo.png (32,48,3) 3"]
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        for name, img in imgs.items():
            value = txn.get(Path(name).stem.encode("ascii"))
            assert value[:8] == b"\x89PNG\r\n\x1a\n"  # stored as PNG even for JPEG input
            np.testing.assert_array_equal(imfrombytes(value), img)
    env.close()


def test_create_lmdb_refuses_to_overwrite_and_bad_names(create_lmdb, images, tmp_path, capsys):
    folder, _ = images
    out = tmp_path / "db.lmdb"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert create_lmdb.main(["--input", str(folder), "--output", str(out)]) == 2
    assert (out / "keep.txt").read_text() == "mine"
    assert re.fullmatch(r"create_lmdb: error: output .*db\.lmdb already exists.*\n", capsys.readouterr().err)
    assert create_lmdb.main(["--input", str(folder), "--output", str(tmp_path / "db.mdb")]) == 2
    assert "must end with .lmdb" in capsys.readouterr().err
    imwrite(np.zeros((4, 4), np.uint8), folder / "b_color.bmp")
    assert create_lmdb.main(["--input", str(folder), "--output", str(tmp_path / "dup.lmdb")]) == 2
    assert "share the key 'b_color'" in capsys.readouterr().err


def test_create_lmdb_failure_leaves_nothing_behind(create_lmdb, images, tmp_path, capsys):
    folder, _ = images
    (folder / "z_broken.png").write_bytes(b"garbage")
    out = tmp_path / "db.lmdb"
    assert create_lmdb.main(["--input", str(folder), "--output", str(out)]) == 1
    assert "z_broken.png: cannot decode image" in capsys.readouterr().err
    assert not out.exists() and not out.with_name("db.lmdb.tmp").exists()


def test_cli_missing_input_is_one_line_error_in_a_subprocess(tmp_path):
    script = str(REPO / "scripts" / "create_lmdb.py")
    cmd = [sys.executable, script, "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "x.lmdb")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert re.fullmatch(r"create_lmdb: error: input folder .*missing does not exist\n", res.stderr)


def test_help_and_missing_input_in_process(create_lmdb, extract_subimages, tmp_path, capsys):
    for module in (create_lmdb, extract_subimages):
        with pytest.raises(SystemExit) as exc:
            module.main(["--help"])
        assert exc.value.code == 0 and "--input" in capsys.readouterr().out
    assert extract_subimages.main(["--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    assert re.fullmatch(r"extract_subimages: error: input folder .*missing does not exist\n", capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_crop_starts_follow_basicsr(extract_subimages):
    starts = extract_subimages.crop_starts
    assert starts(1000, 480, 240, 0) == [0, 240, 480, 520]
    assert starts(1000, 480, 240, 40) == [0, 240, 480]  # leftover 40 is not above thresh
    assert starts(960, 480, 240, 0) == [0, 240, 480]
    assert starts(300, 480, 240, 0) == []


def test_extract_subimages_names_and_contents(extract_subimages, tmp_path):
    src = np.ascontiguousarray(skimage.data.astronaut()[:100, :130, ::-1])
    imwrite(src, tmp_path / "in" / "0001x4.png")
    imwrite(src[:20, :20], tmp_path / "in" / "tiny.png")
    out = tmp_path / "out"
    args = ["--input", str(tmp_path / "in"), "--output", str(out), "--crop-size", "48", "--step", "40",
            "--thresh-size", "5"]
    assert extract_subimages.main(args + ["--strip-scale-suffix"]) == 0
    names = sorted(p.name for p in out.iterdir())
    # rows start at 0, 40, 52 (leftover 12 > 5); cols at 0, 40, 80, 82 (leftover 2 <= 5: none) -> 0, 40, 80
    assert names == [f"0001_s{i:03d}.png" for i in range(1, 10)]
    np.testing.assert_array_equal(imread(out / "0001_s001.png"), src[:48, :48])
    np.testing.assert_array_equal(imread(out / "0001_s006.png"), src[40:88, 80:128])
    np.testing.assert_array_equal(imread(out / "0001_s007.png"), src[52:100, :48])
    assert extract_subimages.main(args) == 2  # output now exists and is not empty


def test_create_lmdb_grows_the_map_when_pngs_outgrow_the_estimate(create_lmdb, tmp_path, monkeypatch):
    src = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    (tmp_path / "in").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "in" / f"{i}.jpg"), np.roll(src, 50 * i, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 30])
    jpeg_bytes = sum(p.stat().st_size for p in (tmp_path / "in").iterdir())
    assert 4 * jpeg_bytes < 3 * src.nbytes  # uncompressed PNGs cannot fit the first map size
    monkeypatch.setattr(create_lmdb, "_MIN_MAP_SIZE", 0)
    out = tmp_path / "big.lmdb"
    assert create_lmdb.main(["--input", str(tmp_path / "in"), "--output", str(out), "--compress-level", "0"]) == 0
    env = lmdb.open(str(out), readonly=True, lock=False)
    with env.begin() as txn:
        np.testing.assert_array_equal(imfrombytes(txn.get(b"2")), imread(tmp_path / "in" / "2.jpg"))
    env.close()
