"""Write evaluation results: ``metrics.json`` (per image and average), ``metrics.csv`` and a markdown table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Dict, Sequence

from mcir.utils.atomic import atomic_write_text


def markdown_table(results: Dict[str, Dict[str, Any]], metric_names: Sequence[str], model_name: str) -> str:
    """One row for the model, one column per dataset × metric (the papers' layout), plus an Avg. column.

    Args:
        results: ``{dataset: {"average": {metric: value}, ...}}``.
        metric_names: Metrics in column order.
        model_name: Row label.

    Returns:
        The markdown table.
    """
    datasets = list(results)
    header = ["model"] + [f"{d} {m}" for d in datasets for m in metric_names]
    row = [model_name]
    for d in datasets:
        row += [_fmt(m, results[d]["average"].get(m)) for m in metric_names]
    if len(datasets) > 1:
        header += [f"Avg. {m}" for m in metric_names]
        for m in metric_names:
            vals = [results[d]["average"][m] for d in datasets if m in results[d]["average"]]
            row.append(_fmt(m, sum(vals) / len(vals) if vals else None))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(row) + " |"]
    return "\n".join(lines) + "\n"


def _fmt(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if "ssim" in metric.lower() else f"{value:.2f}"


def write_results(
    results: Dict[str, Dict[str, Any]], metric_names: Sequence[str], out_dir: Path, model_name: str
) -> str:
    """Write ``metrics.json``, ``metrics.csv`` (one row per image and dataset average) and ``metrics.md``.

    Args:
        results: Evaluator output per dataset.
        metric_names: Metric names in column order.
        out_dir: Results folder (created).
        model_name: Row label of the markdown table.

    Returns:
        The markdown table.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(results, indent=2) + "\n", str(out_dir / "metrics.json"))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "image", *metric_names])
    for dataset, res in results.items():
        for stem, vals in res["images"].items():
            writer.writerow([dataset, stem, *(repr(vals.get(m)) for m in metric_names)])
        writer.writerow([dataset, "average", *(repr(res["average"].get(m)) for m in metric_names)])
    atomic_write_text(buf.getvalue(), str(out_dir / "metrics.csv"))
    table = markdown_table(results, metric_names, model_name)
    atomic_write_text(table, str(out_dir / "metrics.md"))
    return table
