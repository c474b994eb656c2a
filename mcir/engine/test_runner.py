"""Evaluate every model of a test run on every test set and write the results table (the work of test.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict

import torch

from mcir.errors import OptionError

Log = Callable[[str], None]


def run_tests(opt: Dict[str, Any], device: torch.device, log: Log = print) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Evaluate each model (``models`` entries, or the top-level one) on each ``datasets.test*`` / ``val*`` set.

    Everything that can fail on bad input (data folders, arch options, weights files) is built before the
    first result is written. Results go to ``path.results_root`` (default ``results/<name>``):
    ``metrics.{json,csv,md}`` and, with ``val.save_img``, ``visualization/[<model>/]<dataset>/``.

    Args:
        opt: Resolved test options.
        device: Device the networks run on.
        log: Receives progress lines and the table.

    Returns:
        ``{model: {dataset: {"average": {metric: v}, "images": {stem: {metric: v}}}}}``.
    """
    from mcir.data import build_loader
    from mcir.engine.evaluator import Evaluator
    from mcir.engine.model_list import model_specs, options_for
    from mcir.engine.results import write_results
    from mcir.models import build_model
    from mcir.options import dataset_sections

    file = opt.get("opt_path")
    keys = dataset_sections(opt, "test") + dataset_sections(opt, "val")
    if not keys:
        raise OptionError("no test sets: add datasets.test_1 (or val_1) sections", file, "datasets")
    loaders = {}
    for key in keys:
        cfg = opt["datasets"][key]
        name = cfg.get("name") or key
        if name in loaders:
            raise OptionError(f"two test sets are named '{name}'; give each a different name", file,
                              f"datasets.{key}.name")
        loaders[name] = build_loader(cfg, f"datasets.{key}", "test", opt["scale"])[1]
    specs = model_specs(opt)
    models = {spec.name: build_model(options_for(opt, spec), device, is_train=False) for spec in specs}
    for spec in specs:
        if spec.pretrain_network_g is None and getattr(models[spec.name].net_g, "requires_training", True):
            log(f"warning: {spec.key} ({spec.network_g['type']}) has no pretrain_network_g; "
                "evaluating randomly initialised weights")

    nested = bool(opt.get("models"))
    results_root = Path(opt["path"].get("results_root") or Path("results") / opt["name"])
    val = opt["val"]
    evaluator = Evaluator(val["metrics"], num_save_img=val["num_save_img"], pbar=val["pbar"])
    infer_args = {"tile": val["tile"], "tile_overlap": val["tile_overlap"], "self_ensemble": val["self_ensemble"]}
    results: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for spec in specs:
        model = models[spec.name]
        per_dataset: Dict[str, Dict[str, Any]] = {}
        for name, loader in loaders.items():
            save_dir = None
            if val["save_img"]:
                save_dir = str(results_root / "visualization" / spec.name / name if nested
                               else results_root / "visualization" / name)
            per_dataset[name] = evaluator.evaluate(
                lambda x, m=model: m.infer(x, **infer_args), loader, save_dir=save_dir, suffix=val["suffix"]
            )
            avg = per_dataset[name]["average"]
            prefix = f"{spec.name} " if nested else ""
            log(f"{prefix}{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in avg.items()))
        results[spec.name] = per_dataset
    lower = [m for m in evaluator.metric_names if evaluator.metric_set.better(m) == "lower"]
    table = write_results(results, evaluator.metric_names, results_root, nested=nested, lower_better=lower)
    log(table)
    log(f"results written to {results_root}")
    return results
