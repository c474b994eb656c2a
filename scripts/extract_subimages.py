"""Cut large images into overlapping sub-images (BasicSR's DIV2K convention: ``<stem>_s001.png`` ...)."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence

import cv2

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import UsageError, input_images, run_main
from mcir.errors import MCIRError
from mcir.utils.img_util import imread, imwrite

_SCALE_SUFFIX = re.compile(r"x\d+$")


def crop_starts(length: int, crop_size: int, step: int, thresh_size: int) -> List[int]:
    """Start offsets along one axis: every ``step`` pixels, plus one flush with the end if the leftover
    strip is wider than ``thresh_size``.

    Args:
        length: Image height or width.
        crop_size: Sub-image side.
        step: Stride between sub-images.
        thresh_size: Leftover width below or at which the border strip is dropped.

    Returns:
        Sorted offsets (empty if the image is smaller than ``crop_size``).
    """
    if length < crop_size:
        return []
    starts = list(range(0, length - crop_size + 1, step))
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


def extract_one(path: Path, out_dir: Path, args: argparse.Namespace) -> int:
    """Write the sub-images of one image.

    Args:
        path: Input image.
        out_dir: Output folder.
        args: Parsed command line (crop_size, step, thresh_size, compress_level, strip_scale_suffix).

    Returns:
        How many sub-images were written.
    """
    img = imread(path)
    stem = _SCALE_SUFFIX.sub("", path.stem) if args.strip_scale_suffix else path.stem
    h, w = img.shape[:2]
    index = 0
    for top in crop_starts(h, args.crop_size, args.step, args.thresh_size):
        for left in crop_starts(w, args.crop_size, args.step, args.thresh_size):
            index += 1
            patch = img[top : top + args.crop_size, left : left + args.crop_size]
            params = [cv2.IMWRITE_PNG_COMPRESSION, args.compress_level]
            imwrite(patch, out_dir / f"{stem}_s{index:03d}.png", params=params)
    if index == 0:
        print(f"extract_subimages: warning: {path} ({h}x{w}) is smaller than --crop-size, skipped", file=sys.stderr)
    return index


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        description="Crop every image of a folder into crop-size x crop-size sub-images every step pixels "
        "(plus a border crop when the leftover is wider than thresh-size), named <stem>_s001.png, ..."
    )
    parser.add_argument("--input", required=True, help="folder of images (not recursive unless --recursive)")
    parser.add_argument("--output", required=True, help="output folder (must be new or empty)")
    parser.add_argument("--crop-size", type=int, default=480, help="sub-image side (default 480; divide by s for LR)")
    parser.add_argument("--step", type=int, default=240, help="stride (default 240)")
    parser.add_argument("--thresh-size", type=int, default=0,
                        help="drop border strips this wide or narrower (default 0)")
    parser.add_argument("--n-thread", type=int, default=2, help="worker threads (default 2)")
    parser.add_argument("--compress-level", type=int, default=3, choices=range(10), metavar="0-9",
                        help="PNG compression level (default 3)")
    parser.add_argument("--strip-scale-suffix", action="store_true",
                        help="drop a trailing x<N> from stems (0001x4.png -> 0001_s001.png) so LR and HR names match")
    parser.add_argument("--recursive", action="store_true",
                        help="include sub-folders, mirrored in the output (GoPro <scene>/blur|sharp trees)")
    return parser


def run(args: argparse.Namespace) -> None:
    """Check the command line, then write the sub-images of every input image.

    Args:
        args: Parsed command line.
    """
    src, out = Path(args.input), Path(args.output)
    if not src.is_dir():
        raise UsageError(f"input folder {src} does not exist")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"output {out} already exists and is not an empty folder")
    if min(args.crop_size, args.step, args.n_thread) < 1 or args.thresh_size < 0:
        raise UsageError("--crop-size, --step and --n-thread must be >= 1, --thresh-size >= 0")
    paths = input_images(src, args.recursive)
    out.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.n_thread) as pool:
        # Sub-folders are mirrored so nested pairs (GoPro <scene>/blur, <scene>/sharp) keep pairing.
        counts = list(pool.map(lambda p: extract_one(p, out / p.parent.relative_to(src), args), paths))
    print(f"extract_subimages: {sum(counts)} sub-images from {len(paths)} images -> {out}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 for bad data, 2 for bad usage.
    """
    return run_main(run, build_parser(), argv, prog="extract_subimages", errors=(MCIRError, OSError))


if __name__ == "__main__":
    sys.exit(main())
