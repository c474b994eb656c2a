"""The reproduction report: mean ± std tables in the paper's layout, paired gains, and a plain verdict."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from mcir.repro.stats import Gain, mean_std, paired_gain
from mcir.repro.study import Study

# results[method][seed] = {"status": ..., "metrics": {dataset: {metric: value}} or None}
Results = Dict[str, Dict[int, Dict[str, Any]]]


def _values(results: Results, method: str, dataset: str, metric: str) -> Dict[int, float]:
    """Per-seed values of one cell, finished runs only."""
    out = {}
    for seed, run in results.get(method, {}).items():
        m = run.get("metrics")
        if run.get("status") == "finished" and m and dataset in m and metric in m[dataset]:
            out[seed] = float(m[dataset][metric])
    return out


def _datasets(results: Results) -> List[str]:
    seen: List[str] = []
    for runs in results.values():
        for run in runs.values():
            for d in (run.get("metrics") or {}):
                if d not in seen:
                    seen.append(d)
    return seen


def _avg_over_datasets(results: Results, method: str, datasets: List[str], metric: str) -> Dict[int, float]:
    """Per-seed mean over datasets (only seeds with every dataset)."""
    per = [_values(results, method, d, metric) for d in datasets]
    seeds = set.intersection(*(set(p) for p in per)) if per else set()
    return {s: sum(p[s] for p in per) / len(per) for s in sorted(seeds)}


def _cell(vals: Dict[int, float], digits: int) -> str:
    if not vals:
        return "-"
    mean, std = mean_std(list(vals.values()))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _status_note(results: Results, method: str) -> str:
    bad = {s: r for s, r in results.get(method, {}).items() if r.get("status") != "finished"}
    return ", ".join(f"seed {s}: {r.get('status')}" for s, r in sorted(bad.items()))


def results_table(study: Study, results: Results) -> str:
    """Rows = methods, columns = datasets (PSNR / SSIM, mean ± std over seeds) plus Avg. (mean of datasets)."""
    datasets = _datasets(results)
    cols = datasets + (["Avg."] if len(datasets) > 1 else [])
    lines = ["| method | " + " | ".join(f"{d} PSNR / SSIM" for d in cols) + " | runs |",
             "|---|" + "---|" * len(cols) + "---|"]
    for m in study.methods:
        cells = []
        for d in cols:
            get = (lambda metric: _avg_over_datasets(results, m.name, datasets, metric)) if d == "Avg." else (
                lambda metric, d=d: _values(results, m.name, d, metric))
            cells.append(f"{_cell(get('psnr'), 2)} / {_cell(get('ssim'), 4)}")
        finished = sum(r.get("status") == "finished" for r in results.get(m.name, {}).values())
        note = _status_note(results, m.name)
        lines.append(f"| {m.name} | " + " | ".join(cells) + f" | {finished}/{len(study.seeds)}"
                     + (f" ({note})" if note else "") + " |")
    return "\n".join(lines) + "\n"


def per_seed_table(study: Study, results: Results) -> str:
    """Every run's PSNR per dataset (or its status when it did not finish) and its logged training time."""
    datasets = _datasets(results)
    lines = ["| method | seed | " + " | ".join(f"{d} PSNR" for d in datasets) + " | training min |",
             "|---|---|" + "---|" * (len(datasets) + 1)]
    for m in study.methods:
        for seed in study.seeds:
            run = results.get(m.name, {}).get(seed, {})
            if run.get("status") != "finished":
                cells = [run.get("status", "missing")] * len(datasets)
            else:
                cells = [f"{run['metrics'][d]['psnr']:.4f}" if d in run["metrics"] else "-" for d in datasets]
            minutes = run.get("train_seconds")
            cells.append("-" if minutes is None else f"{minutes / 60:.1f}")
            lines.append(f"| {m.name} | {seed} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def gains(study: Study, results: Results, metric: str = "psnr") -> Dict[str, Dict[str, Optional[Gain]]]:
    """Paired gain over the baseline per method and dataset (and Avg.), seeds present in both only."""
    datasets = _datasets(results)
    out: Dict[str, Dict[str, Optional[Gain]]] = {}
    for m in study.methods:
        if m.name == study.baseline:
            continue
        row: Dict[str, Optional[Gain]] = {}
        for d in datasets + (["Avg."] if len(datasets) > 1 else []):
            if d == "Avg.":
                mv = _avg_over_datasets(results, m.name, datasets, metric)
                bv = _avg_over_datasets(results, study.baseline, datasets, metric)
            else:
                mv = _values(results, m.name, d, metric)
                bv = _values(results, study.baseline, d, metric)
            seeds = sorted(set(mv) & set(bv))
            row[d] = paired_gain([mv[s] for s in seeds], [bv[s] for s in seeds]) if seeds else None
        out[m.name] = row
    return out


def gains_table(study: Study, results: Results) -> str:
    """Gain in PSNR (dB) over the baseline with the 95 % interval, per dataset."""
    table = gains(study, results)
    cols = list(next(iter(table.values()), {}).keys())
    lines = ["| method | " + " | ".join(f"{d} ΔPSNR [95 % CI]" for d in cols) + " |", "|---|" + "---|" * len(cols)]
    for name, row in table.items():
        cells = []
        for d in cols:
            g = row.get(d)
            cells.append("-" if g is None else f"{g.mean:+.3f} [{g.low:+.3f}, {g.high:+.3f}] {g.verdict}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def verdict_lines(study: Study, results: Results) -> List[str]:
    """One plain sentence per method: does its average PSNR gain exceed the seed noise?"""
    lines = []
    for name, row in gains(study, results).items():
        key = "Avg." if "Avg." in row else next(iter(row), None)
        g = row.get(key) if key else None
        note = _status_note(results, name)
        if g is None:
            lines.append(f"- **{name}**: no comparable finished runs" + (f" ({note})." if note else "."))
            continue
        where = "averaged over the benchmarks" if key == "Avg." else f"on {key}"
        if g.verdict == "better":
            sentence = "the gain exceeds the seed noise (95 % interval above zero)"
        elif g.verdict == "worse":
            sentence = "it is worse than the baseline beyond the seed noise (95 % interval below zero)"
        elif g.verdict == "within seed noise":
            sentence = "the difference is within the seed noise (95 % interval contains zero)"
        else:
            sentence = "a single seed gives no interval"
        lines.append(f"- **{name}** vs {study.baseline}, {where}: {g.mean:+.3f} dB "
                     f"[{g.low:+.3f}, {g.high:+.3f}] over {g.n} seeds — {sentence}."
                     + (f" Not finished: {note}." if note else ""))
    return lines
