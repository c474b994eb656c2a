"""Tests for the synthetic degradations: determinism, the expected effect on real images, and option checks."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.restoration import wiener

from mcir.data import degradations as D
from mcir.data.degradation_pipeline import DEGRADATIONS
from mcir.data.degradation_pipeline import build_pipeline
from mcir.errors import DataError, OptionError
from mcir.utils.img_util import imread

REPO = Path(__file__).resolve().parents[2]
SET5 = REPO / "datasets" / "Set5"

# One configuration per degradation, with at least one sampled range each where the spec allows it.
CONFIGS = {
    "gaussian_noise": {"type": "gaussian_noise", "sigma": [5, 50]},
    "jpeg": {"type": "jpeg", "quality": [10, 60]},
    "motion_blur": {"type": "motion_blur", "kernel_size": [5, 15], "kind": ["line", "trajectory"]},
    "haze": {"type": "haze", "depth": ["ramp", "smooth"]},
    "rain": {"type": "rain"},
    "bicubic": {"type": "bicubic", "scale": 2},
}


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    """A 128x128 crop of the bundled Set5 butterfly, float32 BGR in [0, 1]."""
    return imread(SET5 / "HR" / "butterfly.png", float32=True)[64:192, 64:192].copy()


def _grad_energy(img: np.ndarray, axis: int) -> float:
    return float((np.diff(img, axis=axis) ** 2).mean())


def _dark_channel(img: np.ndarray, patch: int = 15) -> np.ndarray:
    return cv2.erode(img.min(axis=2), np.ones((patch, patch), np.uint8))


def test_every_degradation_has_a_config_here():
    assert set(CONFIGS) == set(DEGRADATIONS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_deterministic_given_the_seed_and_input_untouched(real, name):
    pipe = build_pipeline([CONFIGS[name]])
    before = real.copy()
    a = pipe(real, np.random.default_rng(7))
    b = pipe(real, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(real, before)
    assert a.dtype == np.float32
    others = [pipe(real, np.random.default_rng(s)) for s in range(8, 12)]
    if name != "bicubic":  # the only degradation without randomness in this configuration
        assert any(not np.array_equal(a, o) for o in others)


@pytest.mark.parametrize("sigma", [15.0, 50.0])
def test_noise_std_matches_sigma_in_255_units(sigma):
    img = np.full((256, 256, 3), 0.5, np.float32)
    noise = D.gaussian_noise(img, np.random.default_rng(0), sigma) - img
    assert abs(noise.std() * 255 - sigma) < 0.02 * sigma
    assert abs(noise.mean()) < 0.002


def test_noise_is_not_clipped_unless_asked(real):
    noisy = D.gaussian_noise(real, np.random.default_rng(0), 50)
    assert noisy.min() < 0 and noisy.max() > 1
    clipped = D.gaussian_noise(real, np.random.default_rng(0), 50, clip=True)
    np.testing.assert_array_equal(clipped, np.clip(noisy, 0, 1))


def test_jpeg_psnr_drops_with_quality_and_keeps_type(real):
    scores = [psnr(real, D.jpeg_compression(real, None, q), data_range=1.0) for q in (90, 50, 20, 5)]
    assert scores == sorted(scores, reverse=True) and scores[0] - scores[-1] > 8
    u8 = (real * 255).round().astype(np.uint8)
    out = D.jpeg_compression(u8, None, 30)
    assert out.dtype == np.uint8 and out.shape == u8.shape
    gray = D.jpeg_compression(real[:, :, :1], None, 30)
    assert gray.shape == (128, 128, 1) and gray.dtype == np.float32


def test_motion_kernels_are_normalised_and_oriented():
    line0 = D.motion_kernel(9, 0)
    assert line0.shape == (9, 9) and abs(line0.sum() - 1) < 1e-6 and line0.min() >= 0
    assert np.count_nonzero(line0[4]) == 9 and np.count_nonzero(np.delete(line0, 4, axis=0)) == 0
    np.testing.assert_allclose(D.motion_kernel(9, 90), line0.T, atol=1e-6)
    assert D.motion_kernel(8, 0).shape == (9, 9)  # even sizes get a centre pixel
    traj = D.motion_kernel(15, 0, "trajectory", np.random.default_rng(1))
    assert abs(traj.sum() - 1) < 1e-6 and np.count_nonzero(traj > 1e-3) > 15
    with pytest.raises(DataError, match="random generator"):
        D.motion_kernel(15, 0, "trajectory")


def test_motion_blur_lowers_gradient_energy_along_the_motion(real):
    horizontal = D.motion_blur(real, np.random.default_rng(0), 15, 0)
    assert _grad_energy(horizontal, 1) < 0.2 * _grad_energy(real, 1)
    assert _grad_energy(horizontal, 0) > 2 * _grad_energy(horizontal, 1)  # vertical edges survive better
    vertical = D.motion_blur(real, np.random.default_rng(0), 15, 90)
    assert _grad_energy(vertical, 0) < 0.2 * _grad_energy(real, 0)


def test_deblurring_with_the_known_kernel_recovers_a_real_image(real):
    # Synthetic motion blur is exactly a convolution with motion_kernel (no GoPro offline): Wiener
    # deconvolution with that kernel must undo much of it, and the mirrored kernel must not.
    gray = real.mean(axis=2, keepdims=True)
    blurred = D.motion_blur(gray, np.random.default_rng(3), 13, 30, "trajectory")
    kernel = D.motion_kernel(13, 30, "trajectory", np.random.default_rng(3))
    np.testing.assert_allclose(blurred[:, :, 0], ndi.convolve(gray[:, :, 0], kernel, mode="mirror"), atol=1e-5)
    inner = (slice(16, -16), slice(16, -16))
    before = psnr(gray[inner][..., 0], blurred[inner][..., 0], data_range=1.0)
    right = wiener(blurred[:, :, 0].astype(np.float64), kernel, balance=1e-2, clip=True)
    mirrored = wiener(blurred[:, :, 0].astype(np.float64), kernel[::-1, ::-1], balance=1e-2, clip=True)
    assert psnr(gray[inner][..., 0], right[inner], data_range=1.0) > before + 4
    assert psnr(gray[inner][..., 0], mirrored[inner], data_range=1.0) < before + 1


def test_haze_follows_the_scattering_model_and_raises_the_dark_channel(real):
    uniform = D.haze(real, np.random.default_rng(0), beta=1.0, airlight=0.9, depth="uniform")
    t = np.exp(-1.0)
    np.testing.assert_allclose(uniform, real * t + 0.9 * (1 - t), atol=1e-6)
    ramp = D.haze(real, np.random.default_rng(0), beta=1.5, airlight=0.9, depth="ramp")
    assert _dark_channel(ramp).mean() > _dark_channel(real).mean() + 0.2
    rows = np.abs(ramp - real).mean(axis=(1, 2))
    assert rows[:16].mean() > rows[-16:].mean()  # far (top) is hazier than near (bottom)


def test_rain_adds_bright_oriented_streaks(real):
    rainy = D.rain(real, np.random.default_rng(0), density=0.004, length=25, angle=90, intensity=0.8)
    added = (rainy - real).mean(axis=2)
    assert (rainy >= real - 1e-6).all() and rainy.max() <= 1.0
    bright = (added > 0.1).mean()
    assert 0.005 < bright < 0.5
    assert _grad_energy(added, 0) < 0.5 * _grad_energy(added, 1)  # vertical streaks: smooth along y


def test_bicubic_step_gives_the_official_set5_lr_images():
    pipe = build_pipeline([{"type": "bicubic", "scale": 4}])
    assert pipe.scale == 4
    for name in ("baby", "bird"):
        hr = imread(SET5 / "HR" / f"{name}.png", float32=True)
        lr = imread(SET5 / "LR_bicubic" / "X4" / f"{name}x4.png")
        out = pipe(hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4], np.random.default_rng(0))
        np.testing.assert_array_equal((out * 255).round().astype(np.uint8), lr)


def test_ranges_are_sampled_inside_their_bounds():
    pipe = build_pipeline([{"type": "jpeg", "quality": [10, 12]}, {"type": "haze", "beta": [0.5, 0.7]}])
    rng = np.random.default_rng(0)
    qualities = {pipe.degradations[0].sample(rng)["quality"] for _ in range(200)}
    betas = [pipe.degradations[1].sample(rng)["beta"] for _ in range(200)]
    assert qualities == {10, 11, 12}
    assert 0.5 <= min(betas) < 0.55 and 0.65 < max(betas) <= 0.7
    assert pipe.degradations[1].sample(rng)["airlight"] != pipe.degradations[1].sample(rng)["airlight"]


@pytest.mark.parametrize(
    "cfg, key, message",
    [
        ({"type": "gausian_noise", "sigma": 5}, "degradations[0].type", "did you mean 'gaussian_noise'"),
        ({"type": "gaussian_noise", "sigmaa": 5}, "degradations[0].sigmaa", "did you mean 'sigma'"),
        ({"type": "gaussian_noise"}, "degradations[0]", "needs 'sigma'"),
        ({"type": "gaussian_noise", "sigma": 300}, "degradations[0].sigma", "outside the allowed range"),
        ({"type": "gaussian_noise", "sigma": [50, 10]}, "degradations[0].sigma", "low <= high"),
        ({"type": "gaussian_noise", "sigma": [0, 10, 20]}, "degradations[0].sigma", "low <= high"),
        ({"type": "gaussian_noise", "sigma": [0, 300]}, "degradations[0].sigma[1]", "outside the allowed range"),
        ({"type": "gaussian_noise", "sigma": True}, "degradations[0].sigma", "expected a number"),
        ({"type": "gaussian_noise", "sigma": 5, "clip": "yes"}, "degradations[0].clip", "true or false"),
        ({"type": "jpeg", "quality": 30.5}, "degradations[0].quality", "integer"),
        ({"type": "bicubic", "scale": [2, 4]}, "degradations[0].scale", "one value"),
        ({"type": "motion_blur", "kernel_size": 9, "kind": "wobble"}, "degradations[0].kind", "one of"),
        ("jpeg", "degradations[0]", "mapping with a 'type'"),
    ],
)
def test_bad_degradation_options_name_the_key(cfg, key, message):
    with pytest.raises(OptionError, match=message) as info:
        build_pipeline([{"type": "jpeg", "quality": 40}, cfg], key="degradations")
    assert info.value.key == key.replace("[0]", "[1]", 1)  # the second item is the bad one


def test_bad_pipeline_container_and_images():
    with pytest.raises(OptionError, match="list of degradations"):
        build_pipeline("jpeg")
    with pytest.raises(DataError, match="HxWx1 or HxWx3"):
        D.gaussian_noise(np.zeros((4, 4), np.float32), np.random.default_rng(0), 5)
    with pytest.raises(DataError, match="float image"):
        D.haze(np.zeros((4, 4, 3), np.uint8), np.random.default_rng(0), 1.0, 0.8)
    with pytest.raises(DataError, match="multiple of scale"):
        D.bicubic_downscale(np.zeros((10, 12, 3), np.float32), None, 4)


def test_option_round_trip_and_repr():
    cfg = [{"type": "gaussian_noise", "sigma": [0, 50]}, {"type": "jpeg", "quality": 40}]
    pipe = build_pipeline(cfg)
    assert [d.to_option() for d in pipe.degradations] == [
        {"type": "gaussian_noise", "sigma": [0.0, 50.0], "clip": False},
        {"type": "jpeg", "quality": 40},
    ]
    assert "gaussian_noise" in repr(pipe) and len(pipe) == 2 and pipe.scale == 1
