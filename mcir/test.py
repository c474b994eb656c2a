"""Evaluate models on test sets: ``python mcir/test.py -opt options/test/X.yml [--weights NAME=PATH] [--launcher L]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

if __package__ in (None, ""):  # run as a script: import mcir from this checkout, not mcir/ siblings
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mcir.cli import base_parser, run_main, trust_overrides  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the test command."""
    from mcir.metrics.presets import PRESETS

    parser = base_parser("Evaluate mcir models on test sets and write metrics tables.",
                         launchers=("none", "pytorch", "slurm"))
    names = "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values())
    parser.add_argument(
        "--preset", metavar="NAME", default=None, choices=list(PRESETS),
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


def evaluate_all(opt: Mapping[str, Any], log: Any = print, launcher: str = "none") -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Evaluate every model of ``opt`` on every ``datasets.test*`` / ``datasets.val*`` section and write results.

    Everything that can fail on bad input (data folders, weights files) is built before the first result
    is written. Results go to ``path.results_root`` (default ``results/<name>``). Under a launcher
    (``torchrun ... --launcher pytorch``) each process restores every K-th image of each set and rank 0
    writes the same files, with the same numbers, as one process.

    Args:
        opt: Options from :func:`mcir.options.load_options` (``is_train=False``).
        log: Receives progress lines and the table (on rank 0).
        launcher: ``none``, ``pytorch`` (torchrun) or ``slurm``: how the processes were started.

    Returns:
        ``{model: {dataset: {"average": {...}, "images": {stem: {...}}}}}`` (see ``metrics.json``; other
        ranks than 0 hold their own images only).
    """
    from mcir.engine.distributed import init_dist, shutdown

    ctx = init_dist(launcher, opt["num_gpu"], opt["dist_params"], opt.get("opt_path"))
    try:
        results = _evaluate(opt, log if ctx.is_main else _quiet, ctx)
    except BaseException:
        shutdown(ctx, wait=False)  # the other ranks may be stuck elsewhere: do not wait for them
        raise
    shutdown(ctx)
    return results


def _quiet(_: str) -> None:
    """The log of ranks other than 0."""


def _evaluate(opt: Mapping[str, Any], log: Any, ctx: Any) -> Dict[str, Dict[str, Dict[str, Any]]]:
    from mcir.build import build_evaluator, build_test_loaders, eval_networks, eval_wrapper, infer_options
    from mcir.engine.model_list import model_specs
    from mcir.engine.test_runner import run_tests

    file = opt.get("opt_path")
    loaders = build_test_loaders(opt, ctx.rank, ctx.world_size)
    specs = model_specs(opt)
    networks = eval_networks(specs, opt["path"]["trust_checkpoint"], file)
    for spec in specs:
        if spec.pretrain_network_g is None and getattr(networks[spec.name], "requires_training", True):
            log(f"warning: {spec.key} ({spec.network_g['type']}) has no pretrain_network_g; "
                "evaluating randomly initialised weights")
    val = opt["val"]
    return run_tests(
        networks,
        loaders,
        build_evaluator(val),
        Path(opt["path"]["results_root"] or Path("results") / opt["name"]),
        ctx.device,
        infer_options(val),
        save_img=val["save_img"],
        suffix=val["suffix"],
        nested=bool(opt.get("models")),
        log=log,
        prepare=eval_wrapper(val),
    )


def _body(args: argparse.Namespace) -> Dict[str, Any]:
    from mcir.engine.model_list import weights_overrides
    from mcir.options import load_options

    # The command line is more explicit than the file: --preset replaces the file's metrics, later --set adds.
    preset = ["val.metrics={}", f"val.preset={args.preset}"] if args.preset else []
    overrides = [*preset, *args.set, *weights_overrides(args.weights), *trust_overrides(args)]
    opt = load_options(args.opt, overrides, is_train=False, strict_options=args.strict_options)
    return evaluate_all(opt, launcher=args.launcher)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-test``)."""
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
