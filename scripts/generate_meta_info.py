"""Write a BasicSR meta_info file (``<name> (h,w,c)`` per GT image) for a folder, or for a pair of folders paired
by mcir's rules (only GT images with an LQ partner are listed)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from mcir.cli import run_main  # noqa: E402
from mcir.data.meta_info import MetaEntry  # noqa: E402
from mcir.data.pairing import PAIRING_CHOICES, check_pairing_option, find_pairs, list_images  # noqa: E402
from mcir.errors import DataError, OptionError  # noqa: E402
from mcir.utils.atomic import atomic_write_text  # noqa: E402

PROG = "generate_meta_info"


def image_shape(path: str) -> Tuple[int, int, int]:
    """``(h, w, c)`` from the file header, with ``c`` as mcir reads the image (alpha dropped, palette -> 3).

    Args:
        path: Image file.

    Returns:
        The shape.
    """
    try:
        with Image.open(path) as im:
            bands = len(im.getbands())
            channels = 3 if im.mode == "P" or bands >= 3 else 1
            return im.height, im.width, channels
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image header ({exc})") from exc


def gt_names(gt: str, lq: Optional[str], pairing: str, filename_tmpl: str) -> Tuple[List[str], str, int]:
    """GT names to list: all images of ``gt``, or those paired with an image of ``lq``.

    Args:
        gt: GT folder.
        lq: LQ folder, or None.
        pairing: Rule name or ``auto``.
        filename_tmpl: Template of the ``filename_tmpl`` rule.

    Returns:
        ``(names, rule name, number of LQ images)``.
    """
    names = list_images(gt)
    if not names:
        raise DataError(f"{gt}: no images (png, jpg, jpeg, bmp, tif, tiff) in folder")
    if lq is None:
        return names, "none", 0
    lq_names = list_images(lq)
    if not lq_names:
        raise DataError(f"{lq}: no images (png, jpg, jpeg, bmp, tif, tiff) in folder")
    shared = os.path.realpath(lq) == os.path.realpath(gt)
    result = find_pairs(
        lq_names,
        names,
        pairing,
        filename_tmpl,
        shared_root=shared,
        lq_where=lambda n: os.path.join(lq, n),
        gt_where=lambda n: os.path.join(gt, n),
    )
    used = dict.fromkeys(g for _, g in result.pairs)
    return list(used), result.rule.name, len(result.pairs)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a BasicSR-compatible meta_info file: one '<name> (h,w,c)' line per GT image (names "
        "relative to --gt, sub-folders included). With --lq the two folders are paired by mcir's pairing rules "
        "(see mcir/data/pairing.py) and only GT images with an LQ partner are listed; use the file as "
        "meta_info_file of a PairedImageDataset with the same dataroot_gt/dataroot_lq.",
    )
    parser.add_argument("--gt", required=True, help="GT folder")
    parser.add_argument("--lq", help="LQ folder (pairs are checked and only paired GT images are listed)")
    parser.add_argument("--output", required=True, help="meta_info text file to write")
    parser.add_argument("--pairing", default="auto", help=f"pairing rule: {', '.join(PAIRING_CHOICES)} (default auto)")
    parser.add_argument("--filename-tmpl", default="{}", help="LQ name template of the GT stem, e.g. '{}x4'")
    parser.add_argument("--no-shape", action="store_true", help="write names only (no header reads)")
    parser.add_argument("--n-thread", type=int, default=4, help="header-reading threads (default 4)")
    return parser


def run(args: argparse.Namespace) -> None:
    """Check the command line, then list the GT images (with their shapes) and write the file atomically.

    Args:
        args: Parsed command line.
    """
    for folder in filter(None, (args.gt, args.lq)):
        if not Path(folder).is_dir():
            raise OptionError(f"folder {folder} does not exist")
    if "{}" not in args.filename_tmpl:
        raise OptionError(f"--filename-tmpl '{args.filename_tmpl}' has no '{{}}' for the GT stem")
    if args.n_thread < 1:
        raise OptionError("--n-thread must be >= 1")
    check_pairing_option(args.pairing)
    names, rule, n_lq = gt_names(args.gt, args.lq, args.pairing, args.filename_tmpl)
    if args.no_shape:
        entries = [MetaEntry(n) for n in names]
    else:
        from tqdm import tqdm

        with ThreadPoolExecutor(max_workers=args.n_thread) as pool:
            shapes = pool.map(lambda n: image_shape(os.path.join(args.gt, n)), names)
            shapes = list(tqdm(shapes, total=len(names), desc=PROG, unit="img", leave=False, disable=None))
        entries = [MetaEntry(n, s) for n, s in zip(names, shapes)]
    atomic_write_text("".join(e.to_line() + "\n" for e in entries), args.output)
    paired = f", paired with {n_lq} LQ images by rule {rule}" if args.lq else ""
    print(f"{PROG}: wrote {len(entries)} GT images{paired} to {args.output}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 on bad input.
    """
    return run_main(run, build_parser(), argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
