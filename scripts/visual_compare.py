"""Side-by-side comparison figure (the paper's Fig. 5): input, baseline, +SPN, GT, zoomed crops, divergence map.

    python scripts/visual_compare.py --lq LR/birdx4.png --baseline base/bird.png --spn spn/bird.png \\
        --gt HR/bird.png --out bird_compare.png [--box X Y W H]

Top row: the input upscaled with nearest neighbours, the two restorations and the GT, each with the zoom
box drawn, and the divergence map |baseline − SPN| (mean over channels, grey levels) as a heat map with
a colour bar. Bottom row: the same five cropped to the box. Without ``--box`` the box is put where the two
restorations differ most. Titles give PSNR against the GT (BasicSR convention: Y channel, border = scale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import run_main  # noqa: E402
from mcir.errors import DataError, MCIRError  # noqa: E402
from mcir.metrics.psnr_ssim import calculate_psnr  # noqa: E402
from mcir.utils.img_util import imread  # noqa: E402
from mcir.cli.plotting import pyplot, save_figure  # noqa: E402

Box = Tuple[int, int, int, int]


def to_rgb8(img: np.ndarray) -> np.ndarray:
    """BGR/gray uint8 or uint16 image as RGB uint8 (16-bit scaled down) for display."""
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0).round().astype(np.uint8)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, ::-1])


def divergence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| averaged over channels, in grey levels (float32, HxW)."""
    return np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)


def busiest_box(div: np.ndarray, size: int) -> Box:
    """The ``size`` x ``size`` window with the largest summed divergence, as ``(x, y, w, h)``."""
    h, w = div.shape
    size = max(1, min(size, h, w))
    sums = cv2.boxFilter(div, -1, (size, size), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    valid = sums[: h - size + 1, : w - size + 1]
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(x), int(y), size, size


def _check_box(box: Sequence[int], shape: Tuple[int, ...]) -> Box:
    x, y, w, h = (int(v) for v in box)
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > shape[1] or y + h > shape[0]:
        raise MCIRError(f"--box {x} {y} {w} {h} is not inside the {shape[1]}x{shape[0]} output")
    return x, y, w, h


def load_set(lq: Path, baseline: Path, spn: Path, gt: Path) -> Tuple[List[np.ndarray], int]:
    """Read the four images, crop the GT to the restorations' size and upscale the input to it (nearest).

    Returns:
        ``([input_up, baseline, spn, gt], scale)``, BGR arrays of one size.
    """
    lq_img, base_img, spn_img, gt_img = (imread(p) for p in (lq, baseline, spn, gt))
    if base_img.shape != spn_img.shape:
        raise DataError(f"{baseline} is {base_img.shape[:2]} but {spn} is {spn_img.shape[:2]}")
    h, w = base_img.shape[:2]
    if gt_img.shape[0] < h or gt_img.shape[1] < w:
        raise DataError(f"{gt} ({gt_img.shape[1]}x{gt_img.shape[0]}) is smaller than the restorations ({w}x{h})")
    scale = h // lq_img.shape[0]
    if scale < 1 or lq_img.shape[0] * scale != h or lq_img.shape[1] * scale != w:
        raise DataError(f"{lq} ({lq_img.shape[1]}x{lq_img.shape[0]}) is not the restorations' size / an integer scale")
    up = cv2.resize(lq_img, (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, -1)
    return [up, base_img, spn_img, gt_img[:h, :w]], scale


def compare_figure(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    out: Path,
    box: Optional[Sequence[int]] = None,
    crop_border: int = 0,
    cmap: str = "inferno",
) -> Box:
    """Draw the comparison figure.

    Args:
        images: ``[input_up, baseline, spn, gt]`` BGR images of one size.
        labels: Four titles.
        out: PNG file.
        box: Zoom box ``(x, y, w, h)`` in output pixels (None: where baseline and SPN differ most).
        crop_border: Border ignored by the PSNR in the titles.
        cmap: Colour map of the divergence.

    Returns:
        The zoom box used.
    """
    plt = pyplot()
    from matplotlib.patches import Rectangle

    _, base, spn, gt = images
    div = divergence(base, spn)
    x, y, w, h = _check_box(box, div.shape) if box is not None else busiest_box(div, max(16, min(div.shape) // 5))
    titles = list(labels)
    for i in (1, 2):
        psnr = calculate_psnr(images[i], gt, crop_border=crop_border, test_y_channel=images[i].shape[2] == 3)
        titles[i] += f"\n{psnr:.2f} dB"
    panel = 3.4  # inches per column; rows sized to the image and crop aspect ratios
    heights = [panel * div.shape[0] / div.shape[1], panel * h / w]
    fig, axes = plt.subplots(2, 5, figsize=(5 * panel, sum(heights) + 1.0), gridspec_kw={"height_ratios": heights},
                             layout="constrained")
    vmax = max(float(div.max()), 1e-6)
    for col, (img, title) in enumerate(zip(images, titles)):
        rgb = to_rgb8(img)
        axes[0, col].imshow(rgb)
        axes[0, col].set_title(title, fontsize=10)
        axes[1, col].imshow(rgb[y : y + h, x : x + w], interpolation="nearest")
    heat = axes[0, 4].imshow(div, cmap=cmap, vmin=0, vmax=vmax)
    axes[0, 4].set_title(f"|{labels[1]} − {labels[2]}|\nmean {div.mean():.2f}, max {div.max():.0f}", fontsize=10)
    axes[1, 4].imshow(div[y : y + h, x : x + w], cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
    fig.colorbar(heat, ax=axes[:, 4].tolist(), shrink=0.8, label="grey levels")
    for col in range(5):
        axes[0, col].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="lime", linewidth=1.5))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, out)
    return x, y, w, h


def build_parser() -> argparse.ArgumentParser:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lq", required=True, help="degraded input image")
    p.add_argument("--baseline", required=True, help="baseline model's output")
    p.add_argument("--spn", required=True, help="+SPN model's output")
    p.add_argument("--gt", required=True, help="ground truth")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--box", nargs=4, type=int, metavar=("X", "Y", "W", "H"), help="zoom box in output pixels")
    p.add_argument("--labels", default="Input (nearest),Baseline,+SPN,GT", help="four comma-separated titles")
    p.add_argument("--crop_border", type=int, default=None, help="PSNR border (default: the scale)")
    return p


def run(args: argparse.Namespace) -> None:
    """Draw the figure the command line asks for.

    Args:
        args: Parsed command line.
    """
    labels = args.labels.split(",")
    if len(labels) != 4:
        raise MCIRError(f"--labels needs 4 names, got {len(labels)}")
    images, scale = load_set(Path(args.lq), Path(args.baseline), Path(args.spn), Path(args.gt))
    border = scale if args.crop_border is None else args.crop_border
    box = compare_figure(images, labels, Path(args.out), args.box, border)
    print(f"wrote {args.out} (zoom box x={box[0]} y={box[1]} w={box[2]} h={box[3]})")


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; user errors print one line and return 1."""
    return run_main(run, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
