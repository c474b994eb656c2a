"""Write evaluation results: ``metrics.json`` (per image and average), ``metrics.csv`` and a paper-layout table.

Results are ``{model: {dataset: {"average": {metric: v}, "images": {stem: {metric: v}}}}}``. The markdown
table has one row per model and one column per dataset whose cells join the metrics (``32.10/0.8950``),
plus an ``Avg.`` column with several datasets: the mean of the per-dataset averages (every dataset weighs
the same, as in papers), not the mean over all images.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from mcir.utils.atomic import atomic_write_text

AVG_LABEL = "Avg."
_FOUR_DECIMALS = ("ssim", "lpips")
Results = Mapping[str, Mapping[str, Mapping[str, Any]]]


def format_metric(metric: str, value: Optional[float]) -> str:
    """Print a metric as papers do: SSIM- and LPIPS-like metrics with 4 decimals, the rest (PSNR, NIQE) with 2.

    Args:
        metric: Metric name (``ssim`` or ``lpips`` in the name selects 4 decimals).
        value: The value, or None for a missing one.

    Returns:
        The formatted value, ``-`` when missing.
    """
    if value is None:
        return "-"
    return f"{value:.4f}" if any(k in metric.lower() for k in _FOUR_DECIMALS) else f"{value:.2f}"


def mean_over_datasets(per_dataset: Mapping[str, Mapping[str, Any]], metric: str) -> Optional[float]:
    """The ``Avg.`` value: mean of the datasets' average ``metric`` (each dataset counts once).

    Args:
        per_dataset: ``{dataset: {"average": {metric: value}}}`` of one model.
        metric: Metric name.

    Returns:
        The mean, or None when no dataset has the metric.
    """
    vals = [r["average"][metric] for r in per_dataset.values() if metric in r.get("average", {})]
    return sum(vals) / len(vals) if vals else None


def markdown_table(results: Results, metric_names: Sequence[str], lower_better: Sequence[str] = ()) -> str:
    """Paper-layout table: rows = models, columns = datasets (cells ``psnr/ssim``) and ``Avg.``.

    Args:
        results: ``{model: {dataset: {"average": {...}}}}``; datasets are taken in first-seen order.
        metric_names: Metrics joined in each cell, in this order.
        lower_better: Metrics for which lower is better (LPIPS, NIQE), named in the note under the table.

    Returns:
        The markdown table followed by a line saying what the cells and ``Avg.`` are.
    """
    datasets: list = []
    for per_dataset in results.values():
        datasets += [d for d in per_dataset if d not in datasets]
    with_avg = len(datasets) > 1
    header = ["Model", *datasets] + ([AVG_LABEL] if with_avg else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, per_dataset in results.items():
        row = [model]
        for d in datasets:
            avg = per_dataset[d]["average"] if d in per_dataset else {}
            row.append("/".join(format_metric(m, avg.get(m)) for m in metric_names))
        if with_avg:
            row.append("/".join(format_metric(m, mean_over_datasets(per_dataset, m)) for m in metric_names))
        lines.append("| " + " | ".join(row) + " |")
    note = f"\nCells: {'/'.join(metric_names)} (dataset average over its images)."
    lower = [m for m in metric_names if m in lower_better]
    if lower:
        note += f" Lower is better for {', '.join(lower)}; higher for the others."
    if with_avg:
        note += (f" {AVG_LABEL}: mean of the dataset averages (each dataset weighs the same), "
                 "not the mean over all images.")
    return "\n".join(lines) + "\n" + note + "\n"


def metrics_csv(results: Results, metric_names: Sequence[str], with_model: bool = True) -> str:
    """Every image of every model and dataset, then each dataset's average, then the model's ``Avg.``.

    Values are written with ``repr`` (full float precision), so the CSV reproduces the table exactly.

    Args:
        results: ``{model: {dataset: result}}``.
        metric_names: Metric columns.
        with_model: Start each row with the model name (set False for the one-model layout).

    Returns:
        The CSV text.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    lead = ["model"] if with_model else []
    writer.writerow([*lead, "dataset", "image", *metric_names])
    for model, per_dataset in results.items():
        prefix = [model] if with_model else []
        for dataset, res in per_dataset.items():
            for stem, vals in res["images"].items():
                writer.writerow([*prefix, dataset, stem, *(repr(vals.get(m)) for m in metric_names)])
            writer.writerow([*prefix, dataset, "average", *(repr(res["average"].get(m)) for m in metric_names)])
        if len(per_dataset) > 1:
            writer.writerow(
                [*prefix, AVG_LABEL, "mean of dataset averages",
                 *(repr(mean_over_datasets(per_dataset, m)) for m in metric_names)]
            )
    return buf.getvalue()


def write_results(
    results: Results, metric_names: Sequence[str], out_dir: Path, nested: bool = True, lower_better: Sequence[str] = ()
) -> str:
    """Write ``metrics.json``, ``metrics.csv`` and ``metrics.md`` into ``out_dir`` (atomically).

    Args:
        results: ``{model: {dataset: result}}``.
        metric_names: Metric names in column order.
        out_dir: Results folder (created).
        nested: Keep the model level in the JSON and CSV. With False (one model from the top-level
            ``network_g``), ``metrics.json`` is ``{dataset: result}`` and the CSV has no model column.
        lower_better: Metrics for which lower is better (see :func:`markdown_table`).

    Returns:
        The markdown table.
    """
    if not nested and len(results) != 1:
        raise ValueError(f"the one-model layout needs exactly one model, got {len(results)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    payload: Any = results if nested else next(iter(results.values()))
    atomic_write_text(json.dumps(payload, indent=2) + "\n", out_dir / "metrics.json")
    atomic_write_text(metrics_csv(results, metric_names, with_model=nested), out_dir / "metrics.csv")
    table = markdown_table(results, metric_names, lower_better)
    atomic_write_text(table, out_dir / "metrics.md")
    return table
