"""Drive a study end to end: train and evaluate every method × seed, then write the report folder."""

from __future__ import annotations

import json
import os
import platform
import shlex
import time
from typing import Any, Callable, Dict, List, Optional

import torch

from mcir.repro.report import Results, gains_table, per_seed_table, results_table, verdict_lines
from mcir.cli.run_history import logged_train_seconds
from mcir.repro.runner import evaluate_prep, evaluate_run, train_command, train_prep, train_run
from mcir.repro.study import Study, as_dict, prep_dir, run_dir
from mcir.utils.atomic import atomic_write_text


def machine_description() -> str:
    """CPU/GPU, thread count and library versions, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}; {os.cpu_count()} CPU cores visible, torch threads {torch.get_num_threads()}; {gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def run_study(study: Study, echo: Callable[[str], None] = print) -> Results:
    """Train (resumably) and evaluate every run; finished runs are skipped.

    Returns:
        ``results[method][seed] = {"status", "message", "seconds", "train_seconds", "metrics"}`` (``seconds``:
        this call; ``train_seconds``: the run's training time from its logs, across calls).
    """
    results: Results = {}
    for method in study.methods:
        for seed in study.seeds:
            start = time.perf_counter()
            status = dict(train_run(study, method, seed, echo))
            metrics = None
            if status["status"] == "finished":
                full = evaluate_run(study, method, seed, echo)
                metrics = {d: dict(v["average"]) for d, v in full.items()}
            logged = logged_train_seconds(run_dir(study, method, seed))
            status.update(seconds=round(time.perf_counter() - start, 1), metrics=metrics,
                          train_seconds=None if logged is None else round(logged, 1))
            results.setdefault(method.name, {})[seed] = status
    return results


def run_preps(study: Study, echo: Callable[[str], None] = print) -> Dict[str, Dict[str, Any]]:
    """Train (resumably) and evaluate the study's prep runs, before any method that uses their weights.

    Returns:
        ``{prep name: {"status", "message", "total_iter", "seed", "train_seconds", "metrics"}}``.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for prep in study.preps:
        status = dict(train_prep(study, prep, echo))
        metrics = None
        if status["status"] == "finished":
            metrics = {d: dict(v["average"]) for d, v in evaluate_prep(study, prep, echo).items()}
        logged = logged_train_seconds(prep_dir(study, prep.name))
        status.update(seed=prep.seed, metrics=metrics, train_seconds=None if logged is None else round(logged, 1))
        out[prep.name] = status
    return out


def prep_table(preps: Dict[str, Dict[str, Any]]) -> str:
    """Markdown table of the prep runs: budget, seed, outcome, benchmark PSNR and training time."""
    datasets = list(dict.fromkeys(d for r in preps.values() for d in (r.get("metrics") or {})))
    lines = ["| prep run | iterations | seed | status | " + " | ".join(f"{d} PSNR" for d in datasets)
             + " | training min |", "|---|---|---|---|" + "---|" * len(datasets) + "---|"]
    for name, r in preps.items():
        psnr = [f"{r['metrics'][d]['psnr']:.2f}" if r.get("metrics") and d in r["metrics"] else "-" for d in datasets]
        minutes = "-" if r.get("train_seconds") is None else f"{r['train_seconds'] / 60:.1f}"
        lines.append(f"| {name} | {r['total_iter']} | {r['seed']} | {r['status']} | " + " | ".join(psnr)
                     + f" | {minutes} |")
    return "\n".join(lines) + "\n"


def _training_time(results: Results) -> str:
    """A sentence with the training time the runs' logs record, in total and per method."""
    per_method = {m: [r["train_seconds"] for r in runs.values() if r.get("train_seconds") is not None]
                  for m, runs in results.items()}
    per_method = {m: ts for m, ts in per_method.items() if ts}
    if not per_method:
        return ""
    total = sum(sum(ts) for ts in per_method.values())
    parts = [f"{m} {sum(ts) / len(ts) / 60:.1f}" for m, ts in per_method.items()]
    return (f"Training time in the runs' logs: {total / 60:.1f} min in all; mean per run (min): "
            + ", ".join(parts) + ".")


def write_report(study: Study, results: Results, command: List[str], elapsed_s: float,
                 extra_sections: Dict[str, str], preps: Optional[Dict[str, Dict[str, Any]]] = None) -> str:
    """Write ``report.md``, ``results.json``, ``study.json`` (and ``prep.json``) into the study's report folder.

    Args:
        study: The study.
        results: Output of :func:`run_study`.
        command: The harness command line, recorded for reproduction.
        elapsed_s: Wall time of this harness call.
        extra_sections: More ``{title: markdown}`` (e.g. the curves figure).
        preps: Output of :func:`run_preps` (None or empty: the study has no prep runs).

    Returns:
        The report's markdown.
    """
    out = study.report_dir
    out.mkdir(parents=True, exist_ok=True)
    example = next(iter(study.methods))
    # Shown from the repository root, without this machine's interpreter and checkout paths.
    example_command = ["python", "mcir/train.py", *train_command(study, example, study.seeds[0])[2:]]
    parts = [
        f"# Reproduction report: {study.name}\n",
        (study.description + "\n") if study.description else "",
        "## Command\n",
        f"```\n{shlex.join(command)}\n```\n",
        "Each run is `mcir/train.py` with the method's option file and overrides, e.g.\n",
        f"```\n{shlex.join(example_command)}\n```\n",
        "## Machine\n",
        f"{machine_description()}. This harness call took {elapsed_s / 60:.1f} min "
        f"(finished runs from earlier calls are reused, not re-timed). {_training_time(results)}\n",
        "## Results (mean ± std over seeds; Avg. = mean of the dataset averages)\n",
        results_table(study, results),
        "\n## Gain over the baseline (paired by seed, Student-t 95 % interval)\n",
        gains_table(study, results),
        "\n## Verdict\n",
        "\n".join(verdict_lines(study, results)) + "\n",
        "\n## Every run\n",
        per_seed_table(study, results),
    ]
    if preps:
        parts += ["\n## Prep runs (weights that other rows use, e.g. as negatives)\n",
                  "Trained once before the methods, with the common overrides plus their own; "
                  "evaluated like the rows.\n", prep_table(preps)]
    for title, body in extra_sections.items():
        parts += [f"\n## {title}\n", body]
    text = "\n".join(p for p in parts if p)
    atomic_write_text(text, str(out / "report.md"))
    atomic_write_text(json.dumps({m: {str(s): r for s, r in runs.items()} for m, runs in results.items()},
                                 indent=2) + "\n", str(out / "results.json"))
    atomic_write_text(json.dumps(as_dict(study), indent=2) + "\n", str(out / "study.json"))
    if preps:
        atomic_write_text(json.dumps(preps, indent=2) + "\n", str(out / "prep.json"))
    return text
