"""Pack a folder of images into a BasicSR-layout LMDB (PNG values keyed by file stem, plus meta_info.txt)."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import lmdb

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import UsageError, input_images, run_main
from mcir.data.meta_info import MetaEntry, write_meta_info
from mcir.errors import MCIRError
from mcir.utils.img_util import imread

_MIN_MAP_SIZE = 64 << 20


def list_images(folder: Path, recursive: bool = False) -> List[Tuple[Path, str]]:
    """Image files of ``folder`` with their LMDB keys, sorted; keys must be unique ascii without spaces.

    Args:
        folder: Input folder.
        recursive: Include sub-folders; keys are then relative paths without extension
            (``GOPR0384_11_00/blur/000001``), so nested layouts (GoPro, SPA-Data) keep their pairing.

    Returns:
        ``(path, key)`` pairs.
    """
    paths = input_images(folder, recursive)
    seen: Dict[str, Path] = {}
    items = []
    for p in paths:
        key = p.relative_to(folder).with_suffix("").as_posix()
        if not key.isascii() or " " in key:
            raise UsageError(f"{p}: LMDB keys must be ascii without spaces")
        if key in seen:
            raise UsageError(f"{p} and {seen[key]} would share the key '{key}'")
        seen[key] = p
        items.append((p, key))
    return items


def encode_png(path: Path, compress_level: int) -> Tuple[bytes, Tuple[int, int, int]]:
    """Read an image and re-encode it as PNG.

    Args:
        path: Image file.
        compress_level: PNG compression level (0-9).

    Returns:
        ``(png_bytes, (h, w, c))``.
    """
    img = imread(path)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise MCIRError(f"{path}: cannot encode as PNG")
    return buf.tobytes(), (img.shape[0], img.shape[1], img.shape[2])


def make_lmdb(
    items: Sequence[Tuple[Path, str]], lmdb_path: Path, compress_level: int = 1, n_thread: int = 4, batch: int = 5000
) -> List[MetaEntry]:
    """Write images into a new LMDB at ``lmdb_path`` (which must not exist) and its meta_info.txt.

    Args:
        items: ``(image path, key)`` pairs (see :func:`list_images`).
        lmdb_path: Database folder to create.
        compress_level: PNG compression level of the stored values.
        n_thread: Reader/encoder threads.
        batch: Images per write transaction.

    Returns:
        The meta_info entries written.
    """
    map_size = max(_MIN_MAP_SIZE, 4 * sum(p.stat().st_size for p, _ in items))
    env = lmdb.open(str(lmdb_path), map_size=map_size)
    entries: List[MetaEntry] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, n_thread)) as pool:
            for start in range(0, len(items), batch):
                chunk = items[start : start + batch]
                encoded = list(pool.map(lambda item: encode_png(item[0], compress_level), chunk))
                while True:
                    try:
                        with env.begin(write=True) as txn:
                            for (_, key), (value, _) in zip(chunk, encoded):
                                txn.put(key.encode("ascii"), value)
                        break
                    except lmdb.MapFullError:
                        # Sizes of re-encoded PNGs are unknown up front; grow and redo this batch.
                        map_size *= 2
                        env.set_mapsize(map_size)
                keys = [key for _, key in chunk]
                entries += [MetaEntry(key + ".png", shape, compress_level) for key, (_, shape) in zip(keys, encoded)]
                print(f"  {start + len(chunk)}/{len(items)} images", flush=True)
    finally:
        env.close()
    write_meta_info(lmdb_path / "meta_info.txt", entries)
    return entries


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        description="Pack a folder of images into a BasicSR-compatible LMDB (keys = file stems, PNG values, "
        "meta_info.txt lines '<stem>.png (h,w,c) <level>')."
    )
    parser.add_argument("--input", required=True, help="folder of images (not recursive unless --recursive)")
    parser.add_argument("--output", required=True, help="new database folder, ending in .lmdb")
    parser.add_argument("--compress-level", type=int, default=1, choices=range(10), metavar="0-9",
                        help="PNG compression level of the stored images (default 1)")
    parser.add_argument("--n-thread", type=int, default=4, help="reader threads (default 4)")
    parser.add_argument("--batch", type=int, default=5000, help="images per write transaction (default 5000)")
    parser.add_argument("--recursive", action="store_true",
                        help="include sub-folders, keyed by relative path (GoPro <scene>/blur/<n>, SPA-Data trees); "
                        "a paired layout needs one LMDB per root, or one for both when LQ and GT share a folder")
    return parser


def run(args: argparse.Namespace) -> None:
    """Check the command line, then write the database under a temporary name and rename it when complete.

    Args:
        args: Parsed command line.
    """
    src, out = Path(args.input), Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    if not src.is_dir():
        raise UsageError(f"input folder {src} does not exist")
    if out.suffix != ".lmdb":
        raise UsageError(f"output {out} must end with .lmdb")
    if out.exists():
        raise UsageError(f"output {out} already exists; remove it or choose another name")
    if tmp.exists():
        raise UsageError(f"{tmp} exists (left by an interrupted run?); remove it first")
    if args.batch < 1 or args.n_thread < 1:
        raise UsageError("--batch and --n-thread must be >= 1")
    items = list_images(src, args.recursive)
    print(f"create_lmdb: {len(items)} images from {src} -> {out}", flush=True)
    try:
        entries = make_lmdb(items, tmp, args.compress_level, args.n_thread, args.batch)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"create_lmdb: wrote {len(entries)} images to {out}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 on success, 1 for bad data, 2 for bad usage.
    """
    return run_main(run, build_parser(), argv, prog="create_lmdb", errors=(MCIRError, OSError, lmdb.Error))


if __name__ == "__main__":
    sys.exit(main())
