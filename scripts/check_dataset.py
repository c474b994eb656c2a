"""Verify a dataset before training: pairs found, every image readable, GT/LQ sizes consistent with the scale."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

if importlib.util.find_spec("mcir") is None:
    # Run from a checkout without `pip install -e .`: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch.utils.data import Dataset  # noqa: E402

from mcir.cli import run_main  # noqa: E402
from mcir.data.dataset_check import DatasetReport, check_dataset, parts  # noqa: E402
from mcir.data.pairing import PAIRING_CHOICES  # noqa: E402
from mcir.errors import MCIRError, OptionError  # noqa: E402

PROG = "check_dataset"


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a dataset folder pair, or the dataset sections of an option file: pairs found (with "
        "mcir's pairing rules), every image decodes, GT size = scale x LQ size, training images fit gt_size. "
        "Prints one summary line per dataset and one line per problem; exits 1 when there is any problem.",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--gt", help="GT folder (or .lmdb)")
    src.add_argument("-opt", "--opt", help="option file: check its datasets.* sections")
    parser.add_argument("--lq", help="LQ folder (or .lmdb); without it only the GT images are checked")
    parser.add_argument("--scale", type=int, default=1, help="LQ -> GT scale (default 1)")
    parser.add_argument("--pairing", default="auto", help=f"pairing rule: {', '.join(PAIRING_CHOICES)} (default auto)")
    parser.add_argument("--filename-tmpl", default="{}", help="LQ name template of the GT stem, e.g. '{}x4'")
    parser.add_argument("--meta-info", help="meta_info file selecting the GT images")
    parser.add_argument("--gt-size", type=int, help="training patch size to check the images against")
    parser.add_argument(
        "--section",
        action="append",
        default=[],
        metavar="KEY",
        help="with --opt: only this section (e.g. val_1 or datasets.val_1); repeatable",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="with --opt: override an option"
    )
    parser.add_argument("--n-thread", type=int, default=4, help="decoding threads (default 4)")
    return parser


def _from_folders(args: argparse.Namespace) -> List[Tuple[str, dict]]:
    cfg = {
        "type": "PairedImageDataset",
        "dataroot_gt": args.gt,
        "scale": args.scale,
        "pairing": args.pairing,
        "filename_tmpl": args.filename_tmpl,
        "meta_info_file": args.meta_info,
        "phase": "val",
    }
    if args.lq:
        cfg["dataroot_lq"] = args.lq
    else:
        cfg["lq_from_gt"] = "bicubic"
    label = f"{args.lq} -> {args.gt}" if args.lq else args.gt
    return [(label, cfg)]


def _from_options(args: argparse.Namespace) -> List[Tuple[str, dict]]:
    from mcir.options import load_options

    opt = load_options(args.opt, args.set, is_train=False)
    wanted = [s.split(".", 1)[1] if s.startswith("datasets.") else s for s in args.section]
    sections = opt.get("datasets") or {}
    unknown = [s for s in wanted if s not in sections]
    if unknown:
        raise OptionError(
            f"no dataset section {', '.join(unknown)} (have: {', '.join(sections)})", args.opt, "--section"
        )
    out = []
    for key, cfg in sections.items():
        if wanted and key not in wanted:
            continue
        section = dict(cfg, phase="train" if key.startswith("train") else "val")
        section.setdefault("scale", opt["scale"])
        out.append((f"datasets.{key}" + (f" ({cfg['name']})" if cfg.get("name") else ""), section))
    if not out:
        raise OptionError("has no dataset sections", args.opt, "datasets")
    return out


def _build(label: str, cfg: dict, gt_size: Optional[int]) -> Dataset:
    """The dataset of ``cfg`` for whole-image checking. A training section (or ``--gt-size``) is first built as
    for training, which checks that the patch size fits every image and that MixedDataset tasks batch together."""
    from mcir.data import build_dataset

    key = label.split(" ")[0] if label.startswith("datasets.") else "dataset"
    if gt_size:
        build_dataset(dict(cfg, phase="train", gt_size=gt_size), key)
    elif cfg.get("phase") == "train":
        build_dataset(cfg, key)
    return build_dataset(dict(cfg, phase="val"), key)


def run(args: argparse.Namespace) -> List[DatasetReport]:
    """Check every requested dataset.

    Args:
        args: Parsed command line.

    Returns:
        One report per dataset (or per task of a MixedDataset).
    """
    if args.opt is None and args.scale < 1:
        raise OptionError(f"--scale must be >= 1, got {args.scale}")
    if args.n_thread < 1:
        raise OptionError(f"--n-thread must be >= 1, got {args.n_thread}")
    sections = _from_options(args) if args.opt else _from_folders(args)
    reports = []
    for label, cfg in sections:
        try:
            # Building checks pairing and (for training sections) that gt_size fits every image.
            dataset = _build(label, cfg, None if args.opt else args.gt_size)
        except MCIRError as exc:
            reports.append(DatasetReport(label, problems=[str(exc)]))
            print(f"{PROG}: {label}: problem: {exc}", flush=True)
            continue
        for name, part in parts(dataset, label):
            report = check_dataset(part, name, n_thread=args.n_thread, progress=True)
            for problem in report.problems:
                print(f"{PROG}: {name}: problem: {problem}", flush=True)
            print(f"{PROG}: {report.summary()}", flush=True)
            reports.append(report)
    return reports


def summarise(args: argparse.Namespace) -> int:
    """Check every requested dataset and print the closing line.

    Args:
        args: Parsed command line.

    Returns:
        Exit status: 0 when every dataset is fine, 1 on any problem.
    """
    reports = run(args)
    problems = sum(len(r.problems) for r in reports)
    pairs = sum(r.pairs for r in reports)
    if problems:
        print(f"{PROG}: {problems} problem(s) in {len(reports)} dataset(s)")
        return 1
    print(f"{PROG}: OK ({len(reports)} dataset(s), {pairs} pairs)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit status: 0 when every dataset is fine, 1 on any problem or bad input.
    """
    return run_main(summarise, build_parser(), argv, prog=PROG)


if __name__ == "__main__":
    sys.exit(main())
