"""Evaluate models on test sets: ``python mcir/test.py -opt options/test/X.yml [--weights NAME=PATH] [--set k=v]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

if __package__ in (None, ""):  # run as a script: import mcir from this checkout, not mcir/ siblings
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mcir.cli import base_parser, run_main, select_device, trust_overrides  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the test command."""
    from mcir.metrics.presets import PRESETS

    parser = base_parser("Evaluate mcir models on test sets and write metrics tables.")
    names = "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values())
    parser.add_argument(
        "--preset", metavar="NAME", default=None,
        help=f"score with this metric convention instead of the option file's val.metrics (--set "
        f"val.metrics.<name>=... still adds to it): {names}",
    )
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="add a model (a row of the table) with these weights, same as --set models.NAME.pretrain_network_g=PATH; "
        "repeatable",
    )
    return parser


def evaluate_all(opt: Dict[str, Any]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Evaluate every model of ``opt`` on every ``datasets.test*`` / ``datasets.val*`` section and write results.

    Args:
        opt: Options from :func:`mcir.options.load_options` (``is_train=False``).

    Returns:
        ``{model: {dataset: {"average": {...}, "images": {stem: {...}}}}}`` (see ``metrics.json``).
    """
    from mcir.engine.test_runner import run_tests

    return run_tests(opt, select_device(opt["num_gpu"], opt.get("opt_path")))


def _body(args: argparse.Namespace) -> Dict[str, Any]:
    from mcir.engine.model_list import weights_overrides
    from mcir.options import load_options

    # The command line is more explicit than the file: --preset replaces the file's metrics, later --set adds.
    preset = ["val.metrics={}", f"val.preset={args.preset}"] if args.preset else []
    overrides = [*preset, *args.set, *weights_overrides(args.weights), *trust_overrides(args)]
    opt = load_options(args.opt, overrides, is_train=False, strict_options=args.strict_options)
    return evaluate_all(opt)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-test``)."""
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
