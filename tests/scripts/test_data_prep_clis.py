"""Tests for the data-preparation CLIs on paired layouts: generate_meta_info, check_dataset, sub-images, LMDB."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import yaml

from mcir.data.paired_dataset import PairedImageDataset
from mcir.utils.img_util import imwrite

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clis(load_script):
    return {n: load_script(n) for n in ("generate_meta_info", "check_dataset", "extract_subimages", "create_lmdb")}


@pytest.fixture()
def reside(tmp_path):
    """RESIDE-style pairs from real photographs: hazy/<id>_<k>.png (two per scene), clear/<id>.png."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    for i, rgb in enumerate(photos, 1):
        clean = np.ascontiguousarray(rgb[:96, :128, ::-1])
        imwrite(clean, tmp_path / "clear" / f"{i}.png")
        for k, a in ((1, 0.3), (2, 0.6)):
            imwrite((clean * (1 - a) + 230 * a).astype(np.uint8), tmp_path / "hazy" / f"{i}_{k}.png")
    return tmp_path


@pytest.mark.parametrize("name", ["generate_meta_info", "check_dataset"])
def test_help(clis, capsys, name):
    with pytest.raises(SystemExit) as code:
        clis[name].main(["--help"])
    assert code.value.code == 0 and "pairing" in capsys.readouterr().out


def test_generate_meta_info_for_a_pair_lists_paired_gt_with_shapes(clis, reside, tmp_path, capsys):
    (reside / "clear" / "extra.png").write_bytes((reside / "clear" / "1.png").read_bytes())  # GT without hazy
    out = tmp_path / "meta_info_reside.txt"
    args = ["--gt", str(reside / "clear"), "--lq", str(reside / "hazy"), "--output", str(out)]
    assert clis["generate_meta_info"].main(args) == 0
    assert "wrote 3 GT images, paired with 6 LQ images by rule id_prefix" in capsys.readouterr().out
    assert out.read_text().splitlines() == ["1.png (96,128,3)", "2.png (96,128,3)", "3.png (96,128,3)"]
    ds = PairedImageDataset(str(reside / "clear"), str(reside / "hazy"), phase="val", meta_info_file=str(out))
    assert len(ds) == 6 and ds.rule == "id_prefix"
    assert clis["generate_meta_info"].main(["--gt", str(reside / "hazy"), "--output", str(out), "--no-shape"]) == 0
    assert out.read_text().splitlines()[:2] == ["1_1.png", "1_2.png"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--gt", "{root}/nowhere"], r"folder .*nowhere does not exist"),
        (["--gt", "{root}/clear", "--lq", "{root}/hazy", "--pairing", "spa"], r"no GT for .*hazy/1_1\.png"),
        (["--gt", "{root}/clear", "--lq", "{root}/hazy", "--pairing", "reside_"], "did you mean 'reside'"),
    ],
)
def test_generate_meta_info_bad_input_is_one_line(clis, reside, tmp_path, capsys, args, message):
    args = [a.format(root=reside) for a in args] + ["--output", str(tmp_path / "m.txt")]
    assert clis["generate_meta_info"].main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("generate_meta_info: error: ")
    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "m.txt").exists()


def test_check_dataset_folders_ok_then_corrupt_and_missing(clis, reside, capsys):
    check = clis["check_dataset"].main
    args = ["--gt", str(reside / "clear"), "--lq", str(reside / "hazy"), "--n-thread", "2"]
    assert check(args) == 0
    out = capsys.readouterr().out
    assert "6 pairs, pairing rule id_prefix, GT 96x128, 3 channel(s): OK" in out and "OK (1 dataset(s), 6 pairs)" in out
    assert check(args + ["--gt-size", "112"]) == 1
    assert "gt_size 112 is larger than the LQ image 96x128" in capsys.readouterr().out
    (reside / "hazy" / "2_2.png").write_bytes(b"\x89PNG truncated")
    assert check(args) == 1
    out = capsys.readouterr().out
    assert "problem: " in out and "hazy/2_2.png: cannot decode image" in out and "1 problem(s)" in out
    (reside / "hazy" / "2_2.png").unlink()
    (reside / "clear" / "3.png").unlink()
    assert check(args) == 1
    assert "no GT for" in capsys.readouterr().out


def test_check_dataset_sizes_against_the_scale(clis, tmp_path, capsys):
    img = np.ascontiguousarray(skimage.data.astronaut()[:64, :64, ::-1])
    imwrite(img, tmp_path / "HR" / "a.png")
    imwrite(img[::2, ::2], tmp_path / "LR" / "X2" / "ax2.png")
    assert (
        clis["check_dataset"].main(["--gt", str(tmp_path / "HR"), "--lq", str(tmp_path / "LR/X2"), "--scale", "2"]) == 0
    )
    assert "pairing rule scale_suffix, GT 64x64" in capsys.readouterr().out
    assert (
        clis["check_dataset"].main(["--gt", str(tmp_path / "HR"), "--lq", str(tmp_path / "LR/X2"), "--scale", "4"]) == 1
    )
    assert "GT size 64x64 does not match LQ size 32x32 at scale 4" in capsys.readouterr().out


def test_check_dataset_option_file_sections_and_bad_file(clis, reside, tmp_path, capsys):
    opt = {
        "name": "x",
        "scale": 1,
        "network_g": {"type": "Identity"},
        "datasets": {
            "train": {
                "type": "MixedDataset",
                "datasets": {
                    "dehaze": {
                        "dataroot_gt": str(reside / "clear"),
                        "dataroot_lq": str(reside / "hazy"),
                        "gt_size": 64,
                    },
                    "same": {
                        "dataroot_gt": str(reside / "clear"),
                        "dataroot_lq": str(reside / "clear"),
                        "pairing": "did",
                        "gt_size": 64,
                    },
                },
            },
            "val_1": {"name": "hazy", "dataroot_gt": str(reside / "clear"), "dataroot_lq": str(reside / "hazy")},
        },
    }
    path = tmp_path / "opt.yml"
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    assert clis["check_dataset"].main(["--opt", str(path), "--section", "val_1"]) == 0
    assert "datasets.val_1 (hazy): 6 pairs" in capsys.readouterr().out
    assert clis["check_dataset"].main(["--opt", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "datasets.train.datasets.dehaze: 6 pairs" in out
        and "datasets.train.datasets.same: 3 pairs, pairing rule did" in out
    )
    assert clis["check_dataset"].main(["--opt", str(path), "--set", "datasets.train.datasets.same.gt_size=32"]) == 1
    assert "same gt_size" in capsys.readouterr().out
    assert clis["check_dataset"].main(["--opt", str(path), "--section", "test_9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no dataset section test_9" in err[0]


def test_check_dataset_runs_as_a_script(reside):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "check_dataset.py"), "--gt", str(reside / "nowhere")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "nowhere: dataroot_gt folder does not exist" in proc.stdout and "1 problem(s)" in proc.stdout


def test_sub_images_of_a_paired_layout_still_pair(clis, reside, tmp_path):
    sub = tmp_path / "sub"
    for folder in ("hazy", "clear"):
        args = [
            "--input",
            str(reside / folder),
            "--output",
            str(sub / folder),
            "--crop-size",
            "64",
            "--step",
            "64",
            "--n-thread",
            "1",
        ]
        assert clis["extract_subimages"].main(args) == 0
    ds = PairedImageDataset(str(sub / "clear"), str(sub / "hazy"), phase="val")
    assert ds.rule == "id_prefix" and len(ds) == 6 * 4  # four 64x64 crops (2 rows incl. the border row x 2)
    assert [Path(g).name for g, _ in ds.pairs][:2] == ["1_s001.png", "1_s001.png"]
    assert [Path(q).name for _, q in ds.pairs][:2] == ["1_1_s001.png", "1_2_s001.png"]
    assert ds.sample_names[:2] == ["1_1_s001", "1_2_s001"]


def test_recursive_lmdb_of_a_gopro_tree_pairs_like_the_folder(clis, tmp_path):
    img = np.ascontiguousarray(skimage.data.coffee()[:64, :96, ::-1])
    for scene in ("GOPR0384_11_00", "GOPR0385_11_01"):
        imwrite(img, tmp_path / "test" / scene / "sharp" / "000001.png")
        imwrite(255 - img, tmp_path / "test" / scene / "blur" / "000001.png")
    assert (
        clis["create_lmdb"].main(
            [
                "--input",
                str(tmp_path / "test"),
                "--output",
                str(tmp_path / "test.lmdb"),
                "--recursive",
                "--n-thread",
                "1",
            ]
        )
        == 0
    )
    db = PairedImageDataset(str(tmp_path / "test.lmdb"), str(tmp_path / "test.lmdb"), phase="val")
    folder = PairedImageDataset(str(tmp_path / "test"), str(tmp_path / "test"), phase="val")
    assert db.rule == folder.rule == "gopro" and db.sample_names == folder.sample_names
    for i in range(2):
        assert torch.equal(db[i]["lq"], folder[i]["lq"]) and torch.equal(db[i]["gt"], folder[i]["gt"])
    assert clis["create_lmdb"].main(["--input", str(tmp_path / "test"), "--output", str(tmp_path / "flat.lmdb")]) == 2


def test_recursive_sub_images_of_a_gopro_tree_mirror_the_folders(clis, tmp_path):
    img = np.ascontiguousarray(skimage.data.coffee()[:64, :128, ::-1])
    for kind, pixels in (("sharp", img), ("blur", 255 - img)):
        imwrite(pixels, tmp_path / "train" / "GOPR0372_07_00" / kind / "000047.png")
    args = [
        "--input",
        str(tmp_path / "train"),
        "--output",
        str(tmp_path / "train_sub"),
        "--crop-size",
        "64",
        "--step",
        "64",
        "--recursive",
        "--n-thread",
        "1",
    ]
    assert clis["extract_subimages"].main(args) == 0
    ds = PairedImageDataset(str(tmp_path / "train_sub"), str(tmp_path / "train_sub"), phase="val")
    assert ds.rule == "gopro" and ds.sample_names == ["GOPR0372_07_00/000047_s001", "GOPR0372_07_00/000047_s002"]
    torch.testing.assert_close(ds[1]["lq"], 1 - ds[1]["gt"], rtol=0, atol=1e-6)  # blur = 255 - sharp
