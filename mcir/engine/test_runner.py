"""Evaluate every model of a test run on every test set and write the results table (the work of test.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader

from mcir.core.dist import is_main_process
from mcir.core.inference import infer
from mcir.engine.evaluator import Evaluator
from mcir.engine.results import write_results

Log = Callable[[str], None]
Results = Dict[str, Dict[str, Dict[str, Any]]]


def run_tests(
    networks: Mapping[str, nn.Module],
    loaders: Mapping[str, DataLoader],
    evaluator: Evaluator,
    results_root: Path,
    device: torch.device,
    infer_options: Optional[Mapping[str, Any]] = None,
    save_img: bool = False,
    suffix: Optional[str] = None,
    nested: bool = False,
    log: Log = print,
    prepare: Optional[Callable[[nn.Module], nn.Module]] = None,
) -> Results:
    """Evaluate each network (a row of the table) on each test set and write ``metrics.{json,csv,md}``.

    Args:
        networks: Row name -> network (weights loaded), in row order.
        loaders: Test set name -> loader, in column order.
        evaluator: Scores the restorations.
        results_root: Where the tables (and, with ``save_img``, ``visualization/[<row>/]<set>/``) go.
        device: Where the networks run.
        infer_options: ``tile``, ``tile_overlap``, ``self_ensemble``.
        save_img: Save the restored images.
        suffix: Appended to saved image names.
        nested: Several rows (the ``models`` option): results are ``{row: {set: ...}}`` in the files too.
        log: Receives progress lines (on every rank: pass a quiet one to ranks other than 0) and the table.
        prepare: Turns each network into what runs (``val.compile``: a compiled module), or None.

    Returns:
        ``{row: {set: {"average": {metric: v}, "images": {stem: {metric: v}}}}}``. Run by several processes
        (each given its shard of every set), every rank returns the same averages, rank 0 has every image
        and is the only one that writes files; its results equal one process's.
    """
    main = is_main_process()
    opts = dict(infer_options or {})
    results: Results = {}
    for row, net in networks.items():
        net.to(device)
        net = prepare(net) if prepare is not None else net
        per_dataset: Dict[str, Dict[str, Any]] = {}
        for name, loader in loaders.items():
            save_dir = None
            if save_img:
                save_dir = str(results_root / "visualization" / row / name if nested
                               else results_root / "visualization" / name)
            per_dataset[name] = evaluator.evaluate(
                lambda x, n=net: infer(n, x, device=device, **opts), loader, save_dir=save_dir, suffix=suffix
            )
            avg = per_dataset[name]["average"]
            prefix = f"{row} " if nested else ""
            log(f"{prefix}{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in avg.items()))
        results[row] = per_dataset
    if main:
        lower = [m for m in evaluator.metric_names if evaluator.metric_set.better(m) == "lower"]
        table = write_results(results, evaluator.metric_names, results_root, nested=nested, lower_better=lower)
        log(table)
        log(f"results written to {results_root}")
    return results

