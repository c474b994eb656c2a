"""Synthetic degradations (noise, JPEG, motion blur, haze, rain, bicubic) as pure functions on numpy images.

Every function takes a float32 HWC image in [0, 1] (BGR or 1-channel, as mcir reads images) and an explicit
``np.random.Generator``, and returns a new float32 HWC image; nothing here touches a global RNG. The blur,
haze and rain models are *approximations* of the real benchmark data, meant for training and sanity checks:

* ``motion_blur``: one spatially uniform kernel (a line or a random camera-shake trajectory). GoPro's real
  blur averages consecutive 240 fps frames of dynamic scenes, so it varies across the image.
* ``haze``: the atmospheric scattering model with a synthetic depth proxy. RESIDE rendered haze from real
  (indoor, NYU) or estimated (outdoor) depth maps.
* ``rain``: a streak layer made from sparse noise blurred along one direction and added to the image.
  Rain100L/H were rendered with photo-editing streak layers of several sizes and directions.

The named, option-file versions of these functions (parameter ranges, defaults, validation) are in
:mod:`mcir.data.degradation_pipeline`.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

from mcir.data.imresize import imresize
from mcir.errors import DataError

__all__ = [
    "gaussian_noise",
    "jpeg_compression",
    "motion_kernel",
    "motion_blur",
    "haze",
    "rain",
    "bicubic_downscale",
]


def _check_image(img: np.ndarray, name: str) -> np.ndarray:
    """Return ``img`` as float32 HWC, or raise :class:`DataError`."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise DataError(f"{name} expects an HxWx1 or HxWx3 image, got shape {img.shape}")
    if not np.issubdtype(img.dtype, np.floating):
        raise DataError(f"{name} expects a float image in [0, 1], got dtype {img.dtype}")
    return img.astype(np.float32, copy=False)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel with ``kernel`` (true convolution, reflected borders), keeping HWC."""
    # cv2.filter2D correlates, so flip the kernel; it also drops a singleton channel axis.
    out = cv2.filter2D(img, -1, np.ascontiguousarray(kernel[::-1, ::-1]), borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(img.shape)


def gaussian_noise(img: np.ndarray, rng: np.random.Generator, sigma: float, clip: bool = False) -> np.ndarray:
    """Add white Gaussian noise, independently per pixel and channel.

    Args:
        img: float32 HWC image in [0, 1].
        rng: Random generator.
        sigma: Standard deviation in 0-255 units (the denoising literature's convention: 15, 25, 50).
        clip: Clip the result to [0, 1]. The usual protocol (DnCNN, SwinIR) does not clip, so the noise
            stays zero-mean; clipping makes it signal dependent near black and white.

    Returns:
        The noisy float32 image.
    """
    img = _check_image(img, "gaussian_noise")
    noisy = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma / 255.0)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy


def jpeg_compression(img: np.ndarray, rng: Optional[np.random.Generator], quality: int) -> np.ndarray:
    """Encode and decode with OpenCV's JPEG codec (libjpeg) at ``quality``.

    A 3-channel image is encoded as a colour JPEG (YCbCr with 4:2:0 chroma subsampling, libjpeg's default),
    as in colour JPEG-artifact removal (e.g. FBCNN, SwinIR colour). A 1-channel image is encoded as a
    grey JPEG; for the classic grey-scale protocol on the luma (ARCNN, DnCNN-3, SwinIR on Classic5/LIVE1)
    give the dataset ``color: y`` or ``gray`` so the pipeline sees one channel.

    Args:
        img: float32 HWC image in [0, 1] (quantised to 8 bits first) or uint8 HWC.
        rng: Unused (the codec is deterministic); kept for the common signature.
        quality: JPEG quality, 1-100.

    Returns:
        The decoded image, same dtype as ``img`` (float32 in [0, 1] or uint8), same shape.
    """
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise DataError(f"jpeg_compression expects an HxWx1 or HxWx3 image, got shape {arr.shape}")
    u8 = arr if arr.dtype == np.uint8 else _to_uint8(_check_image(arr, "jpeg_compression"))
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise DataError("jpeg_compression: OpenCV could not encode the image")
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(u8.shape)
    return out if arr.dtype == np.uint8 else out.astype(np.float32) / np.float32(255.0)


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Rasterise (x, y) points into a ``size``x``size`` kernel with bilinear weights; sums to 1."""
    kernel = np.zeros((size, size), np.float64)
    pts = np.clip(points, 0.0, size - 1.0)
    x0 = np.minimum(np.floor(pts[:, 0]).astype(int), size - 1)
    y0 = np.minimum(np.floor(pts[:, 1]).astype(int), size - 1)
    fx, fy = pts[:, 0] - x0, pts[:, 1] - y0
    x1, y1 = np.minimum(x0 + 1, size - 1), np.minimum(y0 + 1, size - 1)
    for ys, xs, w in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x1, fx * (1 - fy)), (y1, x0, (1 - fx) * fy), (y1, x1, fx * fy)):
        np.add.at(kernel, (ys, xs), w)
    return (kernel / kernel.sum()).astype(np.float32)


def _dense_polyline(vertices: np.ndarray) -> np.ndarray:
    """Points every 0.1 px along a polyline, so the bilinear splat draws a continuous path."""
    out = [vertices[:1]]
    for a, b in zip(vertices[:-1], vertices[1:]):
        n = max(int(math.ceil(np.linalg.norm(b - a) * 10)), 1)
        t = np.arange(1, n + 1, dtype=np.float64)[:, None] / n
        out.append(a + t * (b - a))
    return np.concatenate(out)


def motion_kernel(size: int, angle: float, kind: str = "line", rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """A normalised motion-blur kernel.

    ``line``: a straight segment of length ``size - 1`` through the centre at ``angle`` (uniform linear
    motion). ``trajectory``: a random camera-shake path (a 64-step random walk whose velocity has inertia,
    drifts along ``angle`` and gets Gaussian kicks), scaled to fit the kernel and centred on its centroid,
    in the spirit of Boracchi & Foi (2012).

    Args:
        size: Kernel side (pixels); even sizes are rounded up to odd so the kernel has a centre pixel.
        angle: Direction in degrees, counter-clockwise from the +x axis (0 = horizontal, 90 = vertical).
        kind: ``line`` or ``trajectory``.
        rng: Random generator (needed for ``trajectory``).

    Returns:
        float32 ``(size, size)`` kernel summing to 1.
    """
    size = int(size) | 1
    centre = (size - 1) / 2.0
    theta = math.radians(angle)
    direction = np.array([math.cos(theta), -math.sin(theta)])  # image rows grow downwards
    if size == 1:
        return np.ones((1, 1), np.float32)
    if kind == "line":
        ends = np.stack([centre - direction * centre, centre + direction * centre])
        return _splat(_dense_polyline(ends), size)
    if kind != "trajectory":
        raise DataError(f"unknown motion kernel kind '{kind}' (choose line or trajectory)")
    if rng is None:
        raise DataError("a trajectory kernel needs a random generator")
    steps = 64
    velocity = direction.copy()
    path = [np.zeros(2)]
    for kick in rng.standard_normal((steps, 2)):
        # Inertia keeps the shake smooth, the drift keeps its mean along ``angle``, the kicks bend it.
        velocity = 0.8 * velocity + 0.1 * direction + 0.5 * kick
        path.append(path[-1] + velocity)
    path = np.asarray(path)
    path -= path.mean(axis=0)
    extent = np.abs(path).max()
    if extent > 0:
        path *= centre / extent
    return _splat(_dense_polyline(path + centre), size)


def motion_blur(
    img: np.ndarray, rng: np.random.Generator, kernel_size: int, angle: float, kind: str = "line"
) -> np.ndarray:
    """Blur with one motion kernel from :func:`motion_kernel` (a spatially uniform approximation of GoPro blur).

    Args:
        img: float32 HWC image in [0, 1].
        rng: Random generator (used by ``trajectory`` kernels).
        kernel_size: Kernel side in pixels (the blur length).
        angle: Motion direction in degrees.
        kind: ``line`` or ``trajectory``.

    Returns:
        The blurred float32 image (borders reflected).
    """
    img = _check_image(img, "motion_blur")
    return _filter(img, motion_kernel(kernel_size, angle, kind, rng))


def _depth_proxy(shape: Tuple[int, int], mode: str, rng: np.random.Generator) -> np.ndarray:
    """A synthetic scene depth in [0, 1] (1 = far) standing in for a real depth map."""
    h, w = shape
    if mode == "uniform":
        return np.ones((h, w), np.float32)
    if mode == "ramp":
        # Outdoor scenes recede towards the top: far at the top edge, tilted by up to 45 degrees.
        tilt = math.radians(rng.uniform(-45.0, 45.0))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = -(yy * math.cos(tilt)) + xx * math.sin(tilt)
    elif mode == "smooth":
        # A random low-frequency field: a 4x4 grid of uniform values, bicubically enlarged.
        d = cv2.resize(rng.random((4, 4), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    else:
        raise DataError(f"unknown depth proxy '{mode}' (choose ramp, smooth or uniform)")
    lo, hi = float(d.min()), float(d.max())
    return ((d - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.ones((h, w), np.float32)


def haze(
    img: np.ndarray, rng: np.random.Generator, beta: float, airlight: float, depth: str = "ramp"
) -> np.ndarray:
    """Atmospheric scattering model ``I = J·t + A·(1 − t)``, ``t = exp(−β·d)``, with a depth proxy ``d``.

    RESIDE used real depth maps; here ``d`` in [0, 1] is a proxy: ``ramp`` (far at the top, random tilt),
    ``smooth`` (a random low-frequency field) or ``uniform`` (``d = 1``, homogeneous haze). The default
    ranges of ``beta`` and ``airlight`` are RESIDE ITS's (0.6-1.8 and 0.7-1.0).

    Args:
        img: float32 HWC clean image ``J`` in [0, 1].
        rng: Random generator (for the depth proxy).
        beta: Scattering coefficient ``β``.
        airlight: Global atmospheric light ``A`` (grey, same on every channel).
        depth: Depth proxy: ``ramp``, ``smooth`` or ``uniform``.

    Returns:
        The hazy float32 image.
    """
    img = _check_image(img, "haze")
    t = np.exp(-float(beta) * _depth_proxy(img.shape[:2], depth, rng))[:, :, None]
    return (img * t + np.float32(airlight) * (1.0 - t)).astype(np.float32)


def rain(
    img: np.ndarray,
    rng: np.random.Generator,
    density: float,
    length: int,
    angle: float,
    width: float = 1.0,
    intensity: float = 0.8,
) -> np.ndarray:
    """Add a synthetic rain-streak layer (additive, clipped), the usual Rain100-style approximation.

    Sparse random drops (uniform noise thresholded at ``density``, each with a random brightness) are
    thickened by a Gaussian of ``width``, smeared by a line motion kernel of ``length`` along ``angle``,
    scaled so the brightest streak reaches ``intensity``, and added to every channel.

    Args:
        img: float32 HWC image in [0, 1].
        rng: Random generator.
        density: Fraction of pixels that start a streak.
        length: Streak length in pixels.
        angle: Streak direction in degrees (90 = vertical).
        width: Streak thickness (Gaussian sigma in pixels; 0 = one pixel).
        intensity: Brightness added at the strongest streak.

    Returns:
        The rainy float32 image in [0, 1].
    """
    img = _check_image(img, "rain")
    h, w = img.shape[:2]
    drops = (rng.random((h, w), dtype=np.float32) < density) * rng.uniform(0.5, 1.0, (h, w)).astype(np.float32)
    if width > 0:
        drops = cv2.GaussianBlur(drops, (0, 0), sigmaX=float(width), borderType=cv2.BORDER_REFLECT_101)
    streaks = _filter(drops[:, :, None], motion_kernel(length, angle, "line"))[:, :, 0]
    peak = float(streaks.max())
    if peak > 0:
        streaks *= np.float32(intensity / peak)
    return np.clip(img + streaks[:, :, None], 0.0, 1.0)


def bicubic_downscale(img: np.ndarray, rng: Optional[np.random.Generator], scale: int, quantize: bool = True) -> np.ndarray:
    """MATLAB-bicubic down-scaling by ``scale`` (:func:`mcir.data.imresize.imresize`).

    With ``quantize`` the image is resized as uint8 with MATLAB's per-pass rounding, so the first step of a
    pipeline on 8-bit images gives exactly the benchmark "LR_bicubic" files; otherwise in float, unrounded.

    Args:
        img: float32 HWC image in [0, 1]; its height and width must be multiples of ``scale``.
        rng: Unused (deterministic); kept for the common signature.
        scale: Integer down-scaling factor.
        quantize: Resize on 8-bit levels (clipping to [0, 1] first).

    Returns:
        float32 image of size ``(H / scale, W / scale)``.
    """
    img = _check_image(img, "bicubic_downscale")
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise DataError(f"bicubic_downscale: image {h}x{w} is not a multiple of scale {scale}")
    if quantize:
        return imresize(_to_uint8(img), 1.0 / scale).astype(np.float32) / np.float32(255.0)
    return imresize(img, 1.0 / scale).astype(np.float32)
