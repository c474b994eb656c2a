"""Tests of infer.py on the bundled Set5 images: folders, bit depth, gray/colour, bad files, options."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mcir.archs.edsr_arch import EDSR
from mcir.archs.simple_arch import Bicubic
from mcir.core.checkpoint_io import atomic_save
from mcir.core.inference import restore
from mcir.infer import main as infer_main
from mcir.utils.img_util import img2tensor, imread, tensor2img

REPO = Path(__file__).resolve().parents[1]
LR = REPO / "datasets" / "Set5" / "LR_bicubic" / "X4"
STEMS = ("baby", "bird", "butterfly", "head", "woman")


def _expected(net: torch.nn.Module, img: np.ndarray, out_type=np.uint8, **kw) -> np.ndarray:
    x = img2tensor(img, bgr2rgb=True, float32=True)[None]
    net.eval()
    return tensor2img(restore(net, x, **kw)[0], out_type=out_type)


def _tiny_edsr(tmp_path: Path, upscale: int = 2, channels: int = 3) -> tuple:
    torch.manual_seed(3)
    net = EDSR(num_in_ch=channels, num_out_ch=channels, num_feat=8, num_block=1, upscale=upscale,
               rgb_mean=[0.5] * channels)
    path = tmp_path / "w.pth"
    atomic_save({"params": net.state_dict()}, str(path))
    args = ["--arch", "EDSR", "--weights", str(path), "--scale", str(upscale), "--set", "num_feat=8",
            "--set", "num_block=1", "--set", f"num_in_ch={channels}", "--set", f"num_out_ch={channels}",
            "--set", f"rgb_mean={[0.5] * channels}"]
    return net.eval(), args


def _small_copy(tmp_path: Path, stem: str, size: int = 24) -> np.ndarray:
    return imread(LR / f"{stem}x4.png")[:size, :size]


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_folder_of_set5_with_bicubic_matches_the_network(tmp_path):
    out = tmp_path / "out"
    assert infer_main(["--input", str(LR), "--output", str(out), "--arch", "Bicubic", "--scale", "4",
                       "--suffix", "_x4", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{s}x4_x4.png" for s in STEMS]
    img = imread(LR / "birdx4.png")
    got = cv2.imread(str(out / "birdx4_x4.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (img.shape[0] * 4, img.shape[1] * 4, 3)
    np.testing.assert_array_equal(got, _expected(Bicubic(upscale=4), img))
    assert _no_temp_files(out)


def test_option_file_mode_equals_arch_mode(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(LR / "headx4.png", src)
    opt = REPO / "options" / "test" / "SR" / "test_Bicubic_x4.yml"
    assert infer_main(["--input", str(src / "headx4.png"), "--output", str(tmp_path / "a"), "-opt", str(opt)]) == 0
    assert infer_main(["--input", str(src), "--output", str(tmp_path / "b"), "--arch", "Bicubic", "--scale", "4"]) == 0
    a = cv2.imread(str(tmp_path / "a" / "headx4.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(a, cv2.imread(str(tmp_path / "b" / "headx4.png"), cv2.IMREAD_UNCHANGED))


def test_16_bit_input_gives_16_bit_output(tmp_path):
    net, args = _tiny_edsr(tmp_path)
    img16 = _small_copy(tmp_path, "butterfly").astype(np.uint16) * 257
    img16[0, 0, 0] = 1  # a level no 8-bit image has
    cv2.imwrite(str(tmp_path / "deep.png"), img16)
    assert infer_main(["--input", str(tmp_path / "deep.png"), "--output", str(tmp_path / "o")] + args) == 0
    got = cv2.imread(str(tmp_path / "o" / "deep.png"), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (48, 48, 3)
    np.testing.assert_array_equal(got, _expected(net, img16, out_type=np.uint16))
    assert len(np.unique(got % 257)) > 1  # not an 8-bit image scaled up


def test_gray_in_gray_out_through_a_colour_network(tmp_path):
    net, args = _tiny_edsr(tmp_path)
    gray = cv2.cvtColor(_small_copy(tmp_path, "head"), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    assert infer_main(["--input", str(tmp_path / "gray.png"), "--output", str(tmp_path / "o")] + args) == 0
    got = cv2.imread(str(tmp_path / "o" / "gray.png"), cv2.IMREAD_UNCHANGED)
    assert got.ndim == 2 and got.shape == (48, 48)
    colour = _expected(net, np.repeat(gray[:, :, None], 3, axis=2), out_type=np.float32)
    luma = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    assert np.abs(got.astype(np.float64) - np.round(luma * 255)).max() <= 1


def test_colour_image_through_a_gray_network_goes_channel_by_channel(tmp_path):
    net, args = _tiny_edsr(tmp_path, channels=1)
    img = _small_copy(tmp_path, "baby")
    cv2.imwrite(str(tmp_path / "c.bmp"), img)
    assert infer_main(["--input", str(tmp_path / "c.bmp"), "--output", str(tmp_path / "o")] + args) == 0
    got = cv2.imread(str(tmp_path / "o" / "c.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (48, 48, 3)
    for c in range(3):
        np.testing.assert_array_equal(got[:, :, c], _expected(net, img[:, :, c : c + 1])[:, :, 0])


def test_formats_and_recursion(tmp_path):
    net, args = _tiny_edsr(tmp_path)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    img = _small_copy(tmp_path, "woman", 16)
    for name in ("a.jpg", "b.webp", "c.tif", "sub/d.png"):
        cv2.imwrite(str(src / name), img)
    flat = tmp_path / "flat"
    assert infer_main(["--input", str(src), "--output", str(flat)] + args) == 0
    assert sorted(p.name for p in flat.iterdir()) == ["a.png", "b.png", "c.png"]
    deep = tmp_path / "deep"
    assert infer_main(["--input", str(src), "--output", str(deep), "--recursive"] + args) == 0
    assert sorted(str(p.relative_to(deep)) for p in deep.rglob("*.png")) == ["a.png", "b.png", "c.png", "sub/d.png"]
    for name in ("b", "c"):
        got = cv2.imread(str(deep / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got, _expected(net, imread(next(src.glob(f"{name}.*")))))


def test_tiles_and_self_ensemble_reach_the_network(tmp_path):
    net, args = _tiny_edsr(tmp_path)
    cv2.imwrite(str(tmp_path / "x.png"), _small_copy(tmp_path, "bird", 24))
    tiled = ["--tile", "16", "--tile_overlap", "4", "--self_ensemble"]
    assert infer_main(["--input", str(tmp_path / "x.png"), "--output", str(tmp_path / "o")] + args + tiled) == 0
    got = cv2.imread(str(tmp_path / "o" / "x.png"), cv2.IMREAD_UNCHANGED)
    img = imread(tmp_path / "x.png")
    np.testing.assert_array_equal(got, _expected(net, img, tile=16, overlap=4, ensemble=True))
    assert not np.array_equal(got, _expected(net, img))


def test_non_images_are_skipped_in_a_folder_and_an_error_alone(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(LR / "birdx4.png", src)
    (src / "notes.txt").write_text("not an image")
    (src / "broken.png").write_bytes(b"\x89PNG but not really")
    out = tmp_path / "o"
    assert infer_main(["--input", str(src), "--output", str(out), "--arch", "Bicubic", "--scale", "2"]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "notes.txt" in err and "broken.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["birdx4.png"]

    for bad in ("notes.txt", "broken.png"):
        assert infer_main(["--input", str(src / bad), "--output", str(tmp_path / "o2"), "--arch", "Bicubic"]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and bad in lines[0] and "not an image" in lines[0]
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--arch", "EDSR"], "needs trained weights"),
        (["--arch", "EDSRR"], "did you mean EDSR"),
        (["--arch", "Bicubic", "--set", "upscal=2"], "upscal"),
        (["--arch", "Identity", "--scale", "2"], "must be 1 for Identity"),
        (["--arch", "EDSR", "--weights", "x.pth", "--scale", "5"], "upscale 5"),
        (["--arch", "Bicubic", "--tile", "0"], "--tile: expected an integer > 0, got 0"),
        (["--arch", "Bicubic", "--tile_overlap", "-1"], "--tile_overlap: expected an integer >= 0, got -1"),
        (["--arch", "Bicubic", "--device", "tpu"], "--device: expected one of 'auto', 'cpu', 'cuda', got 'tpu'"),
        (["--arch", "EDSR", "--weights", "/no/such.pth"], "/no/such.pth"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, capsys, extra, expected):
    try:
        code = infer_main(["--input", str(LR / "babyx4.png"), "--output", str(tmp_path / "o")] + extra)
    except SystemExit as exc:  # the parser's one-line error
        code = exc.code
    assert code == (2 if expected.startswith("--") else 1)  # argument syntax: 2, as argparse; options: 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "o").exists()


def test_refuses_to_overwrite_its_input(tmp_path, capsys):
    shutil.copy(LR / "babyx4.png", tmp_path)
    assert infer_main(["--input", str(tmp_path), "--output", str(tmp_path), "--arch", "Bicubic"]) == 1
    assert "overwrite" in capsys.readouterr().err


def test_script_help_and_console_entry_point():
    out = subprocess.run([sys.executable, "mcir/infer.py", "--help"], capture_output=True, text=True, cwd=str(REPO))
    assert out.returncode == 0 and "--tile_overlap" in out.stdout and "--self_ensemble" in out.stdout
    assert re.search(r'"mcir-infer=mcir\.infer:main"', (REPO / "setup.py").read_text())
