"""The Python API (``mcir.Restorer``): every input kind gives infer.py's values, kinds and bit depths round-trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import mcir
from mcir.archs.edsr_arch import EDSR
from mcir.core.checkpoint_io import atomic_save
from mcir.errors import CheckpointError, DataError, OptionError
from mcir.infer import main as infer_main
from mcir.restorer import Restorer
from mcir.utils.img_util import imread

REPO = Path(__file__).resolve().parents[1]
LR = REPO / "datasets" / "Set5" / "LR_bicubic" / "X4"
BICUBIC_OPT = REPO / "options" / "test" / "SR" / "test_Bicubic_x4.yml"
TINY = {"num_feat": 8, "num_block": 1, "rgb_mean": [0.5, 0.5, 0.5]}


@pytest.fixture(scope="module")
def bicubic() -> Restorer:
    return Restorer(arch="Bicubic", scale=4, device="cpu")


@pytest.fixture
def tiny(tmp_path) -> tuple:
    """A tiny random EDSR x2 saved as a weights file, and the CLI arguments that load it."""
    torch.manual_seed(3)
    net = EDSR(num_in_ch=3, num_out_ch=3, upscale=2, **TINY)
    path = tmp_path / "w.pth"
    atomic_save({"params": net.state_dict()}, str(path))
    cli = ["--arch", "EDSR", "--weights", str(path), "--scale", "2", "--set", "num_feat=8", "--set", "num_block=1",
           "--set", "rgb_mean=[0.5,0.5,0.5]"]
    return Restorer(arch="EDSR", weights=str(path), scale=2, arch_options=TINY, device="cpu"), cli


def _cli_output(tmp_path: Path, img_bgr: np.ndarray, cli: list, name: str = "x.png") -> np.ndarray:
    """What ``mcir-infer`` writes for this image (as stored: BGR or gray)."""
    src, out = tmp_path / "cli_in" / name, tmp_path / "cli_out"
    src.parent.mkdir(exist_ok=True)
    cv2.imwrite(str(src), img_bgr)
    assert infer_main(["--input", str(src), "--output", str(out)] + cli) == 0
    return cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)


def test_package_exports_the_restorer_lazily():
    assert mcir.Restorer is Restorer and "Restorer" in mcir.__all__
    with pytest.raises(AttributeError):
        mcir.NoSuchThing  # noqa: B018


def test_every_input_kind_gives_infer_py_values(tmp_path, bicubic):
    bgr = imread(LR / "birdx4.png")[:20, :24]
    expected_rgb = _cli_output(tmp_path, bgr, ["--arch", "Bicubic", "--scale", "4"])[:, :, ::-1]
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    out = bicubic(rgb)
    assert out.dtype == np.uint8 and out.shape == (80, 96, 3)
    np.testing.assert_array_equal(out, expected_rgb)
    pil = bicubic(Image.fromarray(rgb))
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (96, 80)
    np.testing.assert_array_equal(np.asarray(pil), expected_rgb)
    x = torch.from_numpy(rgb).permute(2, 0, 1).double() / 255
    t = bicubic(x)
    assert t.dtype == torch.float64 and t.device == x.device and t.shape == (3, 80, 96)
    assert 0 <= t.min() and t.max() <= 1
    np.testing.assert_array_equal((t.float() * 255).round().byte().permute(1, 2, 0).numpy(), expected_rgb)
    batch = bicubic(torch.stack([x, x.flip(-1)]).float())
    assert batch.shape == (2, 3, 80, 96) and torch.equal(batch[0], t.float())


def test_uint16_and_gray_keep_their_kind(tmp_path, tiny):
    restorer, cli = tiny
    deep = imread(LR / "butterflyx4.png")[:16, :16].astype(np.uint16) * 257
    deep[0, 0, 0] = 1  # a level no 8-bit image has
    out = restorer(np.ascontiguousarray(deep[:, :, ::-1]))
    assert out.dtype == np.uint16 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, _cli_output(tmp_path, deep, cli, "deep.png")[:, :, ::-1])
    assert len(np.unique(out % 257)) > 1
    gray = cv2.cvtColor(imread(LR / "headx4.png")[:16, :16], cv2.COLOR_BGR2GRAY)
    g = restorer(gray)
    assert g.dtype == np.uint8 and g.shape == (32, 32)
    np.testing.assert_array_equal(g, _cli_output(tmp_path, gray, cli, "gray.png"))
    assert restorer(gray[:, :, None]).shape == (32, 32, 1)
    assert restorer(Image.fromarray(gray)).mode == "L"
    pil16 = restorer(Image.fromarray(gray.astype(np.uint16) * 257))
    assert pil16.mode == "I;16" and np.asarray(pil16).dtype == np.uint16
    as_float = restorer(gray.astype(np.float32) / 255)
    assert as_float.dtype == np.float32 and np.abs(as_float * 255 - g).max() <= 0.5 + 1e-4


def test_pil_modes_with_alpha_or_palette_come_back_sensibly(bicubic):
    rgba = Image.new("RGBA", (6, 5), (10, 200, 30, 128))
    with pytest.warns(UserWarning, match="alpha channel dropped"):
        out = bicubic(rgba)
    assert out.mode == "RGB" and out.size == (24, 20) and out.getpixel((3, 3)) == (10, 200, 30)
    assert bicubic(Image.new("P", (6, 5))).mode == "RGB"
    assert bicubic(Image.new("1", (6, 5))).mode == "L"
    with pytest.raises(DataError, match="mode 'F'"):
        bicubic(Image.new("F", (6, 5)))


def test_colour_batch_through_a_gray_network_goes_channel_by_channel():
    torch.manual_seed(0)
    net = EDSR(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=1, upscale=2, rgb_mean=[0.5])
    restorer = Restorer.from_network(net, device="cpu")
    assert (restorer.in_channels, restorer.scale) == (1, 2)
    x = torch.rand(2, 3, 8, 8)
    out = restorer(x)
    assert out.shape == (2, 3, 16, 16)
    for n in range(2):
        for c in range(3):
            torch.testing.assert_close(out[n, c], restorer(x[n, c][None])[0], rtol=0, atol=1e-6)


def test_from_options_equals_arch_mode(tiny, tmp_path):
    restorer, _ = tiny
    weights = str(tmp_path / "w.pth")
    sets = [f"network_g.{k}={v}" for k, v in (("num_feat", 8), ("num_block", 1), ("upscale", 2),
                                              ("rgb_mean", "[0.5,0.5,0.5]"))] + ["scale=2"]
    opt = REPO / "options" / "test" / "SR" / "test_demo_EDSR_tiny_x4.yml"
    tiled = Restorer.from_options(str(opt), weights=weights, overrides=sets + ["val.tile=8", "val.tile_overlap=2"],
                                  device="cpu")
    assert (tiled.tile, tiled.tile_overlap, tiled.self_ensemble) == (8, 2, False)  # the val section's
    img = np.ascontiguousarray(imread(LR / "babyx4.png")[:12, :12])
    whole = Restorer.from_options(str(opt), weights=weights, overrides=sets, tile=None, device="cpu")
    np.testing.assert_array_equal(whole(img), restorer(img))
    assert Restorer.from_options(str(BICUBIC_OPT), device="cpu").scale == 4


def test_restore_folder_writes_what_infer_py_writes(tmp_path, bicubic):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for stem in ("baby", "head"):
        shutil.copy(LR / f"{stem}x4.png", src)
    shutil.copy(LR / "birdx4.png", src / "sub")
    (src / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        done = bicubic.restore_folder(src, tmp_path / "api", recursive=True, suffix="_x4")
    assert sorted(Path(p).relative_to(tmp_path / "api").as_posix() for p in done["written"]) == [
        "babyx4_x4.png", "headx4_x4.png", "sub/birdx4_x4.png"]
    assert infer_main(["--input", str(src), "--output", str(tmp_path / "cli"), "--arch", "Bicubic", "--scale", "4",
                       "--recursive", "--suffix", "_x4"]) == 0
    for p in done["written"]:
        rel = Path(p).relative_to(tmp_path / "api")
        assert Path(p).read_bytes() == (tmp_path / "cli" / rel).read_bytes()


@pytest.mark.parametrize("image, match", [
    ([[0, 1]], "got list"),
    (np.zeros((4, 4, 4), np.uint8), r"img\[..., :3\]"),
    (np.zeros((4, 4), bool), "got bool"),
    (np.zeros((0, 4, 3), np.uint8), "got shape"),
    (torch.zeros(3, 4, 4, dtype=torch.uint8), "divide integer images by 255"),
    (torch.zeros(1, 1, 3, 4, 4), "got shape"),
    (torch.zeros(2, 4, 4), "2-channel"),
])
def test_bad_images_are_data_errors(bicubic, image, match):
    with pytest.raises(DataError, match=match) as info:
        bicubic(image)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"arch": "EDSR"}, OptionError, "needs trained weights"),
    ({"arch": "EDSRR"}, OptionError, "did you mean EDSR"),
    ({"arch": "Bicubic", "arch_options": {"upscal": 2}}, OptionError, "upscal"),
    ({"arch": "Bicubic", "scale": 2, "arch_options": {"upscale": 3}}, OptionError, "scale 2 contradicts"),
    ({"arch": "Bicubic", "tile": 0}, OptionError, "tile"),
    ({"arch": "Bicubic", "device": "tpu"}, OptionError, "not a device"),
    ({"arch": "EDSR", "weights": "/no/such.pth"}, CheckpointError, "/no/such.pth"),
])
def test_bad_arguments_are_one_line_errors(kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        Restorer(**kwargs)
    assert "\n" not in str(info.value)
