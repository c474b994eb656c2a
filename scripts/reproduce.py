"""Reproduction harness: ``python scripts/reproduce.py options/reproduce/<study>.yml [--seeds 0 1 2]``.

Trains every method of the study with every seed (sequentially, resumable: an interrupted call picks up
where it stopped, finished runs are skipped), evaluates each run with test.py on the study's benchmarks,
and writes a report folder: mean ± std tables in the paper's layout, per-seed values, paired gains over the
baseline with 95 % intervals, training curves, and a plain verdict per method.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcir.cli import run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the harness."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="study YAML (methods, seeds, budget, benchmarks)")
    parser.add_argument("--seeds", type=int, nargs="+", help="replace the study's seeds")
    parser.add_argument("--total_iter", type=int, help="replace the study's iteration budget (not the prep runs')")
    parser.add_argument("--methods", nargs="+", help="run only these methods (the baseline always runs)")
    parser.add_argument("--dry_run", action="store_true", help="print the training commands and stop")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def run(args: argparse.Namespace, argv: Optional[List[str]] = None) -> None:
    """Train and evaluate the study (or print its training commands) and write the report.

    Args:
        args: Parsed command line.
        argv: The arguments as given (default ``sys.argv[1:]``), recorded in the report.
    """
    from mcir.repro.curves import curves_section
    from mcir.repro.harness import run_preps, run_study, write_report
    from mcir.repro.runner import prep_command, train_command
    from mcir.repro.study import load_study

    study = load_study(args.study, args.seeds, args.total_iter, args.methods)
    if args.dry_run:
        for p in study.preps:
            print(" ".join(prep_command(study, p)))
        for m in study.methods:
            for s in study.seeds:
                print(" ".join(train_command(study, m, s)))
        return
    start = time.perf_counter()
    preps = run_preps(study)  # first: methods may use their weights (${prep.<name>})
    results = run_study(study)
    command = ["python", "scripts/reproduce.py", *(argv if argv is not None else sys.argv[1:])]
    extra = curves_section(study)
    write_report(study, results, command, time.perf_counter() - start, extra, preps)
    print(f"report written to {study.report_dir / 'report.md'}")


def main(argv: Optional[List[str]] = None) -> int:
    """Run the harness; user errors become one line on stderr and exit code 1."""
    return run_main(lambda args: run(args, argv), build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
