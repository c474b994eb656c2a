"""Evaluate a model on test sets: ``python mcir/test.py -opt options/test/X.yml [--set k=v]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

if __package__ in (None, ""):  # run as a script: import mcir from this checkout, not mcir/ siblings
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from mcir.cli import base_parser, run_main, select_device, trust_overrides  # noqa: E402
from mcir.errors import OptionError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the test command."""
    return base_parser("Evaluate an mcir model on test sets and write metrics tables.")


def evaluate_all(opt: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Evaluate the model of ``opt`` on every ``datasets.test*`` / ``datasets.val*`` section and write results.

    Args:
        opt: Options from :func:`mcir.options.load_options` (``is_train=False``).

    Returns:
        ``{dataset: {"average": {...}, "images": {stem: {...}}}}`` (also written to ``metrics.json``).
    """
    from mcir.data import build_loader
    from mcir.engine.evaluator import Evaluator
    from mcir.engine.results import write_results
    from mcir.models import build_model
    from mcir.options import dataset_sections

    file = opt.get("opt_path")
    keys = dataset_sections(opt, "test") + dataset_sections(opt, "val")
    if not keys:
        raise OptionError("no test sets: add datasets.test_1 (or val_1) sections", file, "datasets")
    device = select_device(opt["num_gpu"], file)
    loaders = {}
    for key in keys:
        cfg = opt["datasets"][key]
        loaders[cfg.get("name") or key] = build_loader(cfg, f"datasets.{key}", "test", opt["scale"])[1]
    model = build_model(opt, device, is_train=False)
    results_root = Path(opt["path"].get("results_root") or Path("results") / opt["name"])
    val = opt["val"]
    evaluator = Evaluator(val["metrics"], num_save_img=val["num_save_img"], pbar=val["pbar"])
    results: Dict[str, Dict[str, Any]] = {}
    for name, loader in loaders.items():
        save_dir = str(results_root / "visualization" / name) if val["save_img"] else None
        results[name] = evaluator.evaluate(
            lambda x: model.infer(x, tile=val["tile"], tile_overlap=val["tile_overlap"], self_ensemble=val["self_ensemble"]),
            loader,
            save_dir=save_dir,
            suffix=val["suffix"],
        )
        avg = results[name]["average"]
        print(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in avg.items()), flush=True)
    table = write_results(results, evaluator.metric_names, results_root, model_name=opt["name"])
    print(table)
    print(f"results written to {results_root}")
    return results


def _body(args: argparse.Namespace) -> Dict[str, Any]:
    from mcir.options import load_options

    opt = load_options(args.opt, args.set + trust_overrides(args), is_train=False)
    return evaluate_all(opt)


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (``mcir-test``)."""
    return run_main(_body, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
